"""Model specs: the one registry of what tunedeck can tune, the built-in MLP and CNN and any model file.

A spec is a name, a default search space (in suggest order: it fixes TPE's draws), the limits of its
parameters and a build function `build(params, input_shape, num_classes) -> keras.Model`, kept apart from the
search loop as KerasTuner does. A model file is one more spec: it defines SPACE (the config's [space] schema as
a dict; a bare value is fixed) and build_model(params, input_shape, num_classes). It is imported once per
process, only by the engine that trains (never by a report or `watch`, which read the stored config).
"""

from __future__ import annotations

import functools
import hashlib
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import ParamSpec, spec_from_table
from engine.errors import ConfigError, first_line

Limits = dict[str, tuple[type, float, float]]  # parameter -> (type, minimum, maximum)
TRAINING = ("epochs", "batch_size")  # the training parameters every space gives, fixed or searched
TRAINING_LIMITS: Limits = {"epochs": (int, 1, 100_000), "batch_size": (int, 1, 1_000_000)}
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
    space: tuple[ParamSpec, ...]
    build: Callable[[dict[str, Any], tuple[int, ...], int], Any]
    limits: Limits = field(default_factory=dict)
    required: tuple[str, ...] = TRAINING  # what a space must give; a built-in needs all of its parameters
    path: str = ""  # a model file: its absolute path
    digest: str = ""  # and the sha256 of its text
    needs_images: bool = False

    def default_space(self) -> list[ParamSpec]:
        """A fresh copy of the default space, to edit."""
        return [ParamSpec(**vars(spec)) for spec in self.space]

    def record(self) -> dict[str, str]:
        """What a study records of a model file (and a built-in's name)."""
        return {"name": self.name, "path": self.path, "sha256": self.digest}


def _builtin(name: str) -> Callable:
    def build(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
        from engine.models import BUILDERS  # Keras, only when a model is built

        return BUILDERS[name](params, input_shape, num_classes)

    return build


_EPOCHS = ParamSpec("epochs", "int", low=5, high=50, step=5)
_LEARNING_RATE = ParamSpec("learning_rate", "fixed", value=0.001)
BUILTIN_SPECS = {
    "mlp": ModelSpec("mlp", (
        ParamSpec("layer_num", "int", low=2, high=4), _EPOCHS,
        ParamSpec("first_layer_unit", "categorical", choices=[64, 128, 256, 512]),
        ParamSpec("batch_size", "categorical", choices=[32, 64, 128]), _LEARNING_RATE),
        _builtin("mlp"), BUILTIN_LIMITS, ("layer_num", "epochs", "first_layer_unit", "batch_size", "learning_rate")),
    "cnn": ModelSpec("cnn", (
        ParamSpec("k", "int", low=2, high=5), ParamSpec("layer_num", "int", low=1, high=3), _EPOCHS,
        ParamSpec("first_layer_unit", "categorical", choices=[16, 32, 64, 128, 256]),
        ParamSpec("batch_size", "fixed", value=128), _LEARNING_RATE, ParamSpec("dropout", "fixed", value=0.5)),
        _builtin("cnn"), BUILTIN_LIMITS,
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
        data = path.read_bytes()
        return _load_model_file(str(path.resolve()), hashlib.sha256(data).hexdigest())
    raise ConfigError(f"model: {model!r} is not allowed; choose {MODEL_HELP}")


@functools.cache
def _load_model_file(path: str, digest: str) -> ModelSpec:
    """Import a model file once per process (and again only if its contents change)."""
    name = Path(path).name
    source = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        code = compile(source, path, "exec")
    except SyntaxError as exc:
        raise ConfigError(f"model: {name} line {exc.lineno}: syntax error: {exc.msg}") from None
    module = types.ModuleType(f"tunedeck_model_{Path(path).stem}")
    module.__file__ = path
    sys.modules[module.__name__] = module  # so that its classes pickle and its decorators find it
    try:
        exec(code, module.__dict__)
    except Exception as exc:  # the user's code, at import
        line = next((frame.lineno for frame in reversed(traceback.extract_tb(exc.__traceback__))
                     if frame.filename == path), "?")
        raise ConfigError(f"model: {name} line {line} raised {type(exc).__name__}: {first_line(exc)}") from None
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise ConfigError(f"model: {name} defines no build_model(params, input_shape, num_classes)")
    table = getattr(module, "SPACE", None)
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"model: {name} defines no SPACE (a dict of parameters, like the config's [space])")
    try:
        space = tuple(spec_from_table(str(key), value) for key, value in table.items())
        from engine.space import check_spec

        for spec in space:
            check_spec(spec, TRAINING_LIMITS.get(spec.name))
    except ConfigError as exc:
        raise ConfigError(f"model: {name} SPACE: {exc}") from None
    missing = [key for key in TRAINING if key not in table]
    if missing:
        raise ConfigError(f"model: {name} SPACE must give {' and '.join(missing)} (fixed or searched): they are "
                          f"how tunedeck trains the model")
    return ModelSpec(Path(path).stem, space, build, dict(TRAINING_LIMITS), TRAINING, path, digest)
