"""The trainer seam: what StudyRunner needs from whatever trains a trial (Keras, or a fake in tests)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import optuna

    from engine.study import StudyConfig


@dataclass(frozen=True)
class DataInfo:
    """What a trainer prepared, as shown in StudyStarted and recorded on the study."""

    dataset: str
    note: str
    n_train: int
    n_test: int
    device: str  # "CPU" or the GPU's name
    environment: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)  # shape, classes, counts (engine.data.Dataset.describe)
    model: dict[str, str] = field(default_factory=dict)  # the model: its name, and a model file's path and sha256


@dataclass(frozen=True)
class TrialResult:
    model: Any  # a keras.Model to keep, or None
    val_accuracy: float
    test_accuracy: float
    val_loss: float = math.nan


class Trainer(Protocol):
    """Loads the data once (`prepare`), then trains one trial at a time (`train`). `train` reports each epoch's
    val accuracy with trial.report (the storage keeps the curve; the pruner reads it), emits EpochEnded,
    raises TrialStopped soon after `stop_now` is set, TrialFailed with a one-line reason, or TrialPruned."""

    def prepare(self, config: StudyConfig) -> DataInfo: ...

    def train(self, trial: optuna.Trial, params: dict[str, Any], emit: Callable[[Any], None],
              stop_now: threading.Event) -> TrialResult: ...
