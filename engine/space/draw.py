"""A space's parameters drawn from an Optuna trial."""

from __future__ import annotations

from typing import Any

import optuna

from engine.space.params import ParamSpec


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


def first_params(space: list[ParamSpec]) -> dict[str, Any]:
    """One set of parameters from a space, without a sampler: each fixed value, first choice or low."""
    return {spec.name: spec.first() for spec in space}
