"""What a worker records on the study it joins: the config (storage masked), the data, the model, its own
environment, and the study's target of finished trials."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import optuna

from engine.contract import DataInfo
from engine.store import WorkerInfo, mask_url, schema
from engine.study import StudyConfig

log = logging.getLogger("tunedeck")


def stored_form(config: StudyConfig) -> dict[str, Any]:
    """The config as the study records it: the storage masked, and named even when it came from the environment."""
    data = config.to_dict()
    data["storage"] = mask_url(config.storage_url)
    return data


def record_study(study: optuna.Study, config: StudyConfig, info: DataInfo, worker: WorkerInfo,
                 changes: list[str], describe: bool) -> None:
    """What the study is, stored once by its creator (`describe`), and its compatible changes when a run makes
    some, each with who made it; this worker's environment and the study's target, every run."""
    attrs = study.user_attrs
    if changes:
        log.info("this run changes the study: %s", "; ".join(changes))
        at = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
        study.set_user_attr(f"{schema.CONFIG_CHANGE_PREFIX}{at}:{worker.id}",
                            {"at": at, "by": worker.id, "changes": changes})  # its own key: an atomic append
        study.set_user_attr(schema.CONFIG, stored_form(config))
    if describe:
        study.set_user_attr(schema.CONFIG, stored_form(config))
    if schema.DATA not in attrs:  # the creator's description, or what a creator that died first left out
        study.set_user_attr(schema.ENVIRONMENT, info.environment)
        study.set_user_attr(schema.PARAM_NAMES, [param.name for param in config.trial_space if param.kind != "fixed"])
        study.set_user_attr(schema.MODEL, info.model)
        study.set_user_attr(schema.DATA, {"name": info.dataset, "note": info.note, "n_train": info.n_train,
                                          "n_test": info.n_test, **info.details})  # last: a watcher waits for it
    study.set_user_attr(schema.WORKER_ENV_PREFIX + worker.id, info.environment)
    if attrs.get(schema.N_TRIALS) != config.n_trials:
        study.set_user_attr(schema.N_TRIALS, config.n_trials)
