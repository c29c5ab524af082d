"""A study's status as plain data (JSON-serialisable) for scripts, schedulers and agents: `tunedeck status`.

It only reads: a trial whose worker is gone is reported (`stale_trials`), never failed here (the next worker or
view reaps it). A study's state is one of:

- "running": a trial runs on a live worker (one whose heartbeat, or journal lease, is younger than twice the
  study's heartbeat, and which is not a dead process of this host), or a trial ended less than that long ago (a
  worker between two trials);
- "finished": the study has its n_trials complete or pruned trials, and nothing runs;
- "stopped": nothing runs and a stop request was made after the last trial started (`tunedeck stop`, `s`; one
  that a trial started more than STOP_SEEN_SECONDS after is past: the study was resumed since);
- "waiting": nothing runs, but trials are queued (a dead worker's trial to retry, enqueued parameters): a worker
  started now runs them first;
- "idle": nothing runs, nothing is queued, the budget is not reached: no live worker (start one to go on).
"""

from __future__ import annotations

import datetime
import math
import platform
import time
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from engine.store import schema
from engine.store.follower import study_objective
from engine.store.identity import pid_alive
from engine.store.opening import close_storage, load_study, open_existing_storage
from engine.store.urls import has_heartbeat, mask_url

STATES = ("running", "finished", "stopped", "waiting", "idle")
DEFAULT_HEARTBEAT = 30  # seconds: a study that does not record its own (tunedeck's default)
# workers see a stop request within 2 s (and its time is to the second): a trial begun that soon after it may still be
# a stopping worker's; one begun later was started by a run that came after it (the study was resumed)
STOP_SEEN_SECONDS = 5
STATE_KEYS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
              "WAITING": "waiting", "PRIOR": "prior"}


