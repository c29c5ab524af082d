"""A storage that rides out outages: every call of an Optuna storage retried on transient errors (a server
restarting, a dropped connection, a locked file) with backoff, for up to `limit` seconds of one outage.

A retry is safe: a call that may have landed before its answer was lost is checked against the storage before it
is repeated, so that a trial is never created twice, never told twice, a parameter never set twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from engine.errors import StorageError, first_line
from engine.store import schema
from engine.store.urls import mask_secrets, mask_url

log = logging.getLogger("tunedeck")
CREATE_TOKEN = "tunedeck:create_token"  # a system attribute that finds a trial whose creation's answer was lost
FIRST_WAIT, MAX_WAIT = 0.25, 2.0  # seconds between attempts: doubling from FIRST_WAIT up to MAX_WAIT
NOT_TRANSIENT = ("IntegrityError", "ProgrammingError", "DataError", "NotSupportedError", "gaierror")
UNKNOWN_HOST = ("name or service not known", "could not translate host name", "name resolution",
                "nodename nor servname", "unknown mysql server host", "getaddrinfo failed")  # a typo, not an outage
TRANSIENT_NAMES = ("OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError", "ConnectionError",
                   "BusyLoadingError", "ReadOnlyError",
                   "PendingRollbackError", "ResourceClosedError")  # SQLAlchemy's session after a dropped connection

GRPC_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED")
OutageReport = Callable[[float, str, bool], None]  # (seconds down, error, over): called while a storage is down


class StorageUnreachable(StorageError):
    """A storage that stayed unreachable past the retry limit."""


def transient(exc: BaseException) -> bool:
    """Whether a storage error may pass by itself (a server restarting, a dropped connection, a locked file): worth
    retrying, unlike a missing table, a broken constraint or a bad URL. Optuna wraps SQLAlchemy's errors in
    StorageInternalError: its cause decides."""
    if isinstance(exc, StorageUnreachable):
        return False
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & set(NOT_TRANSIENT) or any(sign in str(exc).lower() for sign in UNKNOWN_HOST):
        return False
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        cause = exc.__cause__ or exc.__context__
        return cause is None or transient(cause)
    if "RpcError" in names:  # a `tunedeck proxy` restarting, or the network to it
        code = getattr(exc, "code", None)
        return callable(code) and getattr(code(), "name", "") in GRPC_TRANSIENT
    return isinstance(exc, OSError) or bool(names & set(TRANSIENT_NAMES))  # drivers, SQLAlchemy, Redis


def root_cause(exc: BaseException) -> BaseException:
    """What Optuna's StorageInternalError ("An exception is raised during the commit...") wraps: the driver's
    error, which says what happened (connection refused, server closed the connection)."""
    while isinstance(exc, optuna.exceptions.StorageInternalError) and (exc.__cause__ or exc.__context__):
        exc = exc.__cause__ or exc.__context__
    return exc


def unreachable_in(exc: BaseException) -> StorageUnreachable | None:
    """The StorageUnreachable behind `exc`, if any: Optuna sometimes raises another error while handling it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, StorageUnreachable):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class Outage:
    """One storage's outage clock, shared by every thread that calls it: when it stopped answering, how long a
    caller may wait, and who is told."""

    def __init__(self, url: str, limit: float, report: OutageReport | None = None,
                 interrupt: threading.Event | None = None) -> None:
        self.url, self.limit, self.report = url, limit, report
        self.interrupt = interrupt  # set (a view closed): stop retrying at once
        self._since: float | None = None
        self._last_failure = 0.0
        self._lock = threading.Lock()

    def failed(self, exc: BaseException, attempt: int) -> None:
        """After a transient error: wait before the next attempt, or raise StorageUnreachable past the limit."""
        with self._lock:
            first = self._since is None
            if first:
                self._since = time.monotonic()
            self._last_failure = time.monotonic()
            down = self._last_failure - self._since
        error = mask_secrets(first_line(root_cause(exc)), self.url)
        if first:
            log.warning("storage %s unreachable, retrying for up to %g s: %s", mask_url(self.url), self.limit, error)
        if self.report:
            self.report(down, error, False)
        if down >= self.limit or (self.interrupt is not None and self.interrupt.is_set()):
            raise StorageUnreachable(f"storage: {mask_url(self.url)} unreachable for {down:.0f} s: {error}") from None
        wait = min(MAX_WAIT, FIRST_WAIT * 2 ** attempt, max(0.05, self.limit - down))
        if self.interrupt is not None:
            self.interrupt.wait(wait)
        else:
            time.sleep(wait)  # a backoff between attempts, not a wait for a condition

    def answered(self, retried: bool) -> None:
        """A call went through. The outage is over when a retried call did, or when no call failed for a while
        (an answer from Optuna's cache during an outage proves nothing)."""
        if self._since is None:
            return
        with self._lock:
            if not retried and time.monotonic() - self._last_failure < 2 * MAX_WAIT:
                return
            since, self._since = self._since, None
        if since is not None:
            down = time.monotonic() - since
            log.warning("storage %s answers again after %.1f s", mask_url(self.url), down)
            if self.report:
                self.report(down, "", True)


def retry_call(outage: Outage, call: Callable[[], Any], landed: Callable[[], Any] | None = None,
               reset: Callable[[], None] | None = None) -> Any:
    """`call()`, retried on transient errors while `outage` allows. `reset()` runs after each failure (an RDB
    session whose connection dropped is discarded); `landed()` before each repeat: it returns the call's result
    if the lost attempt went through after all (None: repeat the call)."""
    attempt = 0
    while True:
        try:
            if attempt and landed is not None:
                found = landed()
                if found is not None:
                    outage.answered(retried=True)
                    return found
            result = call()
        except Exception as exc:
            if not transient(exc) or outage.limit <= 0:
                raise
            if reset is not None:
                reset()
            outage.failed(exc, attempt)
            attempt += 1
            continue
        outage.answered(retried=attempt > 0)
        return result


