"""A parameter checked against its limits: a ConfigError naming `space.NAME.FIELD` and what is allowed."""

from __future__ import annotations

import math
from typing import Any

from engine.errors import ConfigError, plain, shown
from engine.space.params import Param

Limits = dict[str, tuple[type, float, float]]  # parameter -> (type, minimum, maximum)

SCALARS = (bool, int, float, str)  # what a choice or a fixed value of a model file's parameter may be


def _check_value(where: str, name: str, value: Any, limits: tuple[type, float, float] | None) -> None:
    """A number within a built-in parameter's limits; for a model file's own parameter, any scalar."""
    if limits is None:
        if not isinstance(value, SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
            raise ConfigError(f"{where}: expected a number, a string or true/false, got {shown(value)}")
        return
    kind, low, high = limits
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {shown(value)}")
    if kind is int and value != int(value):
        raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: {name} must be in {plain(low)}..{plain(high)}, got {shown(value)}")


def _check_bound(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {shown(value)}")


def check_param(param: Param, limits: tuple[type, float, float] | None = None) -> None:
    """Raise ConfigError naming what is wrong with one parameter (within `limits` when it has them)."""
    where = f"space.{param.name}"
    if param.kind == "fixed":
        _check_value(f"{where}.value", param.name, param.value, limits)
    elif param.kind == "categorical":
        if not isinstance(param.choices, list) or not param.choices:
            raise ConfigError(f"{where}.choices: must be a non-empty list of values")
        for choice in param.choices:
            _check_value(f"{where}.choices", param.name, choice, limits)
        if len({repr(choice) for choice in param.choices}) != len(param.choices):
            raise ConfigError(f"{where}.choices: values must be distinct")
    elif param.kind in ("int", "float"):
        if limits is not None and param.kind != ("int" if limits[0] is int else "float"):
            expected = "int" if limits[0] is int else "float"
            raise ConfigError(f"{where}.kind: a range of {param.name} must be {expected}; or use categorical or fixed")
        for bound in ("low", "high"):
            if limits is None:
                _check_bound(f"{where}.{bound}", getattr(param, bound))
                if param.kind == "int" and getattr(param, bound) != int(getattr(param, bound)):
                    raise ConfigError(f"{where}.{bound}: must be a whole number for an int parameter")
            else:
                _check_value(f"{where}.{bound}", param.name, getattr(param, bound), limits)
        if param.low > param.high:
            raise ConfigError(f"{where}: low must be <= high (got {param.low} > {param.high})")
        _check_step_and_log(where, param)
    else:
        raise ConfigError(f"{where}.kind: {param.kind!r} is not allowed; choose int, float, categorical or fixed")


def _check_step_and_log(where: str, param: Param) -> None:
    if param.log and param.step not in (None, 1):
        raise ConfigError(f"{where}: log and step cannot be combined (Optuna allows step only on a linear scale)")
    if param.log and param.low <= 0:
        raise ConfigError(f"{where}.low: must be > 0 on a log scale, got {param.low}")
    if param.step is None:
        return
    if isinstance(param.step, bool) or not isinstance(param.step, (int, float)) or param.step <= 0:
        raise ConfigError(f"{where}.step: must be a positive number, got {param.step!r}")
    if param.kind == "int" and param.step != int(param.step):
        raise ConfigError(f"{where}.step: must be a whole number for an int parameter, got {param.step!r}")
    span = (param.high - param.low) / param.step
    if abs(span - round(span)) > 1e-9:
        raise ConfigError(f"{where}.step: {param.step} does not divide the range {param.low}..{param.high}")
