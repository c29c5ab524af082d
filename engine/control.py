"""Study-wide control through the storage: the stop request every worker polls."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import optuna
from optuna.trial import TrialState

from engine import schema


def request_stop(study: optuna.Study, now: bool, by: str) -> dict[str, Any]:
    """Ask every worker of the study to stop after its trial (now=True: at the next batch)."""
    request = {"id": uuid.uuid4().hex, "now": now, "by": by,
               "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    study.set_user_attr(schema.STOP_REQUEST, request)
    return request


def stop_study(storage_url: str, study_name: str, now: bool, by: str) -> int:
    """Write a stop request into a stored study; returns how many of its trials are running."""
    from engine.storage import reading_study

    with reading_study(storage_url, study_name) as study:
        request_stop(study, now, by)
        return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def run_again(storage_url: str, study_name: str, number: int) -> None:
    """Queue a trial's parameters again (Optuna's enqueue): the next trial a worker starts runs them, to see
    whether a result was noise."""
    from engine.storage import reading_study

    with reading_study(storage_url, study_name) as study:
        trial = study.get_trials(deepcopy=False)[number]
        study.enqueue_trial(dict(trial.params), user_attrs={"run_again_of": number})


def stop_request(study: optuna.Study) -> dict[str, Any] | None:
    """The study's latest stop request, or None. A worker honours only one made after it started."""
    return study.user_attrs.get(schema.STOP_REQUEST)


def request_id(request: dict[str, Any] | None) -> str:
    return request["id"] if request else ""
