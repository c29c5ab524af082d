"""StudyRunner: one worker of a study, run in the calling thread; emits events for the whole study.

Any number of runners (processes, machines) may share a study through its storage, which is the only thing
they share: it hands out trial numbers, holds the budget, the stop request and each trial's worker. A runner
starts a trial only while finished + running < n_trials, and keeps a trial only if fewer than n_trials
trials that could still finish came before it, so the study ends with exactly n_trials finished trials.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine import control, schema
from engine.compat import check_compatible
from engine.config import StudyConfig, validate
from engine.errors import StorageError, TrialFailed, TrialStopped, UserError, first_line
from engine.events import EngineError, Event, StudyFinished, StudyStarted, TrialStarted
from engine.follower import Counts, StudyFollower
from engine.keeper import ModelKeeper, remove_leftovers
from engine.logs import log_to_file
from engine.sampling import make_pruner, make_sampler
from engine.signals import interrupts_held
from engine.space import fixed_params, suggest
from engine.storage import check_storage_files, close_storage, dialect, mask_secrets, mask_url, open_storage
from engine.trainer import DataInfo, Trainer
from engine.workers import WorkerInfo, fail_dead_local_trials, this_worker

log = logging.getLogger("tunedeck")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_FAILURES_IN_A_ROW = 3


@contextlib.contextmanager
def opened_study(config: StudyConfig) -> Iterator[optuna.Study]:
    """Create the study or load it (so the same command resumes, and every worker joins the same study);
    errors name the storage, masked. The storage's connections are released at the end."""
    storage = open_storage(config.storage_url, heartbeat=config.heartbeat)
    try:
        study = optuna.create_study(study_name=config.name, storage=storage,
                                    direction="maximize" if config.maximize else "minimize",
                                    sampler=make_sampler(config), pruner=make_pruner(config), load_if_exists=True)
    except Exception as exc:
        close_storage(storage)
        url = config.storage_url
        raise StorageError(f"storage: cannot open study {config.name!r} in {mask_url(url)}: "
                           f"{mask_secrets(first_line(exc), url)}") from None
    try:
        yield study
    finally:
        close_storage(study._storage)


def stored_form(config: StudyConfig) -> dict:
    """The config as the study records it: the storage masked, and named even when it came from the environment."""
    data = config.to_dict()
    data["storage"] = mask_url(config.storage_url)
    return data


def record_study(study: optuna.Study, config: StudyConfig, info: DataInfo, worker: WorkerInfo,
                 changes: list[str]) -> None:
    """What the study is, stored once when it is created (and its compatible changes, when a run makes some);
    this worker's environment and the study's target, every run."""
    attrs = study.user_attrs
    if changes:
        log.info("this run changes the study: %s", "; ".join(changes))
        history = attrs.get(schema.CONFIG_CHANGES, [])
        history.append({"at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "by": worker.id,
                        "changes": changes})
        study.set_user_attr(schema.CONFIG_CHANGES, history)
        study.set_user_attr(schema.CONFIG, stored_form(config))
    if schema.DATA not in attrs:
        study.set_user_attr(schema.CONFIG, stored_form(config))
        study.set_user_attr(schema.ENVIRONMENT, info.environment)
        study.set_user_attr(schema.PARAM_NAMES, [s.name for s in config.trial_space if s.kind != "fixed"])
        study.set_user_attr(schema.MODEL, info.model)
        study.set_user_attr(schema.DATA, {"name": info.dataset, "note": info.note, "n_train": info.n_train,
                                          "n_test": info.n_test, **info.details})  # last: a watcher waits for it
    study.set_user_attr(schema.WORKER_ENV_PREFIX + worker.id, info.environment)
    if attrs.get(schema.N_TRIALS) != config.n_trials:
        study.set_user_attr(schema.N_TRIALS, config.n_trials)


