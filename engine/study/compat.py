"""What a run may change in an existing study: a study records what it is when created, and a resume or a new
worker may widen it (a range, n_trials, timeout, pruner) but never make it another study (model, data,
objective, direction, a parameter's kind or choices), which would mix incomparable trials or break the sampler.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.study import StudyDirection

from engine.errors import ConfigError
from engine.space import Param
from engine.store import mask_url, schema
from engine.study.config import FIELD_HELP, StudyConfig

INCOMPATIBLE_SETTINGS = ("model", "dataset", "subset", "objective")
IGNORED_SETTINGS = ("storage", "study_name", "out_dir", "workers", "gpus", "storage_retry", "jit_compile",
                    "trial_timeout", "max_failures",  # where and how, not what
                    "warm_start", "warm_start_top", "warm_start_prior",  # applied once, when the study is created
                    "artifacts")  # the study's store is the one its creator recorded


def stored_config(data: dict[str, Any]) -> StudyConfig:
    """A StudyConfig from a study's stored config, not validated (a report never imports a model to check it)."""
    settings = {key: value for key, value in data.items() if key in FIELD_HELP}
    space = [Param(name, **table) for name, table in data.get("space", {}).items()]
    return StudyConfig(**settings, space=space)


def _space_differences(old: StudyConfig, new: StudyConfig) -> tuple[list[str], list[str]]:
    """Differences between what the trials of each config draw (the trial spaces)."""
    incompatible, compatible = [], []
    before = {param.name: param for param in old.trial_space}
    after = {param.name: param for param in new.trial_space}
    for name in sorted(before.keys() | after.keys()):
        o, n = before.get(name), after.get(name)
        if o is None or n is None:
            compatible.append(f"space.{name} {'added' if o is None else 'removed'}")
        elif o.kind != n.kind:
            incompatible.append(f"space.{name} kind {o.kind} -> {n.kind}")
        elif o.kind == "categorical" and list(o.choices) != list(n.choices):
            incompatible.append(f"space.{name} choices {o.describe()} -> {n.describe()}")
        elif o.log != n.log:
            incompatible.append(f"space.{name} log {o.log} -> {n.log}")
        elif o.to_dict() != n.to_dict():
            compatible.append(f"space.{name} {o.describe()} -> {n.describe()}")
    return incompatible, compatible


def check_compatible(study: optuna.Study, config: StudyConfig, stored: dict[str, Any] | None,
                     model: dict[str, str] | None = None) -> list[str]:
    """Raise ConfigError naming every incompatible difference between the study and this run; return the
    compatible ones (to record). `stored` is the study's recorded config, None for a study not yet recorded;
    `model` this run's model record (a model file is compared by the hash of its contents, not its path)."""
    where = f"study {study.study_name!r} in {mask_url(config.storage_url)}"
    if len(study.directions) > 1:
        raise ConfigError(f"study-name: {where} has {len(study.directions)} objectives; tunedeck runs "
                          f"single-objective studies: use another --study-name")
    wanted = StudyDirection.MAXIMIZE if config.goal.maximize else StudyDirection.MINIMIZE
    if study.direction != wanted:
        raise ConfigError(f"study-name: {where} {study.direction.name.lower()}s its objective; {config.objective} "
                          f"is {wanted.name.lower()}d: use another --study-name")
    if not stored:
        return []
    old, new = stored_config(stored), config.to_dict()
    incompatible, compatible = [], []
    recorded = study.user_attrs.get(schema.MODEL, {})
    if model and recorded.get("sha256") and model.get("sha256") != recorded["sha256"]:
        incompatible.append(f"the model file {recorded.get('name')} (sha256 {recorded['sha256'][:12]} -> "
                            f"{(model.get('sha256') or model.get('name'))[:12]})")
    for key in FIELD_HELP:
        if key in IGNORED_SETTINGS or key not in stored or stored[key] == new[key]:
            continue
        if key == "model" and recorded.get("sha256") and model and model.get("sha256"):
            continue  # the same file's contents (checked above) at another path: another machine
        change = f"{key} {stored[key]!r} -> {new[key]!r}"
        (incompatible if key in INCOMPATIBLE_SETTINGS else compatible).append(change)
    space_incompatible, space_compatible = _space_differences(old, config)
    incompatible += space_incompatible
    if incompatible:
        raise ConfigError(f"study-name: {where} is another study: this run would change {'; '.join(incompatible)}. "
                          f"Start a new study instead: give another --study-name (or study_name in the config)")
    return compatible + space_compatible
