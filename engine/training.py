"""Keras side of a trial: prepared arrays, the trial's callback, a checked model, fit and evaluate."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import platform
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import tensorflow as tf
from optuna_integration.keras import KerasPruningCallback

from engine import schema
from engine.config import StudyConfig
from engine.data import Dataset, load_dataset, validation_split
from engine.device import configure_gpus, gpu_peak_mb, reset_gpu_peak, set_mixed_precision
from engine.errors import ConfigError, StopNow, TrialFailed, TrialStopped, first_line
from engine.events import EpochEnded
from engine.models import compile_model
from engine.space import check_architecture
from engine.specs import ModelSpec, spec_for
from engine.trainer import DataInfo, TrialResult

EVAL_BATCH = 1024  # evaluation batch size: accuracy does not depend on it, speed does


@dataclass(frozen=True)
class PreparedData:
    """A dataset split for training, built once per run and shared by all trials: the data's own validation
    set, or a stratified tenth of the training set (label-sorted data still validates on every class)."""

    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int

    @classmethod
    def from_dataset(cls, data: Dataset) -> PreparedData:
        if data.x_val is not None:
            fit = (data.x_train, data.y_train)
            val = (data.x_val, data.y_val)
        else:
            fit_rows, val_rows = validation_split(data.y_train)
            fit = (data.x_train[fit_rows], data.y_train[fit_rows])
            val = (data.x_train[val_rows], data.y_train[val_rows])
        return cls(*fit, *val, data.x_test, data.y_test, data.input_shape, data.num_classes)


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

    def __init__(self, monitor: str, maximize: bool, patience: int) -> None:
        super().__init__(monitor=monitor, mode="max" if maximize else "min", factor=0.5, patience=patience,
                         min_lr=1e-5, verbose=0)

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


def first_params(space: list) -> dict[str, Any]:
    """One set of parameters from a space, without a sampler: each fixed value, first choice or low."""
    params = {}
    for spec in space:
        params[spec.name] = {"fixed": spec.value, "categorical": (spec.choices or [None])[0]}.get(spec.kind, spec.low)
        if spec.kind == "int":
            params[spec.name] = int(params[spec.name])
    return params


def build_checked(spec: ModelSpec, params: dict[str, Any], data: PreparedData) -> keras.Model:
    """The spec's model for these parameters, compiled (Adam, sparse categorical cross-entropy, accuracy when the
    builder left it uncompiled) with an "accuracy" metric and one output unit per class; else a ConfigError."""
    where = f"model: {Path(spec.path).name or spec.name}"
    model = spec.build(dict(params), data.input_shape, data.num_classes)
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{where} build_model returned {type(model).__name__}, not a keras.Model")
    if not model.compiled:
        compile_model(model, params)
    units = model.outputs[0].shape[-1] if model.outputs else None
    if units != data.num_classes:
        raise ConfigError(f"{where} build_model's output has {units} units; the data has {data.num_classes} classes "
                          f"(use the num_classes argument)")
    if "accuracy" not in str(model.get_compile_config().get("metrics")):
        raise ConfigError(f"{where} build_model's model is compiled without an \"accuracy\" metric; add "
                          f"metrics=[\"accuracy\"] (or leave it uncompiled)")
    return model


def dry_build(spec: ModelSpec, space: list, data: PreparedData) -> None:
    """Build a model file's model once before any training, on the first trial's parameters, then discard it:
    a broken build_model is a one-line error naming the file, not three failed trials."""
    params = first_params(space)
    try:
        with released_custom_gradients():
            build_checked(spec, params, data)
    except ConfigError:
        raise
    except Exception as exc:  # the user's build_model
        raise ConfigError(f"model: {Path(spec.path).name} build_model({params}) raised {describe_error(exc)}") from None
    finally:
        keras.backend.clear_session(free_memory=False)


class KerasTrainer:
    """StudyRunner's trainer: loads the data once per run and trains one Keras model per trial."""

    def prepare(self, config: StudyConfig) -> DataInfo:
        """Load and check the data and the model (errors name what is wrong) before the study is opened."""
        freeze_imports()
        configure_gpus()  # memory growth, before anything else touches the GPU
        self.config = config
        self.spec = spec_for(config.model)
        dataset = load_dataset(config.dataset, config.subset)
        check_architecture(config.model, config.trial_space, dataset.input_shape)
        self.data = PreparedData.from_dataset(dataset)
        if self.spec.path:
            dry_build(self.spec, config.trial_space, self.data)
        env = environment()
        return DataInfo(dataset.name, dataset.note, len(dataset.y_train), len(dataset.y_test), env["device"], env,
                        dataset.describe(), self.spec.record())

    def train(self, trial: optuna.Trial, params: dict[str, Any], emit: Callable[[Any], None],
              stop_now: threading.Event) -> TrialResult:
        config = self.config
        return train_trial(trial, self.spec, params, self.data, config, emit, stop_now)


