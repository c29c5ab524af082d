"""The studies a storage holds, for `tunedeck watch` without a study name."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from engine.store import schema
from engine.store.follower import study_objective
from engine.store.opening import close_storage, open_existing_storage


@dataclass(frozen=True)
class StudyRow:
    name: str
    counts: dict[str, int]  # state name -> trials
    best: float | None
    n_trials: int  # the study's target, 0 when not a tunedeck study
    last_activity: datetime.datetime | None


def list_studies(storage_url: str) -> list[StudyRow]:
    """Every study of the storage with its trials by state, best value and last activity, newest first."""
    storage = open_existing_storage(storage_url)
    try:
        rows = [_row(optuna.load_study(study_name=summary.study_name, storage=storage))
                for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    finally:
        close_storage(storage)
    oldest = datetime.datetime.min
    return sorted(rows, key=lambda row: row.last_activity or oldest, reverse=True)


def _row(study: optuna.Study) -> StudyRow:
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE]
    times = [moment for t in trials for moment in (t.datetime_start, t.datetime_complete) if moment]
    return StudyRow(study.study_name, {k: v for k, v in counts.items() if v},
                    study_objective(study).best(complete),
                    study.user_attrs.get(schema.N_TRIALS, 0), max(times, default=None))
