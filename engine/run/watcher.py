"""StudyWatcher: the events of a study that other processes run, read from its storage.

It emits what a runner emits (StudyStarted, TrialStarted, EpochEnded, TrialFinished, BestChanged,
ImportancesUpdated, StudyFinished), so every view consumes one event stream wherever the trials run. It never
imports TensorFlow or the user's code, and writes nothing but a stop request.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import replace

import optuna

from engine.contract import (
    AFTER_TRIAL,
    EngineError,
    Event,
    Scope,
    StopLatch,
    StopReason,
    StopRequest,
    StudyFinished,
    StudyStarted,
    Waiting,
)
from engine.errors import StorageError, first_line
from engine.store import (
    StudyFollower,
    close_storage,
    dialect,
    load_study,
    mask_url,
    open_existing_storage,
    open_storage,
    read_stop_request,
    reap_expired_leases,
    schema,
    stop_request_id,
    transient,
    write_stop_request,
)

log = logging.getLogger("tunedeck")
IMPORTANCE_SECONDS = 5.0  # a watched study with many workers recomputes importances at most this often
STORAGE_RETRY_SECONDS = 120.0  # how long a view rides out an unreachable storage before it gives up


class StudyWatcher:
    """Follows one study, as a source (engine.contract.Source): `run()` blocks until it ends or `close()`;
    `stop()` with the study's scope asks every worker to stop (a watcher runs nothing of its own to stop)."""

    trains_here = False
    owns_workers = False
    can_retrain = True

    def __init__(self, storage_url: str, study_name: str, emit: Callable[[Event], None] | None = None,
                 poll_seconds: float = 1.0, alive: Callable[[], bool] | None = None) -> None:
        self.storage_url = storage_url
        self.study_name = study_name
        self.emit = emit or (lambda event: None)
        self.poll_seconds = poll_seconds
        self.alive = alive  # the workers this view started are still running (None: not ours, unknown)
        self.latch = StopLatch()
        self._closed = threading.Event()
        self._outage_since: float | None = None  # when the storage stopped answering, while it does not
        self._reaped = -float("inf")  # when dead workers' trials were last looked for
        self._reaper: optuna.Study | None = None  # RDB: the study on a storage with the workers' heartbeat

    def stop(self, request: StopRequest = AFTER_TRIAL) -> None:
        """Ask every worker of the study to stop (written by the watching thread at its next poll). A request for
        this process only stops nothing: a watcher trains nothing."""
        if request.scope == Scope.STUDY:
            self.latch.ask(request)

    def close(self) -> None:
        """Stop watching; the workers go on."""
        self._closed.set()
        self.latch.changed.set()

    def _sleep(self) -> None:
        self.latch.changed.wait(self.poll_seconds)
        self.latch.changed.clear()

    def run(self) -> StudyFinished:
        try:
            storage = open_storage(self.storage_url) if self.alive else open_existing_storage(self.storage_url)
        except StorageError as exc:
            self.emit(EngineError(str(exc)))
            raise
        try:
            study = self._wait_for_study(storage)
            if study is None:
                if self._closed.is_set():
                    return self._finish(StopReason.CLOSED, "closed")
                return self._finish(StopReason.WORKERS_EXITED, "the workers exited before the study began", ok=False)
            return self._follow(study)
        finally:
            close_storage(storage)
            if self._reaper is not None:
                close_storage(self._reaper._storage)

    def _wait_for_study(self, storage: optuna.storages.BaseStorage) -> optuna.Study | None:
        """The study, once its creator recorded what it is (a view opened before the workers waits for them); None
        if closed or our workers exited first."""
        waiting = False
        while not self._closed.is_set():
            alive = self.alive is None or self.alive()  # read before looking: a last look sees what they wrote
            try:
                study = load_study(storage, self.storage_url, self.study_name)
                if schema.DATA in study.user_attrs:
                    return study
            except StorageError:
                if not waiting and self.alive is None:
                    self.emit(Waiting(f"waiting for study {self.study_name!r} in {mask_url(self.storage_url)}"))
                waiting = True
            if not alive:
                return None
            self._sleep()
        return None

    def _follow(self, study: optuna.Study) -> StudyFinished:
        attrs = study.user_attrs
        data, env = attrs.get(schema.DATA, {}), attrs.get(schema.ENVIRONMENT, {})
        follower = StudyFollower(study, self.emit, importance_interval=IMPORTANCE_SECONDS)
        earlier_stop = stop_request_id(attrs)  # one that ended an earlier run
        # n_finished 0: the first poll replays every finished trial as TrialFinished
        self.emit(StudyStarted(study.study_name, mask_url(self.storage_url), data.get("name", "?"),
                               data.get("note", ""), data.get("n_train", 0), data.get("n_test", 0),
                               env.get("device", "?"), attrs.get(schema.N_TRIALS, 0), 0,
                               tuple(attrs.get(schema.PARAM_NAMES, ())), "", follower.goal.metric,
                               follower.goal.maximize, data.get("num_classes", 0), tuple(data.get("input_shape", ()))))
        stop: StopRequest | None = None
        while True:
            alive = self.alive is None or self.alive()  # read before the poll, so that the poll counts all they did
            try:
                self._write_stop_request(study)
                self._reap_dead_trials(study)
                counts = follower.poll()
                attrs = study.user_attrs
            except Exception as exc:
                if not transient(exc):
                    raise
                self._storage_failed(exc)
                self._sleep()
                continue
            self._storage_answered()
            n_trials = attrs.get(schema.N_TRIALS, 0)
            found = read_stop_request(attrs)
            if found is not None and found[0] != earlier_stop:
                stop = found[1]
            idle = counts.running == 0
            if counts.counted >= n_trials and idle:
                return self._finish(StopReason.FINISHED, f"finished {n_trials} trials", follower)
            if stop and idle:
                return self._finish(StopReason.STOPPED, stop.text(), follower)
            if self._closed.is_set():
                return self._finish(StopReason.CLOSED, "closed", follower)
            if not alive:
                if stop:
                    return self._finish(StopReason.STOPPED, stop.text(), follower)
                return self._finish(StopReason.WORKERS_EXITED, f"the workers exited with {counts.counted} of "
                                                               f"{n_trials} trials finished", follower, ok=False)
            self._sleep()

    def _reap_dead_trials(self, study: optuna.Study) -> None:
        """Every `heartbeat` seconds, trials whose worker is gone become FAIL (and are retried), so that a view
        never shows a dead trial as running, even when no worker is left to notice: RDB storages by Optuna's
        heartbeat, journal storages by the trial's lease. The workers' heartbeat is read from the study."""
        heartbeat = study.user_attrs.get(schema.CONFIG, {}).get("heartbeat")
        if not isinstance(heartbeat, int) or time.monotonic() - self._reaped < heartbeat:
            return
        self._reaped = time.monotonic()
        if dialect(self.storage_url) == "journal":
            for number in reap_expired_leases(study, 2 * heartbeat):
                log.warning("trial %d: its worker stopped renewing its lease: marked FAIL, retried", number)
            return
        if self._reaper is None:
            storage = open_storage(self.storage_url, heartbeat=heartbeat)
            self._reaper = load_study(storage, self.storage_url, self.study_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self._reaper)

    def _storage_failed(self, exc: Exception) -> None:
        """A poll that the storage did not answer: said once, retried for STORAGE_RETRY_SECONDS, then an error
        (the workers go on: a view's trouble never stops them)."""
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            log.warning("storage unreachable, retrying: %s", first_line(exc))
            self.emit(EngineError(f"storage unreachable, retrying: {first_line(exc)}"))
        if now - self._outage_since > STORAGE_RETRY_SECONDS:
            seconds = now - self._outage_since
            raise StorageError(f"storage: {mask_url(self.storage_url)} unreachable for {seconds:.0f} s: "
                               f"{first_line(exc)}") from None

    def _storage_answered(self) -> None:
        if self._outage_since is not None:
            log.warning("storage answers again after %.1f s", time.monotonic() - self._outage_since)
            self._outage_since = None

    def _write_stop_request(self, study: optuna.Study) -> None:
        pending = self.latch.unwritten()
        if pending is not None:
            write_stop_request(study, replace(pending, by=pending.by or f"a view on {platform.node()}"))
            self.latch.mark_written(pending)

    def _finish(self, reason: StopReason, detail: str, follower: StudyFollower | None = None,
                ok: bool = True) -> StudyFinished:
        counts = follower.poll(final=True) if follower else None
        event = StudyFinished(reason, ok, counts.complete if counts else 0, counts.pruned if counts else 0,
                              counts.failed if counts else 0, detail)
        self.emit(event)
        return event
