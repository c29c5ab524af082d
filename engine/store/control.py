"""Study-wide control through the storage: the stop request every worker polls, and a trial queued again."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import optuna
from optuna.trial import TrialState

from engine.contract import Cause, Scope, StopRequest
from engine.store import schema
from engine.store.opening import reading_study


def write_stop_request(study: optuna.Study, request: StopRequest) -> str:
    """Ask every worker of the study to stop as `request` says; returns the stored request's id."""
    stored = {"id": uuid.uuid4().hex, "now": request.now, "cause": request.cause.value, "by": request.by,
              "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    study.set_user_attr(schema.STOP_REQUEST, stored)
    return stored["id"]


def read_stop_request(attrs: dict[str, Any]) -> tuple[str, StopRequest] | None:
    """The study's latest stop request (from its user attributes) with its id, or None."""
    stored = attrs.get(schema.STOP_REQUEST)
    if not isinstance(stored, dict) or "id" not in stored:
        return None
    cause = stored.get("cause", Cause.USER.value)
    return stored["id"], StopRequest(bool(stored.get("now")), Scope.STUDY,
                                     Cause(cause) if cause in Cause._value2member_map_ else Cause.USER,
                                     str(stored.get("by", "")))


def stop_request_id(attrs: dict[str, Any]) -> str:
    """The id of the study's latest stop request, or "": a worker honours only one made after it started."""
    found = read_stop_request(attrs)
    return found[0] if found else ""


def stop_study(storage_url: str, study_name: str, now: bool, by: str) -> int:
    """Write a stop request into a stored study; returns how many of its trials are running."""
    with reading_study(storage_url, study_name) as study:
        write_stop_request(study, StopRequest(now, Scope.STUDY, Cause.USER, by))
        return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def run_again(storage_url: str, study_name: str, number: int) -> None:
    """Queue a trial's parameters again (Optuna's enqueue): the next trial a worker starts runs them, to see
    whether a result was noise."""
    with reading_study(storage_url, study_name) as study:
        trial = study.get_trials(deepcopy=False)[number]
        study.enqueue_trial(dict(trial.params), user_attrs={"run_again_of": number})
