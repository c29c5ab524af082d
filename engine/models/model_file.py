"""A user's model file, imported once per process: its SPACE and build_model(params, input_shape, num_classes)."""

from __future__ import annotations

import functools
import sys
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import ConfigError, first_line
from engine.space import Param, check_param

TRAINING = ("epochs", "batch_size")  # the training parameters every space gives, fixed or searched
TRAINING_LIMITS = {"epochs": (int, 1, 100_000), "batch_size": (int, 1, 1_000_000)}


class ModelFile(NamedTuple):
    """What a model file defines, checked."""

    name: str  # the file's stem
    space: tuple[Param, ...]
    build: Callable[[dict[str, Any], tuple[int, ...], int], Any]
    path: str  # absolute
    digest: str  # sha256 of its contents


@functools.cache
def load_model_file(path: str, digest: str) -> ModelFile:
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
        space = tuple(Param.from_table(str(key), value) for key, value in table.items())
        for param in space:
            check_param(param, TRAINING_LIMITS.get(param.name))
    except ConfigError as exc:
        raise ConfigError(f"model: {name} SPACE: {exc}") from None
    missing = [key for key in TRAINING if key not in table]
    if missing:
        raise ConfigError(f"model: {name} SPACE must give {' and '.join(missing)} (fixed or searched): they are "
                          f"how tunedeck trains the model")
    return ModelFile(Path(path).stem, space, build, path, digest)
