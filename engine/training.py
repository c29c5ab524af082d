"""Keras side of a trial: prepared arrays, the trial's callback, fit and evaluate."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import platform
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna
import tensorflow as tf
from optuna_integration.keras import KerasPruningCallback

from engine import schema
from engine.config import StudyConfig
from engine.data import NUM_CLASSES, Dataset
from engine.device import configure_gpus, gpu_peak_mb, reset_gpu_peak, set_mixed_precision
from engine.errors import StopNow, TrialFailed, TrialStopped, first_line
from engine.events import EpochEnded
from engine.models import build_model
from engine.space import check_architecture
from engine.trainer import DataInfo, TrialResult

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


def environment() -> dict[str, str]:
    """Versions and device, recorded on the study and shown in the report."""
    from engine.device import device_name

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "optuna": optuna.__version__, "device": device_name(), "host": platform.node()}


@functools.cache
def freeze_imports() -> None:
    """Once per process, before a run creates anything: move import-time objects (TensorFlow's and Keras',
    which live as long as the process) out of the collector's way, so the per-trial gc.collect()
    (gc_after_trial) walks only new objects. Frozen objects are never collected, so no run's own objects
    (its storage, its study) may exist yet."""
    gc.collect()
    gc.freeze()


class KerasTrainer:
    """StudyRunner's trainer: loads the data once per run and trains one Keras model per trial."""

    def prepare(self, config: StudyConfig) -> DataInfo:
        """Load and check the data (a DatasetError names what is wrong) before the study is opened."""
        from engine.data import load_dataset

        freeze_imports()
        configure_gpus()  # memory growth, before anything else touches the GPU
        self.config = config
        dataset = load_dataset(config.dataset, config.subset)
        check_architecture(config.model, config.trial_space, dataset.input_shape)
        self.data = PreparedData.from_dataset(dataset)
        env = environment()
        return DataInfo(dataset.name, dataset.note, len(dataset.y_train), len(dataset.y_test), env["device"], env)

    def train(self, trial: optuna.Trial, params: dict[str, Any], emit: Callable[[Any], None],
              stop_now: threading.Event) -> TrialResult:
        config = self.config
        return train_trial(trial, config.model, params, self.data, config.seed, emit, stop_now,
                           patience=config.early_stopping_patience, mixed_precision=config.mixed_precision)


def train_trial(trial: optuna.Trial, model_type: str, params: dict[str, Any], data: PreparedData,
                seed: int, emit: Callable[[Any], None], stop_now: threading.Event,
                patience: int = 0, mixed_precision: bool = False) -> TrialResult:
    """Build, fit and evaluate one model; each epoch's val accuracy goes to the storage as the trial's
    intermediate value (and to the pruner), the reason of any failure on the trial.

    With patience, training ends after that many epochs without a better val accuracy and the best
    epoch's weights are restored: `epochs` becomes a ceiling, and the trial's val accuracy is its best."""
    keras.backend.clear_session(free_memory=False)  # Optuna's gc_after_trial collects once per trial
    set_mixed_precision(mixed_precision)  # after clear_session, which resets Keras' global dtype policy
    keras.utils.set_random_seed((seed + trial.number) % 2**32)
    reset_gpu_peak()
    callback = TrialCallback(trial.number, emit, stop_now)
    # Reports every epoch to the storage (the curve every view draws) and prunes when the pruner says so.
    callbacks: list[keras.callbacks.Callback] = [callback, KerasPruningCallback(trial, "val_accuracy")]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                                       restore_best_weights=True))
    try:
        model, test_accuracy = fit_and_evaluate(model_type, params, data, callbacks)
    except optuna.TrialPruned:
        raise
    except StopNow:
        raise TrialStopped(f"at epoch {len(callback.curve) + 1}") from None
    except TrialFailed:
        raise
    except Exception as exc:  # any Keras/TF error fails this trial only
        raise TrialFailed(describe_error(exc)) from exc
    finally:
        trial.set_user_attr(schema.EPOCHS_TRAINED, len(callback.curve))
        peak = gpu_peak_mb()
        if peak is not None:
            trial.set_user_attr(schema.GPU_PEAK_MB, round(peak, 1))
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
