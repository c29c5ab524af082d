"""Search spaces: the seed's defaults, validation, and ParamSpec -> trial.suggest_*."""

from __future__ import annotations

import math
from typing import Any

import optuna

from engine.config import ParamSpec, plain, shown
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


# What each parameter may hold: (type, minimum, maximum).
PARAM_LIMITS: dict[str, tuple[type, float, float]] = {
    "layer_num": (int, 1, 16),
    "first_layer_unit": (int, 1, 100_000),
    "epochs": (int, 1, 100_000),
    "batch_size": (int, 1, 1_000_000),
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
    if model == "mlp":
        _check_mlp_shrink(space)


def extremes(spec: ParamSpec) -> tuple[float, float]:
    """The smallest and largest value a (valid) spec can give."""
    if spec.kind == "fixed":
        return spec.value, spec.value
    if spec.kind == "categorical":
        return min(spec.choices), max(spec.choices)
    return spec.low, spec.high


def _check_mlp_shrink(space: list[ParamSpec]) -> None:
    """Layer i of the MLP has int(first_layer_unit / 2**i) units: the last one must keep at least one."""
    specs = {spec.name: spec for spec in space}
    units, layers = extremes(specs["first_layer_unit"])[0], extremes(specs["layer_num"])[1]
    if int(units / 2 ** (layers - 1)) < 1:
        raise ConfigError(f"space.layer_num: with first_layer_unit {units:g} and layer_num {layers:g} the MLP's last "
                          f"layer would have 0 units; first_layer_unit must be >= 2^(layer_num-1) = "
                          f"{2 ** (layers - 1):g}")


def check_architecture(model: str, space: list[ParamSpec], input_shape: tuple[int, ...]) -> None:
    """What only the data can tell: the CNN's pooling layers (each halves the image) must leave a pixel."""
    if model != "cnn":
        return
    side = min(input_shape[:2])
    layers = int(extremes(next(spec for spec in space if spec.name == "layer_num"))[1])
    if side // 2**layers < 1:
        most = max(side.bit_length() - 1, 0)
        raise ConfigError(f"space.layer_num: {layers} pooling layers shrink the {input_shape[0]}x{input_shape[1]} "
                          f"images to nothing; at most {most} for this data")

def _check_value(where: str, name: str, value: Any) -> None:
    kind, low, high = PARAM_LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {shown(value)}")
    if kind is int and value != int(value):
        raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: {name} must be in {plain(low)}..{plain(high)}, got {shown(value)}")


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
