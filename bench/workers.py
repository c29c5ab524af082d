"""What a shared storage costs: per trial through StudyRunner, and per watcher poll at 10,000 trials.

(a) Storage cost per trial: StudyRunner with a trainer that trains nothing (one epoch, reported at once), so
    all that is timed is the runner and the storage: SQLite, a journal file, PostgreSQL (when reachable).
(b) One watcher poll (StudyFollower, as `tunedeck watch` and the app use it) on a study of N finished trials:
    with nothing new (goal: <= 20 ms at 10,000), and after another process added 10 finished trials; and
    the importance computation that a poll with new complete trials triggers (at most every 5 s).
Prints a line per figure and a final JSON line.
Usage: python bench/workers.py [--quick] [--trials N] [--history N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import optuna  # noqa: E402
from fakes import FakeTrainer, fake_config  # noqa: E402

from engine import StudyRunner  # noqa: E402
from engine.store import (
    StudyFollower,  # noqa: E402
    open_storage,  # noqa: E402
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def postgres_database(base: str | None) -> tuple[str, callable] | None:
    """A fresh database on the local server (or `base`), and a function that drops it; None without a server."""
    try:
        import psycopg
    except ImportError:
        return None
    admin = base or f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
    name = f"tunedeck_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin.rsplit("/", 1)[0] + f"/{name}", drop


def per_trial_seconds(url: str, folder: Path, n_trials: int) -> float:
    """Wall seconds per trial of a runner whose trainer trains nothing. A first run of 3 trials creates the
    schema and the study and imports what a run imports; the second run, timed, resumes it for n_trials more.
    Import-time objects are frozen first, as a real worker's trainer does (the per-trial collection would
    otherwise walk them all)."""
    config = fake_config(folder, url, n_trials=3, epochs=1)
    config.pruner = "median"  # the default: reads the study each epoch
    StudyRunner(config, trainer=FakeTrainer()).run()
    gc.collect()
    gc.freeze()
    config.n_trials += n_trials
    started = time.perf_counter()
    StudyRunner(config, trainer=FakeTrainer()).run()
    return (time.perf_counter() - started) / n_trials


def add_finished_trials(url: str, name: str, count: int, start: int = 0) -> None:
    """`count` finished trials with curves, added as another process would (a storage of its own)."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    distribution = {"layer_num": optuna.distributions.IntDistribution(2, 4),
                    "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    trials = [optuna.trial.create_trial(
        params={"layer_num": 2 + i % 3, "learning_rate": 10 ** (-4 + (i % 300) / 100)}, distributions=distribution,
        value=0.5 + (i % 997) / 2000, intermediate_values={0: 0.4, 1: 0.5 + (i % 997) / 2000},
        user_attrs={"val_accuracy": 0.5, "test_accuracy": 0.5, "epochs_trained": 2})
        for i in range(start, start + count)]
    study.add_trials(trials)


def poll_costs(url: str, history: int) -> dict[str, float]:
    """Milliseconds of one follower poll with nothing new and with 10 new trials; importances at `history`."""
    name = "history"
    optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    started = time.perf_counter()
    add_finished_trials(url, name, history)
    print(f"  ({history} trials written in {time.perf_counter() - started:.0f} s)", flush=True)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    events = []
    follower = StudyFollower(study, events.append, importance_interval=float("inf"))
    follower.poll()  # the replay of every trial, once
    assert len(events) >= history, len(events)
    idle = []
    for _ in range(30):
        started = time.perf_counter()
        follower.poll()
        idle.append((time.perf_counter() - started) * 1000)
    add_finished_trials(url, name, 10, start=history)
    before = len(events)
    started = time.perf_counter()
    follower.poll()
    new = (time.perf_counter() - started) * 1000
    assert len(events) - before >= 10
    started = time.perf_counter()
    follower._update_importances()
    importances = (time.perf_counter() - started) * 1000
    return {"poll_idle_ms": round(statistics.median(idle), 2), "poll_idle_max_ms": round(max(idle), 2),
            "poll_10_new_ms": round(new, 2), "importances_ms": round(importances, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 trials a storage, a 1,000-trial history")
    parser.add_argument("--trials", type=int, help="trials per storage for (a) (default 100)")
    parser.add_argument("--history", type=int, help="finished trials for (b) (default 10,000)")
    parser.add_argument("--postgres", metavar="URL", help="admin URL of a PostgreSQL server (default: local)")
    args = parser.parse_args()
    n_trials = args.trials or (30 if args.quick else 100)
    history = args.history or (1000 if args.quick else 10_000)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite:///{folder}/study.db", "journal": f"journal:///{folder}/study.log"}
        postgres = postgres_database(args.postgres)
        if postgres:
            urls["postgresql"] = postgres[0]
        try:
            for kind, url in urls.items():
                seconds = per_trial_seconds(url, Path(folder) / kind, n_trials)
                print(f"{kind:10s} {seconds * 1000:7.1f} ms per trial through StudyRunner ({n_trials} trials)",
                      flush=True)
                costs = poll_costs(url, history)
                print(f"{kind:10s} watcher poll at {history} trials: {costs['poll_idle_ms']} ms with nothing new "
                      f"(max {costs['poll_idle_max_ms']}), {costs['poll_10_new_ms']} ms with 10 new; importances "
                      f"{costs['importances_ms']} ms", flush=True)
                results[kind] = {"ms_per_trial": round(seconds * 1000, 1), **costs}
        finally:
            if postgres:
                postgres[1]()
    if not postgres:
        print("postgresql: no server reachable; skipped", flush=True)
    print(json.dumps({"bench": "workers", "trials": n_trials, "history": history, "goal_poll_idle_ms": 20,
                      "cpu_count": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
