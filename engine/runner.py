"""StudyRunner: runs an Optuna study in the calling thread and emits events."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import platform
import threading
import time
from collections.abc import Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.config import StudyConfig, validate
from engine.errors import ConfigError, TrialFailed, first_line
from engine.events import (
    BestChanged,
    EngineError,
    Event,
    ImportancesUpdated,
    StudyFinished,
    StudyStarted,
    TrialFinished,
    TrialStarted,
)
from engine.logs import log_to_file
from engine.report import MIN_TRIALS_FOR_IMPORTANCE
from engine.space import fixed_params, suggest

log = logging.getLogger("tunedeck")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_FAILURES_IN_A_ROW = 3


def make_sampler(config: StudyConfig, n_existing: int = 0) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for the config (TPE keeps Optuna's defaults).

    A resumed study that already has `n_existing` trials is seeded with seed + n_existing: a sampler seeded
    as before would draw the first trials' parameters again (TPE's random start-up trials included)."""
    seed = config.seed + n_existing
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """Optuna's pruner for the config."""
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


@contextlib.contextmanager
def opened_study(config: StudyConfig) -> Iterator[optuna.Study]:
    """Create the study or load it (so the same command resumes); storage errors name the storage.

    The runner owns the storage it opens and disposes its connection pool at the end: a process that runs
    many studies (the app, a benchmark) would otherwise keep every SQLite connection and its cache."""
    if not config.storage:
        config.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        storage = optuna.storages.RDBStorage(config.storage_url)
        study = optuna.create_study(study_name=config.name, storage=storage, direction="maximize",
                                    sampler=make_sampler(config), pruner=make_pruner(config), load_if_exists=True)
    except Exception as exc:  # SQLAlchemy/driver errors: a bad URL, a missing driver, an unreachable server
        raise ConfigError(f"storage: cannot open {config.storage_url!r}: {first_line(exc)}") from None
    try:
        yield study
    finally:
        storage.engine.dispose()


def trial_finished_event(trial: FrozenTrial) -> TrialFinished:
    """The TrialFinished event for a finished trial read from storage."""
    attrs = trial.user_attrs
    duration = trial.duration.total_seconds() if trial.duration else 0.0
    return TrialFinished(
        number=trial.number, state=trial.state.name, value=trial.value, params=dict(trial.params),
        duration=duration, test_accuracy=attrs.get("test_accuracy"), val_accuracy=attrs.get("val_accuracy"),
        epochs_trained=attrs.get("epochs_trained", 0), error=attrs.get("error", ""),
        curve=tuple(attrs.get("curve", ())))


def environment() -> dict[str, str]:
    """Versions and device, stored on the study and shown in the report."""
    import keras
    import tensorflow as tf

    from engine.device import device_name

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "optuna": optuna.__version__, "device": device_name(), "host": platform.node()}


@functools.cache
def freeze_imports() -> None:
    """Once per process, before a run creates anything: import TensorFlow and Keras and move their objects
    (which live as long as the process) out of the collector's way, so the per-trial gc.collect()
    (gc_after_trial) walks only new objects. Frozen objects are never collected, so no run's own objects
    (its storage, its study) may exist yet."""
    import engine.training  # noqa: F401  (imports TensorFlow and Keras)

    gc.collect()
    gc.freeze()


