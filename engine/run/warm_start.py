"""Warm start: a new study first runs another study's best parameter sets (enqueued, then the sampler goes on), or
is given that study's finished trials as prior knowledge (copied into it: not run, not counted in n_trials).

The other study is read before the new one is created (a bad source is refused with nothing made), and applied
once, by the worker that creates the study; the study records what it was started from (schema.WARM_START).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.errors import ConfigError, UserError
from engine.space import distribution, fitted
from engine.store import mask_url, reading_study, schema, study_objective
from engine.study import StudyConfig

SOURCE = re.compile(r"^(?P<name>.+?)@(?P<url>[a-z][\w+]*://.*)$")  # OTHER@URL (a name may hold "@" too)
IDENTITY = ("model", "dataset", "subset", "objective")  # what must match for prior knowledge
KEPT_ATTRS = (schema.VAL_ACCURACY, schema.TEST_ACCURACY, schema.VAL_LOSS, schema.EPOCHS_TRAINED, schema.FIXED_PARAMS)


def parse_source(text: str, default_url: str) -> tuple[str, str]:
    """`OTHER` (in this study's storage) or `OTHER@URL` -> (name, url)."""
    match = SOURCE.match(text)
    return (match["name"], match["url"]) if match else (text, default_url)


@dataclass
class WarmStart:
    """What another study gives a new one, read before the new study exists."""

    name: str
    url: str
    prior: bool
    top: int
    trials: list[FrozenTrial] = field(default_factory=list)  # the best `top` (enqueue) or every finished (prior)
    direction: str = ""

    def record(self) -> dict[str, Any]:
        return {"from": self.name, "storage": mask_url(self.url), "top": self.top, "prior": self.prior,
                "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def read_warm_start(config: StudyConfig, model: dict[str, str]) -> WarmStart | None:
    """The source study's trials to use, or None without warm_start; a ConfigError when it cannot be used."""
    if not config.warm_start:
        return None
    name, url = parse_source(config.warm_start, config.storage_url)
    if name == config.name and url == config.storage_url:
        raise ConfigError(f"warm_start: {name!r} is this study; name another study")
    try:
        with reading_study(url, name) as other:
            trials = other.get_trials(deepcopy=False)
            goal, attrs = study_objective(other), other.user_attrs
    except UserError as exc:  # a missing study or storage, said as the setting that named it
        raise ConfigError(f"warm_start: {str(exc).split(': ', 1)[-1]}") from None
    if goal.maximize != config.goal.maximize:
        raise ConfigError(f"warm_start: {name!r} {'maximizes' if goal.maximize else 'minimizes'} its objective; this "
                          f"study does the opposite")
    source = WarmStart(name, url, config.warm_start_prior, config.warm_start_top)
    if source.prior:
        check_same_identity(name, attrs, config, model)
        source.trials = [t for t in trials if schema.counted(t)]
    else:
        complete = [t for t in trials if schema.state_name(t) == "COMPLETE"]
        source.trials = sorted(complete, key=lambda t: goal.sort_key(t.value))[:source.top]
    if not source.trials:
        raise ConfigError(f"warm_start: {name!r} has no {'finished' if source.prior else 'complete'} trial to start "
                          f"from")
    return source


def check_same_identity(name: str, attrs: dict[str, Any], config: StudyConfig, model: dict[str, str]) -> None:
    """Prior knowledge is only knowledge about the same problem: the same model (a file by its hash), data and
    objective."""
    theirs = attrs.get(schema.CONFIG, {})
    ours = config.to_dict()
    different = [key for key in IDENTITY if theirs.get(key) != ours.get(key)]
    if model.get("sha256") != attrs.get(schema.MODEL, {}).get("sha256"):
        different.append("model file contents")
    if different:
        raise ConfigError(f"warm_start: --prior needs the same model, data and objective; {name!r} differs in "
                          f"{', '.join(different)} (without --prior its best parameters are run again instead)")


def apply_warm_start(study: optuna.Study, config: StudyConfig, source: WarmStart) -> dict[str, Any]:
    """Enqueue the source's best parameter sets (clipped to this space, or skipped), or copy its finished trials in
    as prior knowledge; record and return what was done."""
    space = config.trial_space
    record = source.record() | {"enqueued": [], "skipped": [], "clipped": []}
    for trial in source.trials:
        values, clipped, why_not = fitted(dict(trial.params), space)
        clipped += fixed_here(trial, space)
        if not why_not and source.prior and clipped:  # its value was measured elsewhere in the space: not knowledge
            why_not = f"outside this space ({'; '.join(clipped)})"
        if not why_not and not source.prior and len(record["enqueued"]) >= config.n_trials:
            why_not = f"n_trials = {config.n_trials} leaves no room for it"
        if why_not:
            record["skipped"].append([trial.number, why_not])
            continue
        record["clipped"] += [[trial.number, change] for change in clipped]
        if source.prior:
            study.add_trial(prior_trial(trial, values, space, source.name))
        else:
            study.enqueue_trial(values, user_attrs={"warm_start_of": f"{source.name}#{trial.number}"})
        record["enqueued"].append(trial.number)
    study.set_user_attr(schema.WARM_START, record)
    return record


def fixed_here(trial: FrozenTrial, space: list) -> list[str]:
    """The source trial's values that this study's fixed parameters replace."""
    theirs = {**trial.user_attrs.get(schema.FIXED_PARAMS, {}), **trial.params}
    return [f"{param.name} {theirs[param.name]} -> {param.value} (fixed here)" for param in space
            if param.kind == "fixed" and param.name in theirs and theirs[param.name] != param.value]


def prior_trial(trial: FrozenTrial, values: dict[str, Any], space: list, name: str) -> FrozenTrial:
    """Another study's finished trial as this study's prior knowledge: its values and curve, this space's
    distributions, marked schema.PRIOR."""
    distributions = {param.name: distribution(param) for param in space if param.name in values}
    attrs = {key: trial.user_attrs[key] for key in KEPT_ATTRS if key in trial.user_attrs}
    return optuna.trial.create_trial(
        state=trial.state if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) else TrialState.COMPLETE,
        value=trial.value, params=values, distributions=distributions,
        intermediate_values=dict(trial.intermediate_values),
        user_attrs={**attrs, schema.PRIOR: {"study": name, "trial": trial.number}})
