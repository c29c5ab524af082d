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
