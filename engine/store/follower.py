"""StudyFollower: turns a study's trials in storage into events, each trial once, for any number of workers.

The runner (its own and other workers' trials, and a resumed study's earlier ones) and the watcher (a study
run elsewhere) both follow the storage with it, so counts, the best trial and importances are computed in one
place. A poll reads only what changed: Optuna's cached RDB storage and its journal storage fetch only new and
unfinished trials, and the follower looks only at trials it has not seen finish.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from engine.contract import BestChanged, EpochEnded, Event, ImportancesUpdated, Objective, TrialFinished, TrialStarted
from engine.store import schema

log = logging.getLogger("tunedeck")
MIN_TRIALS_FOR_IMPORTANCE = 3  # fewer give no meaningful importances (Optuna warns)
OPEN_STATES = (TrialState.RUNNING, TrialState.WAITING)


@dataclass
class Counts:
    """Trials of the study by state."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0  # queued: a retry of a dead worker's trial, or parameters enqueued by a person
    prior: int = 0  # another study's trials given as prior knowledge (a warm start): not run, not counted

    @property
    def counted(self) -> int:
        """Complete and pruned trials: what n_trials counts (Optuna's is_finished() counts FAIL too)."""
        return self.complete + self.pruned


def epochs_of(trial: FrozenTrial) -> int:
    """The most epochs a trial may train: its drawn or fixed `epochs`, or 0 when unknown."""
    epochs = trial.params.get("epochs", trial.user_attrs.get(schema.FIXED_PARAMS, {}).get("epochs", 0))
    return int(epochs) if isinstance(epochs, (int, float)) else 0


def trial_finished_event(trial: FrozenTrial) -> TrialFinished:
    """The TrialFinished event of a finished trial read from storage."""
    attrs = trial.user_attrs
    curve = schema.trial_curve(trial)
    return TrialFinished(
        number=trial.number, state=schema.state_name(trial),
        value=None if schema.out_of_memory(trial) else trial.value, params=dict(trial.params),
        duration=trial.duration.total_seconds() if trial.duration else 0.0,
        test_accuracy=attrs.get(schema.TEST_ACCURACY), val_accuracy=attrs.get(schema.VAL_ACCURACY),
        epochs_trained=attrs.get(schema.EPOCHS_TRAINED, len(curve)), error=schema.trial_error(trial), curve=curve,
        worker=schema.worker_label(attrs.get(schema.WORKER)), stopped_by=schema.stopped_by(trial),
        gpu_peak_mb=attrs.get(schema.GPU_PEAK_MB))


def study_objective(study: optuna.Study) -> Objective:
    """A stored study's objective: its metric as recorded (else "value"), and its direction."""
    metric = study.user_attrs.get(schema.CONFIG, {}).get("objective", "value")
    return Objective(metric, study.direction == StudyDirection.MAXIMIZE)


class StudyFollower:
    """Polls one study and emits TrialStarted, EpochEnded, TrialFinished, BestChanged and ImportancesUpdated."""

    def __init__(self, study: optuna.Study, emit: Callable[[Event], None], importance_interval: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.study = study
        self.emit = emit
        self.importance_interval = importance_interval  # seconds between two importance computations
        self.clock = clock
        self.counts = Counts()
        self.best: FrozenTrial | None = None
        self.goal = study_objective(study)
        self._seen = 0  # trials[:_seen] have been looked at once
        self._open: dict[int, TrialState] = {}  # unfinished trials by number, with their last state
        self._announced: set[int] = set()  # TrialStarted emitted
        self._own: set[int] = set()  # trials whose TrialStarted and EpochEnded this process emits itself
        self._epochs: dict[int, int] = {}  # intermediate values already emitted, by trial
        self._importances_due = False
        self._last_importances = -math.inf

    def claim(self, number: int) -> None:
        """This process runs trial `number` and emits its TrialStarted and EpochEnded itself, sooner."""
        self._own.add(number)
        self._announced.add(number)

    def poll(self, final: bool = False) -> Counts:
        """Emit what changed since the last poll; `final` computes due importances now. Returns the counts."""
        trials = self.study.get_trials(deepcopy=False)
        for trial in trials[self._seen:]:
            if trial.state.is_finished():
                self._finished(trial)
            else:
                self._open[trial.number] = trial.state
                self._count(trial.state.name, +1)
        self._seen = len(trials)
        for number in sorted(self._open):
            self._update(trials[number])
        if self._importances_due and (final or self.clock() - self._last_importances >= self.importance_interval):
            self._update_importances()
        return self.counts

    def _update(self, trial: FrozenTrial) -> None:
        previous = self._open[trial.number]
        if trial.state != previous:
            self._count(previous.name, -1)
            if trial.state.is_finished():
                del self._open[trial.number]
                self._finished(trial)
                return
            self._open[trial.number] = trial.state
            self._count(trial.state.name, +1)
        if trial.state != TrialState.RUNNING:
            return
        if trial.number not in self._announced:
            self._announced.add(trial.number)
            self.emit(TrialStarted(trial.number, dict(trial.params), epochs_of(trial),
                                   schema.worker_label(trial.user_attrs.get(schema.WORKER))))
        curve = schema.trial_curve(trial)
        if trial.number not in self._own and len(curve) > self._epochs.get(trial.number, 0):
            self._epochs[trial.number] = len(curve)
            self.emit(EpochEnded(trial.number, len(curve) - 1, math.nan, math.nan, math.nan, curve[-1], curve))

    def _finished(self, trial: FrozenTrial) -> None:
        self._count(schema.state_name(trial), +1)
        self._epochs.pop(trial.number, None)
        event = trial_finished_event(trial)
        self.emit(event)
        if schema.state_name(trial) != "COMPLETE" or trial.value is None:
            return
        self._importances_due = True
        if self.best is None or self.goal.better(trial.value, self.best.value):
            self.best = trial
            self.emit(BestChanged(trial.number, trial.value, event.params, event.test_accuracy))

    def _count(self, state: str, step: int) -> None:
        """Count a trial in or out of its state (a TrialState's name, or schema.state_name's)."""
        name = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
                "WAITING": "waiting", "PRIOR": "prior"}[state]
        setattr(self.counts, name, getattr(self.counts, name) + step)

    def _update_importances(self) -> None:
        self._importances_due = False
        self._last_importances = self.clock()
        if self.counts.complete < MIN_TRIALS_FOR_IMPORTANCE:
            return
        try:
            importances = optuna.importance.get_param_importances(self.study)
        except (RuntimeError, ValueError) as exc:  # e.g. all values equal, or nothing searched
            log.info("importances not computed: %s", exc)
            return
        if importances:
            self.emit(ImportancesUpdated(dict(importances)))
