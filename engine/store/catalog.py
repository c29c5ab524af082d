"""The studies storages hold, for `tunedeck watch` without a study name: read from Optuna's study summaries (one
query per storage and a best trial per study), never every trial of every study; and the storages `tunedeck run`
leaves under a folder by default."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import optuna

from engine.store import schema
from engine.store.opening import close_storage, open_existing_storage


@dataclass(frozen=True)
class StudyRow:
    name: str
    storage: str  # the URL it was read from (not masked: the picker opens it; shown masked)
    n_trials: int  # trials of every state
    target: int  # the study's n_trials, 0 when not a tunedeck study
    best: float | None
    direction: str  # "maximize" | "minimize"
    started: datetime.datetime | None  # its first trial's start


def list_studies(storage_url: str) -> list[StudyRow]:
    """Every study of the storage, newest first."""
    storage = open_existing_storage(storage_url)
    try:
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    finally:
        close_storage(storage)
    rows = [StudyRow(s.study_name, storage_url, s.n_trials, s.user_attrs.get(schema.N_TRIALS, 0),
                     s.best_trial.value if s.best_trial else None, s.direction.name.lower(), s.datetime_start)
            for s in summaries if len(s.directions) == 1]
    oldest = datetime.datetime.min
    return sorted(rows, key=lambda row: row.started or oldest, reverse=True)


def default_storages(folder: Path) -> list[str]:
    """The SQLite storages `tunedeck run` writes by default (<out_dir>/<study>/study.db) under `folder`, at most
    two levels down (runs/<study>/study.db, or <study>/study.db when the folder is an out_dir)."""
    found = sorted({*folder.glob("*/study.db"), *folder.glob("*/*/study.db")})
    return [f"sqlite:///{path}" for path in found if path.is_file()]
