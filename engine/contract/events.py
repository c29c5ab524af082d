"""Events: the only contract between the engine and any UI. Frozen, plain data only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.contract.objective import Objective
from engine.contract.stop import StopReason


@dataclass(frozen=True)
class StudyStarted:
    study_name: str
    storage: str  # masked: never a password
    dataset: str
    dataset_note: str  # why `auto` chose what it chose, or ""
    n_train: int
    n_test: int
    device: str  # "CPU" or the GPU's name
    n_trials: int  # the study's target of finished trials
    n_finished: int  # finished before this run (a resumed study)
    param_names: tuple[str, ...]
    log_path: str
    objective: str = "val_accuracy"  # what a trial's value is, and what its per-epoch curve shows
    maximize: bool = True  # False for val_loss: lower is better
    num_classes: int = 0
    input_shape: tuple[int, ...] = ()
    started_at: float | None = None  # unix time of the study's first trial (a view's elapsed counts from it)

    @property
    def goal(self) -> Objective:
        """The objective as a rule: which values are better."""
        return Objective(self.objective, self.maximize)


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: dict[str, Any]
    epochs: int  # the epoch ceiling for this trial
    worker: str = ""  # host:pid/device of the worker that runs it


@dataclass(frozen=True)
class EpochEnded:
    number: int  # trial number
    epoch: int  # 0-based
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    curve: tuple[float, ...] = ()  # the monitored metric of every epoch so far: a dropped event loses nothing


@dataclass(frozen=True)
class TrialFinished:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None
    params: dict[str, Any]
    duration: float  # seconds
    test_accuracy: float | None = None
    val_accuracy: float | None = None
    epochs_trained: int = 0
    error: str = ""
    curve: tuple[float, ...] = field(default=())  # per-epoch monitored metric (the trial's intermediate values)
    worker: str = ""
    stopped_by: str = ""  # a FAIL trial stopped on purpose: the Cause's value ("user", "signal", "budget"...)
    gpu_peak_mb: float | None = None  # the trial's peak GPU memory, when it trained on a GPU

    @property
    def broken(self) -> bool:
        """A FAIL trial that failed rather than was stopped."""
        return self.state == "FAIL" and not self.stopped_by


@dataclass(frozen=True)
class BestChanged:
    number: int
    value: float
    params: dict[str, Any]
    test_accuracy: float | None


@dataclass(frozen=True)
class ImportancesUpdated:
    importances: dict[str, float]  # parameter -> importance, largest first


@dataclass(frozen=True)
class StudyFinished:
    reason: StopReason
    ok: bool  # False when the study ended on errors (failures in a row, workers that crashed)
    n_complete: int
    n_pruned: int
    n_failed: int
    detail: str = ""  # the reason in words: "finished 10 trials", "stopped by host:42/cpu"

    @property
    def text(self) -> str:
        return self.detail or self.reason.value.replace("_", " ")


@dataclass(frozen=True)
class EngineError:
    message: str


@dataclass(frozen=True)
class StorageOutage:
    """The storage stopped answering (repeated while the calls are retried), or answers again (`over`)."""

    seconds: float  # how long it has been (or was) unreachable
    error: str = ""  # the last error, one line, masked
    over: bool = False

    @property
    def text(self) -> str:
        if self.over:
            return f"storage answers again after {self.seconds:.0f} s"
        return f"storage unreachable, retrying ({self.seconds:.0f} s)"


@dataclass(frozen=True)
class Waiting:
    """A view waits for what it follows: a study its workers have not created yet, or a study no live worker runs
    ("no live worker": every worker is gone, nothing runs, and the study is not finished)."""

    message: str
    state: str = "waiting"


@dataclass(frozen=True)
class RetrainEpoch:
    """An epoch of `tunedeck retrain`: a chosen trial trained once more on all the training data."""

    trial: int
    epoch: int  # 0-based
    epochs: int
    loss: float
    accuracy: float
    curve: tuple[float, ...] = ()  # training accuracy of every epoch so far


@dataclass(frozen=True)
class RetrainFinished:
    trial: int
    test_accuracy: float
    trial_test_accuracy: float | None  # the trial's own, on 90% of the data
    epochs: int
    model_path: str
    card_path: str


Finished = StudyFinished | RetrainFinished  # what a source's run() returns
Event = (StudyStarted | TrialStarted | EpochEnded | TrialFinished | BestChanged
         | ImportancesUpdated | StudyFinished | EngineError | StorageOutage | Waiting
         | RetrainEpoch | RetrainFinished)
