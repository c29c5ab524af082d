"""Keras side of a trial: the data prepared once per run, one model fitted and evaluated per trial."""

from __future__ import annotations

import functools
import gc
import math
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna
import tensorflow as tf
from optuna_integration.keras import KerasPruningCallback

from engine.contract import DataInfo, TrialResult
from engine.data import Dataset, validation_split
from engine.errors import OutOfMemory, StopNow, TrialFailed, TrialStopped, first_line
from engine.keras.building import build_checked, dry_build, xla_applied
from engine.keras.callbacks import LearningRatePlateau, TrialCallback, released_custom_gradients
from engine.keras.datasets import load_dataset
from engine.keras.device import device_name, gpu_peak_mb, reset_gpu_peak, set_mixed_precision, start_tensorflow
from engine.keras.errors import describe_error, is_out_of_memory
from engine.models import ModelSpec, check_architecture, spec_for
from engine.store import schema
from engine.study import StudyConfig

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


def environment() -> dict[str, str]:
    """Versions and device, recorded on the study and shown in the report."""
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
        """Load and check the data and the model (errors name what is wrong) before the study is opened."""
        freeze_imports()
        start_tensorflow()  # memory growth, before anything else touches the GPU
        self.config = config
        self.spec = spec_for(config.model)
        dataset = load_dataset(config.dataset, config.subset)
        check_architecture(self.spec, config.trial_space, dataset.input_shape)
        self.data = PreparedData.from_dataset(dataset)
        if not self.spec.builtin:
            dry_build(self.spec, config.trial_space, self.data.input_shape, self.data.num_classes)
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
    patience, monitor = config.early_stopping_patience, config.monitored
    callback = TrialCallback(trial.number, emit, stop_now, monitor.metric)
    # Reports every epoch to the storage (the curve every view draws) and prunes when the pruner says so.
    callbacks: list[keras.callbacks.Callback] = [callback, KerasPruningCallback(trial, monitor.metric)]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor.metric, patience=patience, mode=monitor.mode,
                                                       restore_best_weights=False))
    if config.lr_plateau_patience:
        callbacks.append(LearningRatePlateau(monitor, config.lr_plateau_patience))
    try:
        model, test_accuracy = fit_and_evaluate(spec, params, data, callbacks, config.jit_compile)
    except optuna.TrialPruned:
        raise
    except StopNow:
        raise TrialStopped(f"at epoch {len(callback.curve) + 1}") from None
    except TrialFailed:
        raise
    except Exception as exc:  # any Keras/TF error (or a model file's) fails this trial only
        if is_out_of_memory(exc):
            raise OutOfMemory(first_line(exc, 300)) from exc
        raise TrialFailed(describe_error(exc)) from exc
    finally:
        trial.set_user_attr(schema.EPOCHS_TRAINED, len(callback.curve))
        trial.set_user_attr(schema.MIXED_PRECISION, config.mixed_precision)
        if callback.xla:
            trial.set_user_attr(schema.XLA, callback.xla)
        if len(set(callback.learning_rates)) > 1:  # a schedule changed it: retrain replays it
            trial.set_user_attr(schema.LEARNING_RATES, callback.learning_rates)
        peak = gpu_peak_mb()
        if peak is not None:
            trial.set_user_attr(schema.GPU_PEAK_MB, round(peak, 1))
    epoch = callback.result_epoch()
    return TrialResult(model, epoch.get("val_accuracy", math.nan), test_accuracy, epoch.get("val_loss", math.nan))


def fit_and_evaluate(spec: ModelSpec, params: dict[str, Any], data: PreparedData,
                     callbacks: list[keras.callbacks.Callback], jit_compile: str = "off") -> tuple[keras.Model, float]:
    """Build and train one model, validating each epoch on the validation set; its test accuracy (metrics are
    read by name: a model may have more than one)."""
    with released_custom_gradients():
        model = build_checked(spec, params, data.input_shape, data.num_classes, jit_compile)
        for callback in callbacks:
            if isinstance(callback, TrialCallback):
                callback.xla = xla_applied(model, jit_compile)
        model.fit(data.x_fit, data.y_fit, batch_size=params["batch_size"], epochs=params["epochs"],
                  validation_data=(data.x_val, data.y_val), verbose=0, callbacks=callbacks)
        try:
            metrics = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
        except Exception as exc:  # a large evaluation batch that does not fit where training did
            if not is_out_of_memory(exc):
                raise
            metrics = model.evaluate(data.x_test, data.y_test, batch_size=params["batch_size"], verbose=0,
                                     return_dict=True)
    return model, float(metrics["accuracy"])