def train_trial(trial: optuna.Trial, spec: ModelSpec, params: dict[str, Any], data: PreparedData,
                config: StudyConfig, emit: Callable[[Any], None], stop_now: threading.Event) -> TrialResult:
    """Build, fit and evaluate one model; each epoch's monitored metric (val accuracy, or val loss) goes to the
    storage as the trial's intermediate value (and to the pruner), the reason of any failure on the trial.

    With early stopping, training ends after `patience` epochs without a better monitored value: `epochs`
    becomes a ceiling. The last epoch's weights are kept, not the best epoch's: a trial's best val accuracy is
    the luckiest of its noisy epochs, and choosing among trials on it picked worse models on test. The learning
    rate is halved after `lr_patience` epochs without a better value (bench/time_to_quality.py)."""
    keras.backend.clear_session(free_memory=False)  # Optuna's gc_after_trial collects once per trial
    set_mixed_precision(config.mixed_precision)  # after clear_session, which resets Keras' global dtype policy
    keras.utils.set_random_seed((config.seed + trial.number) % 2**32)
    reset_gpu_peak()
    patience, monitor = config.early_stopping_patience, config.monitor
    callback = TrialCallback(trial.number, emit, stop_now, monitor)
    # Reports every epoch to the storage (the curve every view draws) and prunes when the pruner says so.
    callbacks: list[keras.callbacks.Callback] = [callback, KerasPruningCallback(trial, monitor)]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=False,
                                                       mode="max" if config.maximize else "min"))
    if config.lr_plateau_patience:
        callbacks.append(LearningRatePlateau(monitor, config.maximize, config.lr_plateau_patience))
    try:
        model, test_accuracy = fit_and_evaluate(spec, params, data, callbacks)
    except optuna.TrialPruned:
        raise
    except StopNow:
        raise TrialStopped(f"at epoch {len(callback.curve) + 1}") from None
    except TrialFailed:
        raise
    except Exception as exc:  # any Keras/TF error (or a model file's) fails this trial only
        raise TrialFailed(describe_error(exc)) from exc
    finally:
        trial.set_user_attr(schema.EPOCHS_TRAINED, len(callback.curve))
        peak = gpu_peak_mb()
        if peak is not None:
            trial.set_user_attr(schema.GPU_PEAK_MB, round(peak, 1))
    epoch = callback.result_epoch()
    return TrialResult(model, epoch.get("val_accuracy", math.nan), test_accuracy, epoch.get("val_loss", math.nan))


def fit_and_evaluate(spec: ModelSpec, params: dict[str, Any], data: PreparedData,
                     callbacks: list[keras.callbacks.Callback]) -> tuple[keras.Model, float]:
    """Build and train one model, validating each epoch on the validation set; its test accuracy (metrics are
    read by name: a model may have more than one)."""
    with released_custom_gradients():
        model = build_checked(spec, params, data)
        model.fit(data.x_fit, data.y_fit, batch_size=params["batch_size"], epochs=params["epochs"],
                  validation_data=(data.x_val, data.y_val), verbose=0, callbacks=callbacks)
        metrics = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
    return model, float(metrics["accuracy"])


def describe_error(exc: BaseException) -> str:
    """One line for a training error; out-of-memory is named as such."""
    text = first_line(exc, 300)
    if "ResourceExhausted" in type(exc).__name__ or "OOM" in text or "out of memory" in text.lower():
        return f"out of memory: {text}"
    return text if text == type(exc).__name__ else f"{type(exc).__name__}: {text}"