class StudyRunner:
    """Runs one worker: `run()` blocks (call it from a thread); `stop()` and `close()` are thread-safe."""

    def __init__(self, config: StudyConfig, emit: Callable[[Event], None] | None = None,
                 trainer: Trainer | None = None, poll_seconds: float = 2.0) -> None:
        self.config = validate(config)
        self.emit = emit or (lambda event: None)
        self.trainer = trainer
        self.poll_seconds = poll_seconds  # how often the stop request and other workers' trials are read
        self._stop_after_trial = threading.Event()
        self._stop_now = threading.Event()
        self._request_everywhere: bool | None = None  # a study-wide stop still to write: now or not
        self._wake = threading.Event()
        self._stop_cause = "user"
        self._stop_reason = ""
        self._ok = True
        self._failures_in_a_row = 0

    def stop(self, now: bool = False, everywhere: bool = True, cause: str = "user") -> None:
        """Stop after the running trial (now=True: at the next batch). everywhere: every worker of the study
        (a request written to the storage by the engine within poll_seconds); else only this worker."""
        if everywhere:
            self._request_everywhere = now or bool(self._request_everywhere)
        self._stop_cause = cause
        self._stop_reason = self._stop_reason or f"stopped by {cause}"
        self._stop_after_trial.set()
        if now:
            self._stop_now.set()
        self._wake.set()

    def close(self) -> None:
        """Stop viewing: a runner trains in this process, so closing it stops this worker now."""
        self.stop(now=True, everywhere=False)

    def run(self) -> StudyFinished:
        """Run this worker to the study's end; user errors raise UserError after an EngineError event."""
        if self.trainer is None:
            with interrupts_held():  # TensorFlow
                from engine.training import KerasTrainer
            self.trainer = KerasTrainer()
        try:
            check_storage_files(self.config.storage_url)  # a bad dataset or storage file is refused before
            info = self.trainer.prepare(self.config)  # anything is created
            self.worker = this_worker(info.device)
            with log_to_file(self.config.make_run_dir() / "tunedeck.log") as log_path:
                try:
                    with opened_study(self.config) as study:
                        return self._run(study, info, str(log_path))
                except Exception:
                    log.exception("engine error")
                    raise
        except Exception as exc:
            text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self.emit(EngineError(mask_secrets(text, self.config.storage_url)))
            raise

    def _run(self, study: optuna.Study, info: DataInfo, log_path: str) -> StudyFinished:
        config = self.config
        changes = check_compatible(study, config, study.user_attrs.get(schema.CONFIG), info.model)
        record_study(study, config, info, self.worker, changes)
        self._seen_stop = control.request_id(control.stop_request(study))
        n_finished = len(study.get_trials(deepcopy=False, states=FINISHED))
        self.emit(StudyStarted(config.name, mask_url(config.storage_url), info.dataset, info.note, info.n_train,
                               info.n_test, info.device, config.n_trials, n_finished,
                               tuple(spec.name for spec in config.trial_space if spec.kind != "fixed"), log_path,
                               config.objective, config.maximize, info.details.get("num_classes", 0),
                               tuple(info.details.get("input_shape", ()))))
        log.info("worker %s joined study %s", self.worker.id, config.name)
        for leftover in remove_leftovers(config.run_dir / "models"):
            log.info("removed %s, a model a killed process was writing", leftover.name)
        if info.note:
            log.info(info.note)
        self.follower = StudyFollower(study, self.emit)
        if self.follower.poll(final=True).finished >= config.n_trials:  # a resumed study's trials, and others'
            self._stop_reason = (f"the study already has {self.follower.counts.finished} finished trials "
                                 f"(n_trials = {config.n_trials}); raise n_trials to run more")
        if dialect(config.storage_url) == "journal":
            for number in fail_dead_local_trials(study, self.worker.host):
                log.warning("trial %d was left running by a dead worker on this host: marked FAIL, retried", number)
        done = threading.Event()
        poller = threading.Thread(target=self._poll_stop_requests, args=(study, done), daemon=True)
        poller.start()
        try:
            started = time.monotonic()
            while self._wait_for_slot(study, started):
                study.optimize(self._objective, n_trials=1, catch=(TrialFailed,), callbacks=[self._after_trial],
                               gc_after_trial=True, show_progress_bar=False)
        finally:
            done.set()
            poller.join()
        if self._request_everywhere is not None:  # asked for just before this worker ended: still tell the others
            self._sync_stop_request(study)
        return self._finish(self.follower.poll(final=True))

    # --- the budget ------------------------------------------------------------------------------
    def _wait_for_slot(self, study: optuna.Study, started: float) -> bool:
        """Whether to start another trial; while other workers' trials fill the budget, wait for them (one
        may fail and free its slot). Sets the reason when the answer is no."""
        config, waiting = self.config, False
        while True:
            counts = self.follower.poll()  # fresh: the moment between this check and the ask is the only race
            if self._stop_reason or self._stop_after_trial.is_set() or not self._ok:
                return False
            if config.timeout and time.monotonic() - started >= config.timeout:
                self._stop_reason = f"timeout after {config.timeout:g} s"
                return False
            if counts.finished >= config.n_trials:
                self._stop_reason = f"finished {config.n_trials} trials"
                return False
            if counts.finished + counts.running < config.n_trials:
                return True
            if not waiting:
                waiting = True
                log.info("waiting: %d running trials of other workers fill the budget", counts.running)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # other workers' trials whose heartbeat stopped

    def _trials_ahead(self, trial: optuna.Trial) -> int:
        """Trials numbered before this one that may still finish: if n_trials of them exist, this one is not
        needed (another worker took the last slot in the same moment)."""
        trials = trial.study.get_trials(deepcopy=False)
        return sum(t.state != TrialState.FAIL for t in trials[:trial.number])

    # --- one trial -------------------------------------------------------------------------------
    def _objective(self, trial: optuna.Trial) -> float:
        config = self.config
        trial.set_user_attr(schema.WORKER, self.worker.record())
        if self._stop_after_trial.is_set():
            raise self._stopped(trial, self._stop_cause, f"stopped by {self._stop_cause} before training")
        if self._trials_ahead(trial) >= config.n_trials:
            raise self._stopped(trial, "budget", f"not run: other workers' trials already make the study's "
                                                 f"{config.n_trials}")
        params = suggest(trial, config.trial_space)
        fixed = fixed_params(config.trial_space)
        if fixed:
            trial.set_user_attr(schema.FIXED_PARAMS, fixed)
        all_params = {**fixed, **params}
        self.follower.claim(trial.number)
        self.emit(TrialStarted(trial.number, params, int(all_params["epochs"]), self.worker.id))
        try:
            result = self.trainer.train(trial, all_params, self.emit, self._stop_now)
        except TrialStopped as exc:
            raise self._stopped(trial, self._stop_cause, f"stopped by {self._stop_cause} {exc}") from None
        except TrialFailed as exc:
            trial.set_user_attr(schema.ERROR, str(exc))
            log.warning("trial %d failed: %s", trial.number, exc)
            raise
        trial.set_user_attr(schema.VAL_ACCURACY, result.val_accuracy)
        trial.set_user_attr(schema.TEST_ACCURACY, result.test_accuracy)
        trial.set_user_attr(schema.VAL_LOSS, result.val_loss)
        value = {"test_accuracy": result.test_accuracy, "val_accuracy": result.val_accuracy,
                 "val_loss": result.val_loss}[config.objective]
        if not math.isfinite(value):
            trial.set_user_attr(schema.ERROR, f"objective {config.objective} is {value}")
            raise TrialFailed(f"objective {config.objective} is {value}")
        self._keep_model(trial, value, result.model)
        return value

    def _stopped(self, trial: optuna.Trial, cause: str, error: str) -> TrialFailed:
        """A trial ended on purpose: FAIL with why, not counted as a failure."""
        trial.set_user_attr(schema.STOPPED_BY, cause)
        trial.set_user_attr(schema.ERROR, error)
        log.info("trial %d: %s", trial.number, error)
        return TrialFailed(error)

    def _keep_model(self, trial: optuna.Trial, value: float, model) -> None:
        """Save the model if it ranks in the study's best keep_best. Optional: the trial's results are already
        in the storage, and a model that cannot be written leaves a warning on a trial that still counts."""
        keeper = ModelKeeper(self.config.run_dir / "models", self.config.keep_best, self.config.maximize)
        try:
            keeper.offer(trial.study, trial.number, value, model)
        except Exception as exc:  # a full disk, a read-only folder, a Keras serialisation error
            warning = f"model not saved: {first_line(exc)}"
            trial.set_user_attr(schema.MODEL_WARNING, warning)
            log.warning("trial %d: %s", trial.number, warning)

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: count failures in a row (the next poll emits the trial)."""
        if trial.state == TrialState.FAIL and not schema.stopped(trial):
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                self._ok = False
                self._stop_reason = (f"{MAX_FAILURES_IN_A_ROW} trials failed in a row; last error: "
                                     f"{schema.trial_error(trial)}")
        elif trial.state != TrialState.FAIL:
            self._failures_in_a_row = 0

    def _finish(self, counts: Counts) -> StudyFinished:
        reason = self._stop_reason or f"finished {self.config.n_trials} trials"
        log.info("worker %s left study %s: %s", self.worker.id, self.config.name, reason)
        event = StudyFinished(reason, self._ok, counts.complete, counts.pruned, counts.failed)
        self.emit(event)
        return event

    # --- stop requests ---------------------------------------------------------------------------
    def _poll_stop_requests(self, study: optuna.Study, done: threading.Event) -> None:
        """A side thread: writes this worker's study-wide stop request, and honours any other one made after
        this worker started, within poll_seconds (even in the middle of a long epoch)."""
        while True:
            try:
                self._sync_stop_request(study)
            except Exception as exc:  # a storage hiccup: the next poll tries again
                log.warning("could not read the stop request: %s", first_line(exc))
            if done.wait(self.poll_seconds):
                return

    def _sync_stop_request(self, study: optuna.Study) -> None:
        if self._request_everywhere is not None:
            now, self._request_everywhere = self._request_everywhere, None
            self._seen_stop = control.request_stop(study, now, self.worker.id)["id"]
            log.info("asked every worker of the study to stop%s", " now" if now else "")
        request = control.stop_request(study)
        if request and request["id"] != self._seen_stop:
            self._seen_stop = request["id"]
            self._stop_cause = "user"
            self._stop_reason = f"stopped by {request['by']}"
            self._stop_after_trial.set()
            if request["now"]:
                self._stop_now.set()
            self._wake.set()
