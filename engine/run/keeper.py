"""Keep the study's best k trained models as .keras files in one folder, shared by every worker writing there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from engine.contract import Objective
from engine.keras import save_atomically
from engine.store import pid_alive

PATTERN = "trial-*.keras"


class ModelKeeper:
    """Ranks a new model among the study's complete trials (read from storage, so every worker agrees) and
    deletes only the files of finished trials outside the top k: a file of a trial still running on another
    worker is never touched."""

    def __init__(self, folder: Path, keep: int, goal: Objective) -> None:
        self.folder = folder
        self.keep = keep
        self.goal = goal

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
        path = self.path_for(number)
        save_atomically(model, path)
        finished = {t.number for t in trials if t.state.is_finished()}
        for old in self.folder.glob(PATTERN):
            kept_number = _number(old)
            if kept_number in finished and kept_number not in top:
                old.unlink(missing_ok=True)
        return path

    def _top(self, trials: list, number: int, value: float) -> set[int]:
        ranked = [(t.value, t.number) for t in trials if t.state == TrialState.COMPLETE and t.number != number]
        ranked.append((value, number))
        ranked.sort(key=lambda pair: (self.goal.sort_key(pair[0]), pair[1]))
        return {n for _, n in ranked[:self.keep]}


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
