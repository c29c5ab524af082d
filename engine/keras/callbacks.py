"""The Keras callbacks of a trial: its events, its stop, its learning-rate schedule; and TensorFlow's leak."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import keras

from engine.contract import EpochEnded, Objective
from engine.errors import StopNow, TrialFailed


class TrialCallback(keras.callbacks.Callback):
    """Emits EpochEnded, fails the trial on a NaN loss, and stops within one batch on request. Keeps every
    epoch's logs; `curve` is the monitored metric (what the trial reports and the pruner reads)."""

    def __init__(self, number: int, emit: Callable[[Any], None], stop_now: threading.Event,
                 monitor: str = "val_accuracy") -> None:
        super().__init__()
        self.number = number
        self.emit = emit
        self.stop_now = stop_now
        self.monitor = monitor
        self.epochs: list[dict[str, float]] = []
        self.curve: list[float] = []
        self.learning_rates: list[float] = []  # at the start of each epoch: what a retrain replays
        self.xla = ""  # the XLA setting that applied (engine.keras.building.xla_applied)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        rate = getattr(self.model.optimizer, "learning_rate", None)
        if rate is not None:
            self.learning_rates.append(float(keras.ops.convert_to_numpy(rate)))

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # A *_begin hook keeps Keras' asynchronous batch dispatch on (an *_end hook turns it off).
        if self.stop_now.is_set():
            raise StopNow()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {key: float(value) for key, value in (logs or {}).items()}
        loss = logs.get("loss", math.nan)
        if not math.isfinite(loss):
            raise TrialFailed(f"loss became {loss} at epoch {epoch + 1}")
        self.epochs.append(logs)
        self.curve.append(logs.get(self.monitor, math.nan))
        self.emit(EpochEnded(self.number, epoch, loss, logs.get("accuracy", math.nan), logs.get("val_loss", math.nan),
                             logs.get("val_accuracy", math.nan), tuple(self.curve)))

    def result_epoch(self) -> dict[str, float]:
        """The logs of the epoch whose weights the model ends with: the last one trained."""
        return self.epochs[-1] if self.epochs else {}


class LearningRatePlateau(keras.callbacks.ReduceLROnPlateau):
    """Halves the learning rate after `patience` epochs without a better monitored value, down to 1e-5
    (bench/time_to_quality.py: trials reach their plateau sooner and higher). A model whose optimizer follows
    its own learning-rate schedule keeps it."""

    def __init__(self, monitor: Objective, patience: int) -> None:
        super().__init__(monitor=monitor.metric, mode=monitor.mode, factor=0.5, patience=patience, min_lr=1e-5,
                         verbose=0)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self.schedule_of_its_own = isinstance(getattr(self.model.optimizer, "_learning_rate", None),
                                              keras.optimizers.schedules.LearningRateSchedule)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.schedule_of_its_own:
            super().on_epoch_end(epoch, dict(logs or {}))  # a copy: Keras adds the learning rate to the logs


@contextlib.contextmanager
def released_custom_gradients() -> Iterator[None]:
    """Drop the gradient functions TensorFlow registered while the block ran.

    Each trace of Keras' train and test steps goes through tf.distribute's all_reduce, whose custom
    gradient TensorFlow adds to a global registry and never removes; each entry keeps its traced graph
    alive (about 6 MB a trial, measured by bench/memory.py). Once a trial's model is trained and
    evaluated nothing traces its gradients again, so its entries can go."""
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry
    before = set(registry)
    try:
        yield
    finally:
        for key in [key for key in registry if key not in before and key.startswith("CustomGradient")]:
            del registry[key]
