"""A parameter checked against its limits: a ConfigError naming `space.NAME.FIELD` and what is allowed."""

from __future__ import annotations

import math
from typing import Any

from engine.errors import ConfigError, plain, shown
from engine.space.params import ParamSpec

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


def check_spec(spec: ParamSpec, limits: tuple[type, float, float] | None = None) -> None:
    """Raise ConfigError naming what is wrong with one parameter (within `limits` when it has them)."""
    where = f"space.{spec.name}"
    if spec.kind == "fixed":
        _check_value(f"{where}.value", spec.name, spec.value, limits)
    elif spec.kind == "categorical":
        if not isinstance(spec.choices, list) or not spec.choices:
            raise ConfigError(f"{where}.choices: must be a non-empty list of values")
        for choice in spec.choices:
            _check_value(f"{where}.choices", spec.name, choice, limits)
        if len({repr(choice) for choice in spec.choices}) != len(spec.choices):
            raise ConfigError(f"{where}.choices: values must be distinct")
    elif spec.kind in ("int", "float"):
        if limits is not None and spec.kind != ("int" if limits[0] is int else "float"):
            expected = "int" if limits[0] is int else "float"
            raise ConfigError(f"{where}.kind: a range of {spec.name} must be {expected}; or use categorical or fixed")
        for bound in ("low", "high"):
            if limits is None:
                _check_bound(f"{where}.{bound}", getattr(spec, bound))
                if spec.kind == "int" and getattr(spec, bound) != int(getattr(spec, bound)):
                    raise ConfigError(f"{where}.{bound}: must be a whole number for an int parameter")
            else:
                _check_value(f"{where}.{bound}", spec.name, getattr(spec, bound), limits)
        if spec.low > spec.high:
            raise ConfigError(f"{where}: low must be <= high (got {spec.low} > {spec.high})")
        _check_step_and_log(where, spec)
    else:
        raise ConfigError(f"{where}.kind: {spec.kind!r} is not allowed; choose int, float, categorical or fixed")


def _check_step_and_log(where: str, spec: ParamSpec) -> None:
    if spec.log and spec.step not in (None, 1):
        raise ConfigError(f"{where}: log and step cannot be combined (Optuna allows step only on a linear scale)")
    if spec.log and spec.low <= 0:
        raise ConfigError(f"{where}.low: must be > 0 on a log scale, got {spec.low}")
    if spec.step is None:
        return
    if isinstance(spec.step, bool) or not isinstance(spec.step, (int, float)) or spec.step <= 0:
        raise ConfigError(f"{where}.step: must be a positive number, got {spec.step!r}")
    if spec.kind == "int" and spec.step != int(spec.step):
        raise ConfigError(f"{where}.step: must be a whole number for an int parameter, got {spec.step!r}")
    span = (spec.high - spec.low) / spec.step
    if abs(span - round(span)) > 1e-9:
        raise ConfigError(f"{where}.step: {spec.step} does not divide the range {spec.low}..{spec.high}")
