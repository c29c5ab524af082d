"""Search spaces: the seed's defaults, validation, and ParamSpec -> trial.suggest_*."""

from __future__ import annotations

import math
from typing import Any

import optuna

from engine.config import ParamSpec
from engine.errors import ConfigError


def default_space(model: str) -> list[ParamSpec]:
    """The seed's search space for a model, in the seed's suggest order (it fixes TPE's draws)."""
    epochs = ParamSpec("epochs", "int", low=5, high=50, step=5)
    learning_rate = ParamSpec("learning_rate", "fixed", value=0.001)
    if model == "mlp":
        return [
            ParamSpec("layer_num", "int", low=2, high=4),
            epochs,
            ParamSpec("first_layer_unit", "categorical", choices=[64, 128, 256, 512]),
            ParamSpec("batch_size", "categorical", choices=[32, 64, 128]),
            learning_rate,
        ]
    return [
        ParamSpec("k", "int", low=2, high=5),
        ParamSpec("layer_num", "int", low=1, high=3),
        epochs,
        ParamSpec("first_layer_unit", "categorical", choices=[16, 32, 64, 128, 256]),
        ParamSpec("batch_size", "fixed", value=128),
        learning_rate,
        ParamSpec("dropout", "fixed", value=0.5),
    ]


# What each parameter may hold: (type, minimum, maximum or None).
PARAM_LIMITS: dict[str, tuple[type, float, float | None]] = {
    "layer_num": (int, 1, 16),
    "first_layer_unit": (int, 1, None),
    "epochs": (int, 1, None),
    "batch_size": (int, 1, None),
    "k": (int, 1, 28),
    "learning_rate": (float, 1e-7, 10.0),
    "dropout": (float, 0.0, 0.99),
}


def model_params(model: str) -> list[str]:
    """Names of the hyperparameters a model's builder takes."""
    return [spec.name for spec in default_space(model)]


def check_space(model: str, space: list[ParamSpec]) -> None:
    """Raise ConfigError for the first invalid parameter spec."""
    allowed = model_params(model)
    names = [spec.name for spec in space]
    for name in names:
        if name not in allowed:
            raise ConfigError(f"space.{name}: unknown parameter for {model}; allowed: {', '.join(allowed)}")
        if names.count(name) > 1:
            raise ConfigError(f"space.{name}: given twice")
    for name in allowed:
        if name not in names:
            raise ConfigError(f"space.{name}: missing; the {model} model needs it")
    for spec in space:
        _check_spec(spec)


def _check_value(where: str, name: str, value: Any) -> None:
    kind, low, high = PARAM_LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is int and value != int(value):
        raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        upper = f"..{high}" if high is not None else " or more"
        raise ConfigError(f"{where}: {name} must be in {low}{upper}, got {value!r}")


def _check_spec(spec: ParamSpec) -> None:
    where = f"space.{spec.name}"
    value_kind = PARAM_LIMITS[spec.name][0]
    if spec.kind == "fixed":
        _check_value(f"{where}.value", spec.name, spec.value)
    elif spec.kind == "categorical":
        if not isinstance(spec.choices, list) or not spec.choices:
            raise ConfigError(f"{where}.choices: must be a non-empty list of values")
        for choice in spec.choices:
            _check_value(f"{where}.choices", spec.name, choice)
        if len(set(spec.choices)) != len(spec.choices):
            raise ConfigError(f"{where}.choices: values must be distinct")
    elif spec.kind in ("int", "float"):
        expected = "int" if value_kind is int else "float"
        if spec.kind != expected:
            raise ConfigError(f"{where}.kind: a range of {spec.name} must be {expected}; or use categorical or fixed")
        for bound in ("low", "high"):
            _check_value(f"{where}.{bound}", spec.name, getattr(spec, bound))
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


def suggest(trial: optuna.Trial, space: list[ParamSpec]) -> dict[str, Any]:
    """Draw every searchable parameter from the trial, in space order; fixed ones are not drawn."""
    params: dict[str, Any] = {}
    for spec in space:
        if spec.kind == "int":
            params[spec.name] = trial.suggest_int(
                spec.name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
        elif spec.kind == "float":
            params[spec.name] = trial.suggest_float(
                spec.name, float(spec.low), float(spec.high), step=spec.step, log=spec.log)
        elif spec.kind == "categorical":
            params[spec.name] = trial.suggest_categorical(spec.name, list(spec.choices))
    return params


def fixed_params(space: list[ParamSpec]) -> dict[str, Any]:
    """The parameters the user pinned to one value."""
    return {spec.name: spec.value for spec in space if spec.kind == "fixed"}