class StudyRunner:
    """Runs one study: `run()` blocks (call it from a thread); `stop()` is thread-safe."""

    def __init__(self, config: StudyConfig, emit: Callable[[Event], None] | None = None) -> None:
        self.config = validate(config)
        self.emit = emit or (lambda event: None)
        self._stop_after_trial = threading.Event()
        self._stop_now = threading.Event()
        self._stop_reason = ""
        self._ok = True
        self._failures_in_a_row = 0
        self._best: float | None = None

    def stop(self, now: bool = False) -> None:
        """Stop after the running trial, or with now=True at the next batch."""
        self._stop_after_trial.set()
        if now:
            self._stop_now.set()

    def run(self) -> StudyFinished:
        """Run the study to its end; user errors raise ConfigError/DatasetError after an EngineError event."""
        freeze_imports()
        with log_to_file(self.config.run_dir / "tunedeck.log") as log_path:
            try:
                with opened_study(self.config) as study:
                    return self._run(study, str(log_path))
            except Exception as exc:
                log.exception("engine error")
                self.emit(EngineError(str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"))
                raise

    def _run(self, study: optuna.Study, log_path: str) -> StudyFinished:
        from engine.data import load_dataset
        from engine.device import configure_gpus
        from engine.keeper import ModelKeeper
        from engine.training import PreparedData

        config = self.config
        configure_gpus()  # memory growth, before anything else touches the GPU
        env = environment()
        dataset = load_dataset(config.dataset, config.subset)
        if dataset.note:
            log.info(dataset.note)
        self._data = PreparedData.from_dataset(dataset)
        study.set_user_attr("config", config.to_dict())
        study.set_user_attr("environment", env)
        self._fail_stale_trials(study)
        study.sampler = make_sampler(config, len(study.get_trials(deepcopy=False)))

        done = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL))
        n_finished = sum(t.state in FINISHED for t in done)
        complete = [t for t in done if t.state == TrialState.COMPLETE]
        self._keeper = ModelKeeper(config.run_dir / "models", config.keep_best,
                                   [(t.value, t.number) for t in complete])
        self.emit(StudyStarted(config.name, config.storage_url, dataset.name, dataset.note, len(dataset.y_train),
                               len(dataset.y_test), env["device"], config.n_trials, n_finished,
                               tuple(spec.name for spec in config.trial_space if spec.kind != "fixed"), log_path))
        for trial in done:
            self._after_trial(study, trial, replay=True)
        if n_finished >= config.n_trials:
            return self._finish(study, f"the study already has {n_finished} finished trials (n_trials = "
                                       f"{config.n_trials}); raise n_trials to run more")
        if not self._stop_after_trial.is_set():
            started = time.monotonic()
            study.optimize(
                self._objective, timeout=config.timeout or None, catch=(TrialFailed,),
                callbacks=[optuna.study.MaxTrialsCallback(config.n_trials, states=FINISHED), self._after_trial],
                gc_after_trial=True, show_progress_bar=False)
            if not self._stop_reason and config.timeout and time.monotonic() - started >= config.timeout:
                self._stop_reason = f"timeout after {config.timeout:g} s"
        return self._finish(study, self._stop_reason or ("stopped by user" if self._stop_after_trial.is_set()
                                                         else f"finished {config.n_trials} trials"))

    def _finish(self, study: optuna.Study, reason: str) -> StudyFinished:
        counts = {state: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        for trial in study.get_trials(deepcopy=False, states=tuple(counts)):
            counts[trial.state] += 1
        log.info("study %s ended: %s", study.study_name, reason)
        event = StudyFinished(reason, self._ok, counts[TrialState.COMPLETE], counts[TrialState.PRUNED],
                              counts[TrialState.FAIL])
        self.emit(event)
        return event

    def _fail_stale_trials(self, study: optuna.Study) -> None:
        """Trials left RUNNING by a killed process become FAIL (only for single-process SQLite storage)."""
        if not self.config.storage_url.startswith("sqlite"):
            return
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study._storage.set_trial_user_attr(trial._trial_id, "error", "process died while the trial ran")
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            log.warning("trial %d was left running by a dead process: marked FAIL", trial.number)

    def _objective(self, trial: optuna.Trial) -> float:
        from engine.training import train_trial

        config = self.config
        if self._stop_after_trial.is_set():
            trial.study.stop()
            trial.set_user_attr("error", "stopped by user before training")
            raise TrialFailed("stopped by user before training")
        params = suggest(trial, config.trial_space)
        fixed = fixed_params(config.trial_space)
        if fixed:
            trial.set_user_attr("fixed_params", fixed)
        all_params = {**fixed, **params}
        self.emit(TrialStarted(trial.number, params, int(all_params["epochs"])))
        try:
            result = train_trial(trial, config.model, all_params, self._data, config.seed, self.emit,
                                 self._stop_now, prune=config.pruner != "none",
                                 patience=config.early_stopping_patience, mixed_precision=config.mixed_precision)
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            log.warning("trial %d failed: %s", trial.number, exc)
            if self._stop_now.is_set():
                trial.study.stop()
            raise
        trial.set_user_attr("val_accuracy", result.val_accuracy)
        trial.set_user_attr("test_accuracy", result.test_accuracy)
        value = result.test_accuracy if config.objective == "test_accuracy" else result.val_accuracy
        if not math.isfinite(value):
            trial.set_user_attr("error", f"objective {config.objective} is {value}")
            raise TrialFailed(f"objective {config.objective} is {value}")
        path = self._keeper.offer(trial.number, value, result.model)
        if path:
            trial.set_user_attr("model_path", str(path))
        return value

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial, replay: bool = False) -> None:
        """Optuna callback: emit the trial, a new best, importances; count failures; honour stop."""
        event = trial_finished_event(trial)
        self.emit(event)
        user_stop = "stopped by user" in event.error
        if trial.state == TrialState.FAIL and not user_stop and not replay:
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                self._ok = False
                self._stop_reason = f"{MAX_FAILURES_IN_A_ROW} trials failed in a row; last error: {event.error}"
                study.stop()
        elif trial.state != TrialState.FAIL:
            self._failures_in_a_row = 0
        if trial.state == TrialState.COMPLETE and (self._best is None or trial.value > self._best):
            self._best = trial.value
            self.emit(BestChanged(trial.number, trial.value, dict(trial.params), event.test_accuracy))
        if not replay:
            self._update_importances(study)
            if self._stop_after_trial.is_set():
                study.stop()

    def _update_importances(self, study: optuna.Study) -> None:
        if all(spec.kind == "fixed" for spec in self.config.trial_space):
            return
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < MIN_TRIALS_FOR_IMPORTANCE:
            return
        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as exc:  # e.g. all values equal
            log.info("importances not computed: %s", exc)
            return
        self.emit(ImportancesUpdated(dict(importances)))

