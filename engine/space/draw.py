"""A space's parameters drawn from an Optuna trial."""

from __future__ import annotations

from typing import Any

import optuna

from engine.space.params import Param


def suggest(trial: optuna.Trial, space: list[Param]) -> dict[str, Any]:
    """Draw every searchable parameter from the trial, in space order; fixed ones are not drawn."""
    params: dict[str, Any] = {}
    for param in space:
        if param.kind == "int":
            params[param.name] = trial.suggest_int(
                param.name, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)
        elif param.kind == "float":
            params[param.name] = trial.suggest_float(
                param.name, float(param.low), float(param.high), step=param.step, log=param.log)
        elif param.kind == "categorical":
            params[param.name] = trial.suggest_categorical(param.name, list(param.choices))
    return params


def fixed_params(space: list[Param]) -> dict[str, Any]:
    """The parameters the user pinned to one value."""
    return {param.name: param.value for param in space if param.kind == "fixed"}


def first_params(space: list[Param]) -> dict[str, Any]:
    """One set of parameters from a space, without a sampler: each fixed value, first choice or low."""
    return {param.name: param.first() for param in space}


def distribution(param: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution `suggest` draws a searchable parameter from (for trials added to a study)."""
    if param.kind == "int":
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log,
                                                    step=int(param.step or 1))
    if param.kind == "float":
        return optuna.distributions.FloatDistribution(float(param.low), float(param.high), log=param.log,
                                                      step=param.step)
    return optuna.distributions.CategoricalDistribution(list(param.choices))


def fitted(params: dict[str, Any], space: list[Param]) -> tuple[dict[str, Any], list[str], str]:
    """Another study's parameters fitted to `space`'s searchable parameters: a number outside a range is clipped
    to it (and onto its step); returns (values, what was clipped, why they do not fit: "" when they do)."""
    values: dict[str, Any] = {}
    clipped: list[str] = []
    for param in space:
        if param.kind == "fixed":
            continue
        if param.name not in params:
            return {}, [], f"no {param.name}"
        value = params[param.name]
        if param.kind == "categorical":
            if value not in param.choices:
                return {}, [], f"{param.name} = {value!r} is not one of its choices"
            values[param.name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return {}, [], f"{param.name} = {value!r} is not a number"
        kept = min(max(value, param.low), param.high)
        if param.step:
            kept = param.low + round((kept - param.low) / param.step) * param.step
            kept = min(kept, param.high)
        kept = int(round(kept)) if param.kind == "int" else float(kept)
        if kept != value:
            clipped.append(f"{param.name} {value} -> {kept}")
        values[param.name] = kept
    return values, clipped, ""
