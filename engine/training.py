"""Keras side of a trial: prepared arrays, the trial's callback, fit and evaluate."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna
from optuna_integration.keras import KerasPruningCallback

from engine.data import NUM_CLASSES, Dataset
from engine.device import gpu_peak_mb, reset_gpu_peak, set_mixed_precision
from engine.errors import StopNow, TrialFailed, first_line
from engine.events import EpochEnded
from engine.models import build_model

EVAL_BATCH = 1024  # evaluation batch size: accuracy does not depend on it, speed does


@dataclass(frozen=True)
class PreparedData:
    """A dataset with one-hot labels, built once per run and shared by all trials."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]

    @classmethod
    def from_dataset(cls, data: Dataset) -> PreparedData:
        one_hot = np.eye(NUM_CLASSES, dtype=np.float32)
        return cls(data.x_train, one_hot[data.y_train], data.x_test, one_hot[data.y_test], data.input_shape)


class TrialCallback(keras.callbacks.Callback):
    """Emits EpochEnded, fails the trial on a NaN loss, and stops within one batch on request."""

    def __init__(self, number: int, emit: Callable[[Any], None], stop_now: threading.Event) -> None:
        super().__init__()
        self.number = number
        self.emit = emit
        self.stop_now = stop_now
        self.curve: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # A *_begin hook keeps Keras' asynchronous batch dispatch on (an *_end hook turns it off).
        if self.stop_now.is_set():
            raise StopNow()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            raise TrialFailed(f"loss became {loss} at epoch {epoch + 1}")
        val_accuracy = float(logs.get("val_accuracy", math.nan))
        self.curve.append(val_accuracy)
        self.emit(EpochEnded(self.number, epoch, loss, float(logs.get("accuracy", math.nan)),
                             float(logs.get("val_loss", math.nan)), val_accuracy, tuple(self.curve)))


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


@dataclass(frozen=True)
class TrialResult:
    model: keras.Model
    val_accuracy: float
    test_accuracy: float


def train_trial(trial: optuna.Trial, model_type: str, params: dict[str, Any], data: PreparedData,
                seed: int, emit: Callable[[Any], None], stop_now: threading.Event,
                prune: bool, patience: int = 0, mixed_precision: bool = False) -> TrialResult:
    """Build, fit and evaluate one model; the curve and the reason of any failure go on the trial.

    With patience, training ends after that many epochs without a better val accuracy and the best
    epoch's weights are restored: `epochs` becomes a ceiling, and the trial's val accuracy is its best."""
    keras.backend.clear_session(free_memory=False)  # Optuna's gc_after_trial collects once per trial
    set_mixed_precision(mixed_precision)  # after clear_session, which resets Keras' global dtype policy
    keras.utils.set_random_seed(seed + trial.number)
    reset_gpu_peak()
    callback = TrialCallback(trial.number, emit, stop_now)
    callbacks: list[keras.callbacks.Callback] = [callback]
    if prune:
        callbacks.append(KerasPruningCallback(trial, "val_accuracy"))
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                                       restore_best_weights=True))
    try:
        model, test_accuracy = fit_and_evaluate(model_type, params, data, callbacks)
    except optuna.TrialPruned:
        raise
    except StopNow:
        raise TrialFailed(f"stopped by user at epoch {len(callback.curve) + 1}") from None
    except TrialFailed:
        raise
    except Exception as exc:  # any Keras/TF error fails this trial only
        raise TrialFailed(describe_error(exc)) from exc
    finally:
        trial.set_user_attr("curve", callback.curve)
        trial.set_user_attr("epochs_trained", len(callback.curve))
        peak = gpu_peak_mb()
        if peak is not None:
            trial.set_user_attr("gpu_peak_mb", round(peak, 1))
    curve = callback.curve
    val_accuracy = (max(curve) if patience else curve[-1]) if curve else math.nan
    return TrialResult(model, val_accuracy, test_accuracy)


def fit_and_evaluate(model_type: str, params: dict[str, Any], data: PreparedData,
                     callbacks: list[keras.callbacks.Callback]) -> tuple[keras.Model, float]:
    """Build and train one model as the seed does (validation_split=0.1); its test accuracy."""
    with released_custom_gradients():
        model = build_model(model_type, params, data.input_shape)
        model.fit(data.x_train, data.y_train, batch_size=params["batch_size"], epochs=params["epochs"],
                  validation_split=0.1, verbose=0, callbacks=callbacks)
        _, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0)
    return model, float(test_accuracy)


def describe_error(exc: BaseException) -> str:
    """One line for a training error; out-of-memory is named as such."""
    text = first_line(exc, 300)
    if "ResourceExhausted" in type(exc).__name__ or "OOM" in text or "out of memory" in text.lower():
        return f"out of memory: {text}"
    return text if text == type(exc).__name__ else f"{type(exc).__name__}: {text}"
