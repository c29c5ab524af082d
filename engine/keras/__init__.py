"""Keras and TensorFlow: training a trial, the device, retraining a model. The only package that imports them, and
only when a model is built or trained: importing this package (the app, `watch`, a report) loads neither."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.keras.datasets import load_dataset
from engine.keras.retrain import Retrainer, chosen_trial, trained_epochs
from engine.keras.saving import save_atomically
from engine.signals import interrupts_held

if TYPE_CHECKING:
    from engine.contract import Trainer


def keras_trainer() -> Trainer:
    """The trainer of a study run in this process: TensorFlow is imported now, with Ctrl-C held."""
    with interrupts_held():
        from engine.keras.training import KerasTrainer
    return KerasTrainer()


__all__ = ["Retrainer", "chosen_trial", "keras_trainer", "load_dataset", "save_atomically", "trained_epochs"]
