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
    StorageOutage,
    StudyFinished,
    StudyStarted,
    Waiting,
)
from engine.errors import StorageError
from engine.store import (
    StorageUnreachable,
    StudyFollower,
    close_storage,
    has_heartbeat,
    load_study,
    mask_url,
    open_existing_storage,
    open_storage,
    read_stop_request,
    reap_expired_leases,
    schema,
    stop_request_id,
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
                 poll_seconds: float = 1.0, alive: Callable[[], bool] | None = None,
                 storage_retry: float = STORAGE_RETRY_SECONDS) -> None:
        self.storage_url = storage_url
        self.study_name = study_name
        self.emit = emit or (lambda event: None)
        self.poll_seconds = poll_seconds
        self.alive = alive  # the workers this view started are still running (None: not ours, unknown)
        self.storage_retry = storage_retry  # seconds of an outage ridden out, retrying every storage call
        self.latch = StopLatch()
        self._closed = threading.Event()
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
        retry = {"retry": self.storage_retry, "report": self._outage, "interrupt": self._closed}
        try:
            storage = open_storage(self.storage_url, **retry) if self.alive else \
                open_existing_storage(self.storage_url, **retry)
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
        except StorageUnreachable as exc:  # past storage_retry (or closed during an outage); the workers go on
            if self._closed.is_set():
                return self._finish(StopReason.CLOSED, "closed")
            self.emit(EngineError(str(exc)))
            return self._finish(StopReason.STORAGE_UNREACHABLE, str(exc), ok=False)
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
        first = next((t.datetime_start for t in study.get_trials(deepcopy=False) if t.datetime_start), None)
        # n_finished 0: the first poll replays every finished trial as TrialFinished
        self.emit(StudyStarted(study.study_name, mask_url(self.storage_url), data.get("name", "?"),
                               data.get("note", ""), data.get("n_train", 0), data.get("n_test", 0),
                               env.get("device", "?"), attrs.get(schema.N_TRIALS, 0), 0,
                               tuple(attrs.get(schema.PARAM_NAMES, ())), "", follower.goal.metric,
                               follower.goal.maximize, data.get("num_classes", 0), tuple(data.get("input_shape", ())),
                               first.timestamp() if first else None))
        stop: StopRequest | None = None
        heartbeat = attrs.get(schema.CONFIG, {}).get("heartbeat", 30)
        idle_grace = max(2 * heartbeat if isinstance(heartbeat, int) else 60, 5 * self.poll_seconds)
        busy, said_idle = time.monotonic(), False  # when a trial last ran or waited; "no live worker" said
        while True:
            alive = self.alive is None or self.alive()  # read before the poll, so that the poll counts all they did
            self._write_stop_request(study)
            self._reap_dead_trials(study)
            counts = follower.poll()  # every storage call rides out an outage (StorageOutage events)
            attrs = study.user_attrs
            n_trials = attrs.get(schema.N_TRIALS, 0)
            found = read_stop_request(attrs)
            if found is not None and found[0] != earlier_stop:
                stop = found[1]
            idle = counts.running == 0
            if not idle or counts.waiting:
                busy, said_idle = time.monotonic(), False
            elif self.alive is None and not said_idle and time.monotonic() - busy > idle_grace \
                    and counts.counted < n_trials and not stop:  # every worker is gone (their trials reaped)
                said_idle = True
                self.emit(Waiting(f"no live worker: nothing has run for {idle_grace:g} s; {counts.counted} of "
                                  f"{n_trials} trials finished (start a worker to go on)", state="no live worker"))
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
        if not has_heartbeat(self.storage_url):
            for number in reap_expired_leases(study, 2 * heartbeat):
                log.warning("trial %d: its worker stopped renewing its lease: marked FAIL, retried", number)
            return
        if self._reaper is None:
            storage = open_storage(self.storage_url, heartbeat=heartbeat, retry=self.storage_retry,
                                   report=self._outage, interrupt=self._closed)
            self._reaper = load_study(storage, self.storage_url, self.study_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self._reaper)

    def _outage(self, seconds: float, error: str, over: bool) -> None:
        self.emit(StorageOutage(seconds, error, over))

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
