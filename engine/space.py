"""Search spaces: validation against a model spec's limits, and ParamSpec -> trial.suggest_*."""

from __future__ import annotations

import math
from typing import Any

import optuna

from engine.config import ParamSpec, plain, shown
from engine.errors import ConfigError


def default_space(model: str) -> list[ParamSpec]:
    """The default search space of a model (a built-in's is the seed's), to edit."""
    from engine.specs import spec_for

    return spec_for(model).default_space()


def check_space(model: str, space: list[ParamSpec]) -> None:
    """Raise ConfigError for the first invalid parameter spec of a model's space."""
    from engine.specs import spec_for

    spec = spec_for(model)
    allowed = [s.name for s in spec.space]
    names = [s.name for s in space]
    for name in names:
        if name not in allowed:
            raise ConfigError(f"space.{name}: unknown parameter for {spec.name}; allowed: {', '.join(allowed)}")
        if names.count(name) > 1:
            raise ConfigError(f"space.{name}: given twice")
    for name in spec.required:
        if name not in names:
            raise ConfigError(f"space.{name}: missing; the {spec.name} model needs it")
    for param in space:
        check_spec(param, spec.limits.get(param.name))
    if spec.name == "mlp":
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
    """What only the data can tell: the CNN needs images, and its pooling layers (each halves the image)
    must leave a pixel."""
    from engine.specs import spec_for

    spec = spec_for(model)
    if spec.needs_images and len(input_shape) != 3:
        raise ConfigError(f"model: the built-in {spec.name} needs images (N, H, W) or (N, H, W, C); this data is a "
                          f"table of {input_shape[0]} features: use mlp or a model file")
    if spec.name != "cnn":
        return
    side = min(input_shape[:2])
    layers = int(extremes(next(spec for spec in space if spec.name == "layer_num"))[1])
    if side // 2**layers < 1:
        most = max(side.bit_length() - 1, 0)
        raise ConfigError(f"space.layer_num: {layers} pooling layers shrink the {input_shape[0]}x{input_shape[1]} "
                          f"images to nothing; at most {most} for this data")

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