class RetryingStorage(BaseStorage, BaseHeartbeat):
    """An Optuna storage whose every call rides out an outage (see the module); heartbeats pass through."""

    def __init__(self, inner: BaseStorage, outage: Outage) -> None:
        self.inner, self.outage = inner, outage

    def _call(self, name: str, *args: Any, landed: Callable[[], Any] | None = None) -> Any:
        method = getattr(self.inner, name)
        return retry_call(self.outage, lambda: method(*args), landed, self._reset)

    def _reset(self) -> None:
        """After a failed call: this thread's RDB session is discarded (one whose connection dropped refuses
        every later call until rolled back), so the next attempt starts a fresh one."""
        try:
            self.inner.remove_session()
        except Exception:  # closing a session on a dead connection may fail too: it is discarded either way
            pass

    # --- studies ---------------------------------------------------------------------------------
    def create_new_study(self, directions: Sequence[optuna.study.StudyDirection], study_name: str | None = None) -> int:
        def landed() -> int | None:
            try:
                return self.inner.get_study_id_from_name(study_name) if study_name else None
            except KeyError:
                return None
        return self._call("create_new_study", directions, study_name, landed=landed)

    def delete_study(self, study_id: int) -> None:
        self._call("delete_study", study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._call("set_study_user_attr", study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._call("set_study_system_attr", study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._call("get_study_id_from_name", study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._call("get_study_name_from_id", study_id)

    def get_study_directions(self, study_id: int) -> list[optuna.study.StudyDirection]:
        return self._call("get_study_directions", study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._call("get_study_user_attrs", study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._call("get_study_system_attrs", study_id)

    def get_all_studies(self) -> list[optuna.study.FrozenStudy]:
        return self._call("get_all_studies")

    # --- trials ----------------------------------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        """A new trial carries a token, so that a retry finds it if the lost attempt created it."""
        token = uuid.uuid4().hex
        template = template_trial or FrozenTrial(
            number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(), datetime_complete=None,
            params={}, distributions={}, user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=-1)
        template = FrozenTrial(
            number=template.number, state=template.state, value=None, values=template.values,
            datetime_start=template.datetime_start, datetime_complete=template.datetime_complete,
            params=template.params, distributions=template.distributions, user_attrs=template.user_attrs,
            system_attrs={**template.system_attrs, CREATE_TOKEN: token},
            intermediate_values=template.intermediate_values, trial_id=template._trial_id)

        def landed() -> int | None:
            trials = self.inner.get_all_trials(study_id, deepcopy=False, states=(template.state,))
            return next((t._trial_id for t in trials if t.system_attrs.get(CREATE_TOKEN) == token), None)
        return self._call("create_new_trial", study_id, template, landed=landed)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: optuna.distributions.BaseDistribution) -> None:
        def landed() -> bool | None:
            return True if param_name in self.inner.get_trial(trial_id).params else None
        self._call("set_trial_param", trial_id, param_name, param_value_internal, distribution, landed=landed)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._call("get_trial_id_from_study_id_trial_number", study_id, trial_number)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        """A finished state that is already stored was this call's lost attempt. A WAITING trial taken (RUNNING)
        by a lost attempt cannot be told from one another worker took: it gets a heartbeat, so that if it was
        ours, it is reaped and retried like any trial whose worker went away."""
        def landed() -> bool | None:
            stored = self.inner.get_trial(trial_id)
            if state.is_finished() and stored.state == state:
                return True
            if state == TrialState.RUNNING and stored.state == TrialState.RUNNING:
                if is_heartbeat_enabled(self.inner):
                    self.inner.record_heartbeat(trial_id)
                return False
            return None
        return self._call("set_trial_state_values", trial_id, state, values, landed=landed)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._call("set_trial_intermediate_value", trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._call("set_trial_user_attr", trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._call("set_trial_system_attr", trial_id, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._call("get_trial", trial_id)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self._call("get_all_trials", study_id, deepcopy, states)

    def get_n_trials(self, study_id: int, state: TrialState | Sequence[TrialState] | None = None) -> int:
        return self._call("get_n_trials", study_id, state)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return self._call("get_best_trial", study_id)

    def remove_session(self) -> None:
        self.inner.remove_session()

    # --- heartbeats (RDB storages) ---------------------------------------------------------------
    def record_heartbeat(self, trial_id: int) -> None:
        """Best effort, on Optuna's heartbeat thread: past the limit the worker itself stops and says why."""
        try:
            self._call("record_heartbeat", trial_id)
        except StorageUnreachable:
            pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self._call("_get_stale_trial_ids", study_id)

    def get_heartbeat_interval(self) -> int | None:
        return self.inner.get_heartbeat_interval() if isinstance(self.inner, BaseHeartbeat) else None

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        if isinstance(self.inner, BaseHeartbeat):
            return self.inner.get_heartbeat_stale_trial_callback()
        return None


def fail_trial_now(study: optuna.Study, trial_id: int, error: str, tell: bool = True) -> bool:
    """One attempt, without retrying, to record why a running trial fails (`error`) and, with `tell`, mark it FAIL:
    a worker giving up on its storage says why while it still can. False if the storage did not take it (a view
    or another worker reaps the trial later)."""
    storage = getattr(study._storage, "inner", study._storage)
    try:
        storage.set_trial_user_attr(trial_id, schema.ERROR, error)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL) if tell else True
    except Exception:  # still unreachable, or finished in the meantime
        return False
