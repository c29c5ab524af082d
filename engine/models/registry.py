"""Model specs: the one registry of what tunedeck can tune, the built-in MLP and CNN and any model file.

A spec is a name, a default search space (in suggest order: it fixes TPE's draws) and the limits of its
parameters. A built-in's model is built by engine.keras (the only package that imports Keras); a model file is one
more spec whose `build` is its build_model(params, input_shape, num_classes), kept apart from the search loop as
KerasTuner does. A file is imported once per process, only by the engine that trains or a form that checks it
(never by a report or `watch`, which read the stored config), and never when a config is constructed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.models.model_file import TRAINING, TRAINING_LIMITS, load_model_file
from engine.space import Limits, Param

BUILTIN_LIMITS: Limits = {
    **TRAINING_LIMITS,
    "layer_num": (int, 1, 16),
    "first_layer_unit": (int, 1, 100_000),
    "k": (int, 1, 64),
    "learning_rate": (float, 1e-7, 10.0),
    "dropout": (float, 0.0, 0.99),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str  # "mlp", "cnn", or a model file's stem
    space: tuple[Param, ...]
    build: Callable[[dict[str, Any], tuple[int, ...], int], Any] | None  # None: a built-in (engine.keras builds it)
    limits: Limits = field(default_factory=dict)
    required: tuple[str, ...] = TRAINING  # what a space must give; a built-in needs all of its parameters
    path: str = ""  # a model file: its absolute path
    digest: str = ""  # and the sha256 of its text
    needs_images: bool = False

    def default_space(self) -> list[Param]:
        """A fresh copy of the default space, to edit."""
        return [param.copy() for param in self.space]

    @property
    def builtin(self) -> bool:
        return self.build is None

    def record(self) -> dict[str, str]:
        """What a study records of a model file (and a built-in's name)."""
        return {"name": self.name, "path": self.path, "sha256": self.digest}


_EPOCHS = Param("epochs", "int", low=5, high=50, step=5)
_LEARNING_RATE = Param("learning_rate", "fixed", value=0.001)
BUILTIN_SPECS = {
    "mlp": ModelSpec("mlp", (
        Param("layer_num", "int", low=2, high=4), _EPOCHS,
        Param("first_layer_unit", "categorical", choices=[64, 128, 256, 512]),
        Param("batch_size", "categorical", choices=[32, 64, 128]), _LEARNING_RATE),
        None, BUILTIN_LIMITS, ("layer_num", "epochs", "first_layer_unit", "batch_size", "learning_rate")),
    "cnn": ModelSpec("cnn", (
        Param("k", "int", low=2, high=5), Param("layer_num", "int", low=1, high=3), _EPOCHS,
        Param("first_layer_unit", "categorical", choices=[16, 32, 64, 128, 256]),
        Param("batch_size", "fixed", value=128), _LEARNING_RATE, Param("dropout", "fixed", value=0.5)),
        None, BUILTIN_LIMITS,
        ("k", "layer_num", "epochs", "first_layer_unit", "batch_size", "learning_rate", "dropout"), needs_images=True),
}
MODEL_HELP = "mlp, cnn or a model file (path/to/model.py)"


def is_model_file(model: str) -> bool:
    return model.endswith(".py")


def spec_for(model: str) -> ModelSpec:
    """The spec of a built-in name or a model file; anything else is a ConfigError naming what is allowed."""
    if model in BUILTIN_SPECS:
        return BUILTIN_SPECS[model]
    if isinstance(model, str) and is_model_file(model):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ConfigError(f"model: file {model!r} not found")
        loaded = load_model_file(str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
        return ModelSpec(loaded.name, loaded.space, loaded.build, dict(TRAINING_LIMITS), TRAINING, loaded.path,
                         loaded.digest)
    raise ConfigError(f"model: {model!r} is not allowed; choose {MODEL_HELP}")


