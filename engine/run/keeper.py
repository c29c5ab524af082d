"""Keep the study's best k trained models as .keras files in one folder, shared by every worker writing there."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna

from engine.contract import Objective
from engine.errors import first_line
from engine.keras import save_atomically
from engine.store import (
    check_writable,
    default_artifacts_url,
    open_artifact_store,
    pid_alive,
    reachable,
    remove_models,
    schema,
    study_artifacts_url,
    upload,
)
from engine.study import StudyConfig

log = logging.getLogger("tunedeck")
PATTERN = "trial-*.keras"


class ModelKeeper:
    """Ranks a new model among the study's complete trials (read from storage, so every worker agrees) and
    deletes only the files of finished trials outside the top k: a file of a trial still running on another
    worker is never touched."""

    def __init__(self, folder: Path, keep: int, goal: Objective, store: Any = None) -> None:
        self.folder = folder
        self.keep = keep
        self.goal = goal
        self.store = store  # the study's artifact store: kept models are uploaded there, dropped ones removed
        self.dropped: set[int] = set()  # the finished trials the last offer pushed out of the best k, any host's

    def path_for(self, number: int) -> Path:
        return self.folder / f"trial-{number:04d}.keras"

    def offer(self, study: optuna.Study, number: int, value: float, model: Any) -> Path | None:
        """Save the model if it ranks in the study's best k; return its path, or None. Raises OSError (and
        whatever Keras raises) when the file cannot be written; no partial file is left."""
        if self.keep <= 0 or model is None:
            return None
        trials = study.get_trials(deepcopy=False)
        top = self._top(trials, number, value)
        if number not in top:
            return None
        self.dropped = self._top(trials, number, None) - top  # what this model pushes out, whoever trained it
        path = self.path_for(number)
        save_atomically(model, path)
        finished = {t.number for t in trials if t.state.is_finished()}
        for old in self.folder.glob(PATTERN):
            kept_number = _number(old)
            if kept_number in finished and kept_number not in top:
                old.unlink(missing_ok=True)
        return path

    def keep_model(self, trial: optuna.Trial, value: float, model: Any) -> None:
        """Offer a trial's model, and mirror the folder in the study's store (for `tunedeck get` on any machine).
        Optional: the trial's results are already in the storage, and a model that cannot be written or uploaded
        leaves a warning on a trial that still counts."""
        try:
            path = self.offer(trial.study, trial.number, value, model)
        except Exception as exc:  # a full disk, a read-only folder, a Keras serialisation error
            self._warn(trial, f"model not saved: {first_line(exc)}")
            return
        if path is None or self.store is None:
            return
        try:
            upload(self.store, path, trial)
            trials = trial.study.get_trials(deepcopy=False)
            for number in sorted(self.dropped):
                remove_models(self.store, trials[number], trial.study._storage)
        except Exception as exc:  # a store that refuses the file or does not answer
            self._warn(trial, f"model saved in {path.parent}, not uploaded to the artifact store: {first_line(exc)}")

    def _warn(self, trial: optuna.Trial, warning: str) -> None:
        trial.set_user_attr(schema.MODEL_WARNING, warning)
        log.warning("trial %d: %s", trial.number, warning)

    def _top(self, trials: list, number: int, value: float | None) -> set[int]:
        """The best k complete trials with trial `number` at `value` (None: without it)."""
        ranked = [(t.value, t.number) for t in trials if schema.state_name(t) == "COMPLETE" and t.number != number]
        if value is not None:
            ranked.append((value, number))
        ranked.sort(key=lambda pair: (self.goal.sort_key(pair[0]), pair[1]))
        return {n for _, n in ranked[:self.keep]}


def study_artifact_store(study: optuna.Study, config: StudyConfig, host: str) -> Any:
    """The study's artifact store: the one its creator recorded (a later `artifacts` is only logged), else this
    run's (`artifacts`, or the default beside the storage), recorded now."""
    recorded = study_artifacts_url(study)
    url = recorded or config.artifacts or default_artifacts_url(config.storage_url, config.run_dir)
    if not recorded:
        study.set_user_attr(schema.ARTIFACT_STORE, url)
    elif config.artifacts and config.artifacts != recorded:
        log.warning("the study keeps its artifacts in %s; artifacts = %s is not used", recorded, config.artifacts)
    reachable(url, study.user_attrs.get(schema.ENVIRONMENT, {}).get("host", ""), host)
    store = open_artifact_store(url)
    check_writable(store, url)
    return store


def remove_leftovers(folder: Path) -> list[Path]:
    """Half-written models (`.trial-NNNN.PID.tmp.keras`) of processes on this host that no longer run: a kill
    during a save leaves one; it never had the name of a kept model, and now it goes."""
    removed = []
    for path in folder.glob(".trial-*.tmp.keras"):
        pid = path.name.split(".")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _number(path: Path) -> int | None:
    digits = path.stem.removeprefix("trial-")
    return int(digits) if digits.isdigit() else None