def storage_status(url: str, name: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """The status of study `name` (a StorageError when the storage or the study is missing), or of every study of
    the storage in the order they were created. `now` (unix time; default the clock) is when it is judged."""
    storage = open_existing_storage(url)
    try:
        if name:
            return [study_status(load_study(storage, url, name), url, now)]
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        return [study_status(optuna.load_study(study_name=summary.study_name, storage=storage), url, now)
                for summary in summaries]
    finally:
        close_storage(storage)


def study_status(study: optuna.Study, url: str, now: float | None = None) -> dict[str, Any]:
    """One study's status (see the module's doc for its state)."""
    now = time.time() if now is None else now
    attrs = study.user_attrs
    config = attrs.get(schema.CONFIG) if isinstance(attrs.get(schema.CONFIG), dict) else {}
    heartbeat = config.get("heartbeat") if isinstance(config.get("heartbeat"), int) else None
    grace = 2 * (heartbeat or DEFAULT_HEARTBEAT)
    trials = study.get_trials(deepcopy=False)
    counts = dict.fromkeys(STATE_KEYS.values(), 0)
    for trial in trials:
        counts[STATE_KEYS.get(schema.state_name(trial), "failed")] += 1
    counts["counted"] = counts["complete"] + counts["pruned"]
    target = attrs.get(schema.N_TRIALS)
    target = target if isinstance(target, int) and not isinstance(target, bool) and target > 0 else None

    running = [trial for trial in trials if trial.state == TrialState.RUNNING]
    beats = _last_beats(study, url, running)
    workers, stale = [], []
    for trial in running:
        beat = beats.get(trial.number)
        if beat is None and heartbeat is not None and trial.datetime_start is not None:
            age = now - trial.datetime_start.timestamp()  # no beat yet: as old as the trial
        else:
            age = None if beat is None else now - beat
        worker = trial.user_attrs.get(schema.WORKER) if isinstance(trial.user_attrs.get(schema.WORKER), dict) else {}
        dead_here = worker.get("host") == platform.node() and isinstance(worker.get("pid"), int) \
            and not pid_alive(worker["pid"], str(worker.get("started", "")))
        if dead_here or (age is not None and age > grace):
            stale.append(trial.number)
            continue
        workers.append({"id": worker.get("id"), "host": worker.get("host"), "pid": worker.get("pid"),
                        "device": worker.get("device"), "trial": trial.number, "started": _iso(trial.datetime_start),
                        "last_heartbeat": _iso(beat)})

    stop = attrs.get(schema.STOP_REQUEST) if isinstance(attrs.get(schema.STOP_REQUEST), dict) else None
    starts = [trial.datetime_start.timestamp() for trial in trials if trial.datetime_start is not None]
    ends = [trial.datetime_complete.timestamp() for trial in trials if trial.datetime_complete is not None]
    last = max([*starts, *ends, *(beat for beat in beats.values() if beat is not None)], default=None)
    asked = stop is not None and not any(start > _unix(stop.get("at")) + STOP_SEEN_SECONDS for start in starts)
    forked = attrs.get(schema.FORKED_FROM)
    forked_at = _unix(forked.get("at")) + 1 if isinstance(forked, dict) else -math.inf
    ran_here = [end for end in ends if end > forked_at]  # a fork's copied trials ended in the original, or by the fork
    state = _state(workers, counts, target, asked, ran_here, now, grace)
    return _plain({
        "name": study.study_name,
        "storage": mask_url(url),
        "state": state,
        "counts": counts,
        "n_trials": target,
        "best": _best(study, trials),
        "direction": _direction(study),
        "objective": study_objective(study).metric if len(study.directions) == 1 else None,
        "model": config.get("model"),
        "dataset": config.get("dataset"),
        "sampler": config.get("sampler"),
        "pruner": config.get("pruner"),
        "heartbeat": heartbeat,
        "workers": workers,
        "stale_trials": stale,
        "stop_request": stop,
        "stop_requested": asked,
        "artifact_store": attrs.get(schema.ARTIFACT_STORE),
        "warm_start": attrs.get(schema.WARM_START),
        "forked_from": forked,
        "started": _iso(min(starts, default=None)),
        "last_activity": _iso(last),
    })


def _state(workers: list, counts: dict[str, int], target: int | None, asked: bool, ends: list[float], now: float,
           grace: float) -> str:
    if workers:
        return "running"
    if target is not None and counts["counted"] >= target:
        return "finished"
    if asked:
        return "stopped"
    if ends and now - max(ends) <= grace:
        return "running"  # a worker between two trials
    return "waiting" if counts["waiting"] else "idle"


def _best(study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, Any] | None:
    """The best complete trial as tunedeck ranks it (not prior knowledge, not an out-of-memory trial)."""
    if len(study.directions) != 1:
        return None
    maximize = study.direction == StudyDirection.MAXIMIZE
    done = [trial for trial in trials if schema.state_name(trial) == "COMPLETE" and trial.value is not None]
    if not done:
        return None
    best = min(done, key=lambda trial: (-trial.value if maximize else trial.value, trial.number))
    return {"number": best.number, "value": best.value, "params": dict(best.params),
            "test_accuracy": best.user_attrs.get(schema.TEST_ACCURACY)}


def _direction(study: optuna.Study) -> str | list[str]:
    names = [direction.name.lower() for direction in study.directions]
    return names[0] if len(names) == 1 else names


def _last_beats(study: optuna.Study, url: str, running: list[FrozenTrial]) -> dict[int, float | None]:
    """Each running trial's last sign of life (unix time), by number: Optuna's heartbeat on an RDB storage, the
    trial's lease on a journal (or a gRPC proxy's clients); None where unknown."""
    if not running:
        return {}
    if not has_heartbeat(url):
        return {trial.number: _number(trial.user_attrs.get(schema.LEASE)) for trial in running}
    ages = _heartbeat_ages(study._storage, [trial._trial_id for trial in running])
    now = time.time()
    return {trial.number: None if trial._trial_id not in ages else now - ages[trial._trial_id] for trial in running}


def _heartbeat_ages(storage: optuna.storages.BaseStorage, trial_ids: list[int]) -> dict[int, float]:
    """Seconds since each trial's last Optuna heartbeat, by trial id, measured on the database's clock (as Optuna
    judges them). Optuna has no public reader for heartbeats: its table is read; {} if that fails."""
    backend = getattr(storage, "_backend", storage)  # Optuna's cache over an RDBStorage
    if not isinstance(backend, optuna.storages.RDBStorage):
        return {}
    try:
        import sqlalchemy
        from optuna.storages._rdb import models

        session = backend.scoped_session()
        try:
            db_now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
            rows = session.query(models.TrialHeartbeatModel.trial_id, models.TrialHeartbeatModel.heartbeat) \
                .filter(models.TrialHeartbeatModel.trial_id.in_(trial_ids)).all()
        finally:
            session.rollback()
            session.close()
        return {trial_id: max(0.0, (db_now - beat.replace(tzinfo=None)).total_seconds()) for trial_id, beat in rows}
    except Exception:  # noqa: BLE001 - another Optuna's schema: heartbeats unknown, not an error
        return {}


def _plain(value: Any) -> Any:
    """Strict JSON data: a NaN or infinite number (a stored attribute may hold one) becomes null, anything else
    that JSON has no word for its text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _unix(text: Any) -> float:
    """An ISO time as unix time; a request of unknown time is taken as made now (after every trial's start)."""
    try:
        return datetime.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return math.inf


def _iso(moment: datetime.datetime | float | None) -> str | None:
    """A time as ISO 8601 in UTC (Optuna's trial times are naive local times)."""
    if moment is None:
        return None
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")
