"""StudyWatcher: the events of a study that other processes run, read from its storage.

It emits what a runner emits (StudyStarted, TrialStarted, EpochEnded, TrialFinished, BestChanged,
ImportancesUpdated, StudyFinished), so every view consumes one event stream wherever the trials run. It never
imports TensorFlow or the user's code, and writes nothing but a stop request.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Callable

import optuna

from engine import control, schema
from engine.errors import StorageError
from engine.events import EngineError, Event, StudyFinished, StudyStarted
from engine.follower import StudyFollower
from engine.storage import close_storage, load_study, mask_url, open_existing_storage, open_storage

log = logging.getLogger("tunedeck")
IMPORTANCE_SECONDS = 5.0  # a watched study with many workers recomputes importances at most this often


class StudyWatcher:
    """Follows one study: `run()` blocks until it ends or `close()`; `stop()` asks every worker to stop."""

    def __init__(self, storage_url: str, study_name: str, emit: Callable[[Event], None] | None = None,
                 poll_seconds: float = 1.0, alive: Callable[[], bool] | None = None) -> None:
        self.storage_url = storage_url
        self.study_name = study_name
        self.emit = emit or (lambda event: None)
        self.poll_seconds = poll_seconds
        self.alive = alive  # the workers this view started are still running (None: not ours, unknown)
        self._request: bool | None = None  # a stop request to write: now or not
        self._closed = threading.Event()
        self._wake = threading.Event()

    def stop(self, now: bool = False, everywhere: bool = True, cause: str = "user") -> None:
        """Ask every worker of the study to stop after its trial (now=True: at the next batch)."""
        self._request = now or bool(self._request)
        self._wake.set()

    def close(self) -> None:
        """Stop watching; the workers go on."""
        self._closed.set()
        self._wake.set()

    def _sleep(self) -> None:
        self._wake.wait(self.poll_seconds)
        self._wake.clear()

    def run(self) -> StudyFinished:
        try:
            storage = open_storage(self.storage_url) if self.alive else open_existing_storage(self.storage_url)
        except StorageError as exc:
            self.emit(EngineError(str(exc)))
            raise
        try:
            study = self._wait_for_study(storage)
            if study is None:
                return self._finish("the workers exited before the study began" if not self._closed.is_set()
                                    else "closed", ok=self._closed.is_set())
            return self._follow(study)
        finally:
            close_storage(storage)

    def _wait_for_study(self, storage: optuna.storages.BaseStorage) -> optuna.Study | None:
        """The study, once its creator recorded what it is; None if closed or our workers exited first."""
        while not self._closed.is_set():
            try:
                study = load_study(storage, self.storage_url, self.study_name)
                if schema.DATA in study.user_attrs:
                    return study
            except StorageError:
                if self.alive is None:
                    self.emit(EngineError(f"study-name: no study {self.study_name!r} in {mask_url(self.storage_url)}"))
                    raise
            if self.alive is not None and not self.alive():
                return None
            self._sleep()
        return None

    def _follow(self, study: optuna.Study) -> StudyFinished:
        attrs = study.user_attrs
        data, env = attrs.get(schema.DATA, {}), attrs.get(schema.ENVIRONMENT, {})
        follower = StudyFollower(study, self.emit, importance_interval=IMPORTANCE_SECONDS)
        earlier_stop = control.request_id(attrs.get(schema.STOP_REQUEST))  # one that ended an earlier run
        # n_finished 0: the first poll replays every finished trial as TrialFinished
        objective = attrs.get(schema.CONFIG, {}).get("objective", "val_accuracy")
        self.emit(StudyStarted(study.study_name, mask_url(self.storage_url), data.get("name", "?"),
                               data.get("note", ""), data.get("n_train", 0), data.get("n_test", 0),
                               env.get("device", "?"), attrs.get(schema.N_TRIALS, 0), 0,
                               tuple(attrs.get(schema.PARAM_NAMES, ())), "", objective,
                               study.direction == optuna.study.StudyDirection.MAXIMIZE,
                               data.get("num_classes", 0), tuple(data.get("input_shape", ()))))
        stopped_by = ""
        while True:
            if self._request is not None:
                now, self._request = self._request, None
                control.request_stop(study, now, f"a view on {platform.node()}")
            counts = follower.poll()
            attrs = study.user_attrs
            n_trials = attrs.get(schema.N_TRIALS, 0)
            request = attrs.get(schema.STOP_REQUEST)
            if request and request["id"] != earlier_stop:
                stopped_by = f"stopped by {request['by']}"
            idle = counts.running == 0
            if counts.finished >= n_trials and idle:
                return self._finish(f"finished {n_trials} trials", follower)
            if stopped_by and idle:
                return self._finish(stopped_by, follower)
            if self._closed.is_set():
                return self._finish("closed", follower)
            if self.alive is not None and not self.alive():
                return self._finish(stopped_by or "the workers exited", follower, ok=bool(stopped_by))
            self._sleep()

    def _finish(self, reason: str, follower: StudyFollower | None = None, ok: bool = True) -> StudyFinished:
        counts = follower.poll(final=True) if follower else None
        event = StudyFinished(reason, ok, counts.complete if counts else 0, counts.pruned if counts else 0,
                              counts.failed if counts else 0)
        self.emit(event)
        return event

