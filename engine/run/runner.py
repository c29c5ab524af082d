"""StudyRunner: one worker of a study, run in the calling thread; emits events for the whole study.

Any number of runners (processes, machines) may share a study through its storage, which is the only thing
they share: it hands out trial numbers, holds the budget, the stop request and each trial's worker. A runner
starts a trial only while finished + running < n_trials, and keeps a trial only if fewer than n_trials
trials that could still finish came before it, so the study ends with exactly n_trials finished trials.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.contract import (
    AFTER_TRIAL,
    Cause,
    DataInfo,
    EngineError,
    Event,
    Scope,
    StopLatch,
    StopReason,
    StopRequest,
    StorageOutage,
    StudyFinished,
    StudyStarted,
    Trainer,
    TrialStarted,
)
from engine.errors import OutOfMemory, TrialFailed, TrialStopped, UserError, first_line, plain
from engine.keras import keras_trainer
from engine.logs import log_to_file
from engine.run.keeper import ModelKeeper, remove_leftovers, study_artifact_store
from engine.run.recording import record_study
from engine.run.sampling import make_pruner, make_sampler
from engine.run.upkeep import Upkeep
from engine.run.warm_start import apply_warm_start, read_warm_start
from engine.space import fixed_params, suggest
from engine.store import (
    Counts,
    StorageUnreachable,
    StudyFollower,
    check_storage_files,
    check_writable,
    creating_study,
    fail_dead_local_trials,
    fail_trial_now,
    has_heartbeat,
    mask_secrets,
    mask_url,
    open_artifact_store,
    reap_expired_leases,
    schema,
    this_worker,
    unreachable_in,
)
from engine.study import StudyConfig, check_compatible, validate

log = logging.getLogger("tunedeck")
OUT_OF_MEMORY_IN_A_ROW = 10  # nothing fits: the GPU is full, or every model of the space too large (with max_failures)
CREATOR_WAIT_SECONDS = 10.0  # how long a worker that did not create a new study waits for its creator's record


class StudyRunner:
    """Runs one worker, as a source (engine.contract.Source): `run()` blocks (call it from a thread); `stop()` and
    `close()` are thread-safe, never to be called from a signal handler."""

    trains_here = True
    owns_workers = False
    can_retrain = True

    def __init__(self, config: StudyConfig, emit: Callable[[Event], None] | None = None,
                 trainer: Trainer | None = None, poll_seconds: float = 2.0) -> None:
        self.config = validate(config)
        self.emit = emit or (lambda event: None)
        self.trainer = trainer
        self.poll_seconds = poll_seconds  # how often the stop request and other workers' trials are read
        self.latch = StopLatch()
        self._ended: tuple[StopReason, str, bool] | None = None  # why this worker leaves, set by its own thread
        self._failures_in_a_row = 0
        self._out_of_memory_in_a_row = 0
        self._running: tuple[optuna.Study, int] | None = None  # (study, trial id) of the trial training now
        self.follower: StudyFollower | None = None

    def stop(self, request: StopRequest = AFTER_TRIAL) -> None:
        """Stop after the running trial (request.now: at the next batch); a study-wide request is written to the
        storage within poll_seconds, for every worker."""
        self.latch.ask(request)

    def close(self) -> None:
        """Stop viewing: a runner trains in this process, so closing it stops this worker now."""
        self.stop(StopRequest(now=True, scope=Scope.PROCESS))

    def run(self) -> StudyFinished:
        """Run this worker to the study's end; user errors raise UserError after an EngineError event."""
        if self.trainer is None:
            self.trainer = keras_trainer()
        try:
            check_storage_files(self.config.storage_url)  # a bad dataset or storage file is refused before
            info = self.trainer.prepare(self.config)  # anything is created
            self.warm_start = read_warm_start(self.config, info.model)
            if self.config.artifacts:  # a store that cannot take a file (or s3:// without boto3) is refused before
                check_writable(open_artifact_store(self.config.artifacts), self.config.artifacts)
            self.worker = this_worker(info.device)
            with log_to_file(self.config.make_run_dir() / "tunedeck.log") as log_path:
                try:
                    config = self.config
                    with creating_study(config.storage_url, config.name, config.goal.direction, make_sampler(config),
                                        make_pruner(config), config.heartbeat, config.storage_retry,
                                        self._outage) as (study, created):
                        return self._run(study, created, info, str(log_path))
                except Exception as exc:
                    if (outage := unreachable_in(exc)) is not None:
                        return self._unreachable(outage)
                    log.exception("engine error")
                    raise
        except Exception as exc:
            text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self.emit(EngineError(mask_secrets(text, self.config.storage_url)))
            raise

    def _run(self, study: optuna.Study, created: bool, info: DataInfo, log_path: str) -> StudyFinished:
        config = self.config
        check_compatible(study, config, None)  # its direction first: a study that maximizes is refused at once
        stored = None if created else self._creators_record(study)
        changes = check_compatible(study, config, stored, info.model)  # the first writer's config is the study's
        record_study(study, config, info, self.worker, changes, describe=stored is None)
        self.artifacts = study_artifact_store(study, config, self.worker.host)
        if not created and self.warm_start is not None:
            log.warning("warm_start = %s is not applied: the study exists (a warm start applies when it is created)",
                        config.warm_start)
        if created and self.warm_start is not None:
            record = apply_warm_start(study, config, self.warm_start)
            log.info("warm start from %s: %s %s (skipped %d)", record["from"], "prior trials" if record["prior"] else
                     "enqueued trials", record["enqueued"], len(record["skipped"]))
        n_finished = sum(schema.counted(trial) for trial in study.get_trials(deepcopy=False))
        self.emit(StudyStarted(config.name, mask_url(config.storage_url), info.dataset, info.note, info.n_train,
                               info.n_test, info.device, self._target(study), n_finished,
                               tuple(param.name for param in config.trial_space if param.kind != "fixed"), log_path,
                               config.objective, config.goal.maximize, info.details.get("num_classes", 0),
                               tuple(info.details.get("input_shape", ()))))
        log.info("worker %s joined study %s", self.worker.id, config.name)
        for leftover in remove_leftovers(config.run_dir / "models"):
            log.info("removed %s, a model a killed process was writing", leftover.name)
        if info.note:
            log.info(info.note)
        self.follower = StudyFollower(study, self.emit)
        target = self._target(study)
        if self.follower.poll(final=True).counted >= target:  # a resumed study's trials, and others'
            self._end(StopReason.FINISHED, f"the study already has {self.follower.counts.counted} finished trials "
                                           f"(n_trials = {target}); raise n_trials to run more")
        self.journal = not has_heartbeat(config.storage_url)
        if self.journal:
            for number in fail_dead_local_trials(study, self.worker.host):
                log.warning("trial %d was left running by a dead worker on this host: marked FAIL, retried", number)
        lease = config.heartbeat if self.journal else None
        with Upkeep(study, self.latch, self.worker.id, self.poll_seconds, lease) as self.upkeep:
            started = time.monotonic()
            while self._wait_for_slot(study, started):
                self._optimize_one(study)
        return self._finish(self.follower.poll(final=True))

    def _optimize_one(self, study: optuna.Study) -> None:
        """One trial. Another process may have failed it meanwhile (its lease or heartbeat looked stale to a view on
        a loaded machine): Optuna then cannot tell it, and this worker goes on (the trial is retried once)."""
        try:
            study.optimize(self._objective, n_trials=1, catch=(TrialFailed,), callbacks=[self._after_trial],
                           gc_after_trial=True, show_progress_bar=False)
        except (ValueError, AssertionError) as exc:  # Optuna's tell of a trial finished elsewhere: "Cannot tell a
            if isinstance(exc, UserError) or not (isinstance(exc, AssertionError) or "Cannot tell a" in str(exc)):
                raise  # FAIL trial", or its "Should not reach" when the trial had returned a value
            running, self._running = self._running, None
            if running is None or not running[0]._storage.get_trial(running[1]).state.is_finished():
                raise
            log.warning("trial %d was failed by another process while it ran here (its lease or heartbeat looked "
                        "stale); going on", running[0]._storage.get_trial(running[1]).number)

    def _outage(self, seconds: float, error: str, over: bool) -> None:
        """The storage stopped answering (every call is retried for storage_retry seconds) or answers again."""
        self.emit(StorageOutage(seconds, error, over))  # the error is masked already

    def _unreachable(self, exc: StorageUnreachable) -> StudyFinished:
        """The storage stayed unreachable past storage_retry: this worker stops. Its trial is marked FAIL with why
        if the storage takes one more write; otherwise a view or another worker reaps it later."""
        log.error("%s; this worker stops: %s", self._gave_up, exc)
        if self._running is not None:
            study, trial_id = self._running
            if not fail_trial_now(study, trial_id, self._gave_up):
                log.warning("its last trial could not be marked FAIL here: a view or a worker reaps it")
        counts = self.follower.counts if self.follower is not None else Counts()
        event = StudyFinished(StopReason.STORAGE_UNREACHABLE, False, counts.complete, counts.pruned, counts.failed,
                              str(exc))
        self.emit(event)
        return event

    def _creators_record(self, study: optuna.Study) -> dict | None:
        """The config recorded by whoever created the study. A study created at this moment by another worker
        is waited for (up to CREATOR_WAIT_SECONDS), so that its first writer's config wins; None when nobody
        recorded one (a plain Optuna study, or a creator that died first): this worker records its own."""
        deadline = time.monotonic() + CREATOR_WAIT_SECONDS
        while True:
            stored = study.user_attrs.get(schema.CONFIG)
            if stored or study.get_trials(deepcopy=False) or time.monotonic() >= deadline:
                return stored or None
            self.latch.changed.wait(min(self.poll_seconds, 0.2))

    def _target(self, study: optuna.Study) -> int:
        """The study's n_trials, as stored: every worker and view stops on the same one (a run that changes it
        records the change, and who made it)."""
        target = study.user_attrs.get(schema.N_TRIALS)
        return target if isinstance(target, int) and target > 0 else self.config.n_trials

    def _end(self, reason: StopReason, detail: str, ok: bool = True) -> None:
        """Why this worker leaves: the first reason found stays."""
        if self._ended is None:
            self._ended = (reason, detail, ok)

    # --- the budget ------------------------------------------------------------------------------
    def _wait_for_slot(self, study: optuna.Study, started: float) -> bool:
        """Whether to start another trial; while other workers' trials fill the budget, wait for them (one
        may fail and free its slot). Records why when the answer is no."""
        config, waiting = self.config, False
        while True:
            counts = self.follower.poll()  # fresh: the moment between this check and the ask is the only race
            target = self._target(study)
            if self._ended or self.latch.request:
                return False
            if config.timeout and time.monotonic() - started >= config.timeout:
                self._end(StopReason.TIMEOUT, f"timeout after {config.timeout:g} s")
                return False
            if counts.counted >= target:
                self._end(StopReason.FINISHED, f"finished {target} trials")
                return False
            if counts.counted + counts.running < target:
                return True
            if not waiting:
                waiting = True
                log.info("waiting: %d running trials of other workers fill the budget", counts.running)
            self.latch.changed.wait(self.poll_seconds)
            self.latch.changed.clear()  # a request in between is read by the next pass's check
            self._reap_dead_trials(study)

    def _reap_dead_trials(self, study: optuna.Study) -> None:
        """Other workers' trials whose worker is gone become FAIL and are retried: RDB storages by Optuna's
        heartbeat, journal storages by the trial's lease."""
        if self.journal:
            for number in reap_expired_leases(study, 2 * self.config.heartbeat):
                log.warning("trial %d: its worker stopped renewing its lease: marked FAIL, retried", number)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)

    def _trials_ahead(self, trial: optuna.Trial) -> int:
        """Trials numbered before this one that may still finish: if n_trials of them exist, this one is not
        needed (another worker took the last slot in the same moment)."""
        trials = trial.study.get_trials(deepcopy=False)
        return sum(schema.state_name(t) not in ("FAIL", "PRIOR") for t in trials[:trial.number])

    # --- one trial -------------------------------------------------------------------------------
    @property
    def _gave_up(self) -> str:
        return f"storage unreachable for {self.config.storage_retry:g} s"

    def _objective(self, trial: optuna.Trial) -> float:
        try:
            return self._trial(trial)
        except StorageUnreachable:  # say why while the storage may still take a write; Optuna then tells FAIL
            fail_trial_now(trial.study, trial._trial_id, self._gave_up, tell=False)
            raise

    def _trial(self, trial: optuna.Trial) -> float:
        config = self.config
        trial.set_user_attr(schema.WORKER, self.worker.record())
        request = self.latch.request
        if request is not None:
            raise self._stopped(trial, request.cause, f"stopped by {request.cause.value} before training")
        target = self._target(trial.study)
        if self._trials_ahead(trial) >= target:
            raise self._stopped(trial, Cause.BUDGET, f"not run: other workers' trials already make the study's "
                                                     f"{target}")
        params = suggest(trial, config.trial_space)
        fixed = fixed_params(config.trial_space)
        if fixed:
            trial.set_user_attr(schema.FIXED_PARAMS, fixed)
        all_params = {**fixed, **params}
        self.follower.claim(trial.number)
        self._running = (trial.study, trial._trial_id)
        self.emit(TrialStarted(trial.number, params, int(all_params["epochs"]), self.worker.id))
        self.upkeep.lease(trial._trial_id)
        stop, limit = threading.Event(), config.trial_timeout
        timer = threading.Timer(limit, stop.set) if limit else None
        try:
            with self.latch.linked(stop):
                if timer is not None:
                    timer.daemon = True
                    timer.start()
                result = self.trainer.train(trial, all_params, self.emit, stop)
        except TrialStopped as exc:
            if timer is not None and not self.latch.now.is_set():  # its time limit, not a person, stopped it
                error = f"timed out after {plain(limit)} s (trial_timeout)"
                trial.set_user_attr(schema.ERROR, error)
                log.warning("trial %d %s", trial.number, error)
                raise TrialFailed(error) from None
            request = self.latch.request or StopRequest(now=True)
            raise self._stopped(trial, request.cause, f"stopped by {request.cause.value} {exc}") from None
        except OutOfMemory as exc:  # told PRUNED with no value: TPE ranks it last and draws less from its region
            trial.set_user_attr(schema.OUT_OF_MEMORY, True)
            where = "memory" if self.worker.device == "cpu" else "GPU memory"
            trial.set_user_attr(schema.ERROR, f"out of {where}: {exc}")
            log.warning("trial %d: out of GPU memory with %s", trial.number, all_params)
            raise optuna.TrialPruned() from None
        except TrialFailed as exc:
            trial.set_user_attr(schema.ERROR, str(exc))
            log.warning("trial %d failed: %s", trial.number, exc)
            raise
        except (optuna.TrialPruned, StorageUnreachable):
            raise
        except Exception as exc:  # not the trial's failure but this worker's (a bug): the trial says what it was
            trial.set_user_attr(schema.ERROR, f"the worker failed: {type(exc).__name__}: {first_line(exc)}")
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self.upkeep.lease(None)
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

    def _stopped(self, trial: optuna.Trial, cause: Cause, error: str) -> TrialFailed:
        """A trial ended on purpose: FAIL with why, not counted as a failure."""
        trial.set_user_attr(schema.STOPPED_BY, cause.value)
        trial.set_user_attr(schema.ERROR, error)
        log.info("trial %d: %s", trial.number, error)
        return TrialFailed(error)

    def _keep_model(self, trial: optuna.Trial, value: float, model) -> None:
        """Save the model if it ranks in the study's best keep_best, in the run folder and the study's store."""
        keeper = ModelKeeper(self.config.run_dir / "models", self.config.keep_best, self.config.goal, self.artifacts)
        keeper.keep_model(trial, value, model)

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: count failures in a row, up to max_failures (the next poll emits the trial). A trial
        out of GPU memory is neither: the next model may fit."""
        self._running = None  # told: in the storage
        limit = self.config.max_failures
        if trial.state == TrialState.FAIL and not schema.stopped(trial):
            self._failures_in_a_row += 1
            if limit and self._failures_in_a_row >= limit:
                self._end(StopReason.FAILURES, f"{limit} trials failed in a row; last error: "
                                               f"{schema.trial_error(trial)}", ok=False)
        elif schema.out_of_memory(trial):
            self._out_of_memory_in_a_row += 1
            if limit and self._out_of_memory_in_a_row >= OUT_OF_MEMORY_IN_A_ROW:
                self._end(StopReason.FAILURES, f"{OUT_OF_MEMORY_IN_A_ROW} trials in a row ran out of GPU memory: no "
                                               f"model of the space fits (the GPU may be full: nvidia-smi shows "
                                               f"what holds it; or shrink the space)", ok=False)
        elif trial.state != TrialState.FAIL:
            self._failures_in_a_row = self._out_of_memory_in_a_row = 0

    def _finish(self, counts: Counts) -> StudyFinished:
        request = self.latch.request
        if self._ended is not None:
            reason, detail, ok = self._ended
        elif request is not None:
            reason, detail, ok = StopReason.STOPPED, request.text(), True
        else:
            reason, detail, ok = StopReason.FINISHED, f"finished {self._target(self.follower.study)} trials", True
        log.info("worker %s left study %s: %s", self.worker.id, self.config.name, detail)
        event = StudyFinished(reason, ok, counts.complete, counts.pruned, counts.failed, detail)
        self.emit(event)
        return event
