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
import multiprocessing
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import optuna  # noqa: E402
from fakes import FakeTrainer, fake_config, wait_until, worker_main  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from engine import StudyRunner  # noqa: E402
from engine.store import (  # noqa: E402
    StudyFollower,
    open_storage,
    schema,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parent.parent


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


def redis_prefix(base: str | None) -> tuple[str, Callable[[], None], Callable[[], int]] | None:
    """A study URL on the local Redis (or `base`) under a fresh key prefix, a function that deletes its keys, and
    one that counts the server's connected clients; None without a server."""
    try:
        import redis
    except ImportError:
        return None
    base = base or "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(base, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        return None
    prefix = f"tunedeck_bench_{uuid.uuid4().hex[:8]}"

    def delete() -> None:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()

    return f"{base}?prefix={prefix}", delete, lambda: int(client.info("clients")["connected_clients"])


def postgres_connections(url: str) -> Callable[[], int]:
    """A function that counts the server's connections to the database of `url` (from the postgres database)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True, connect_timeout=5)
    return lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]


class PeakSampler:
    """Samples `count()` every `step` seconds in a thread; `peak` is the highest value seen."""

    def __init__(self, count: Callable[[], int], step: float = 0.1) -> None:
        self.count, self.step, self.peak = count, step, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, self.count())
            except Exception as exc:  # the server refused one more client, say: the next sample tries again
                print(f"  (a connection sample failed: {exc})", flush=True)
            self._done.wait(self.step)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join(10)


class Proxy:
    """`tunedeck proxy` over `url` in a process of its own, on a free port, for as long as the `with` lasts."""

    def __init__(self, url: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"grpc://127.0.0.1:{self.port}"
        self._args = [sys.executable, "-m", "tui.cli", "proxy", "--storage", url, "--port", str(self.port)]

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return self.process.poll() is not None

    def __enter__(self) -> Proxy:
        self.process = subprocess.Popen(self._args, cwd=ROOT, stdout=subprocess.DEVNULL)
        wait_until(self._listening, 60)
        if self.process.poll() is not None:
            raise RuntimeError(f"tunedeck proxy exited {self.process.returncode}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def exactness(trials: list, n_trials: int, exits: list[int | None]) -> dict:
    """The study's states and whether it is exact: n_trials COMPLETE, none RUNNING, FAIL only "budget" stops (a
    trial that lost the race for the last slot, never trained), every worker exit 0."""
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    other_fails = sum(t.state == TrialState.FAIL and t.user_attrs.get(schema.STOPPED_BY) != "budget" for t in trials)
    exact = (states.get("COMPLETE", 0) == n_trials and not states.get("RUNNING") and not states.get("WAITING")
             and not states.get("PRUNED") and not other_fails and all(code == 0 for code in exits))
    return {"exact": exact, "states": states, "other_fails": other_fails,
            "worker_exits": sorted({str(code) for code in exits})}


def scale_run(url: str, read_url: str, folder: Path, n_workers: int, n_trials: int, epoch_seconds: float,
              connections: Callable[[], int], baseline: int = 0) -> dict:
    """n_workers processes (multiprocessing, spawned) on one study at `url`, released at one moment once all have
    imported; the study is read back from `read_url` (the database behind a proxy)."""
    config = fake_config(folder, url, n_trials=n_trials, epochs=2)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(n_workers + 1)  # this process too: the clock starts as the workers are released
    processes = [context.Process(target=worker_main, args=(config, epoch_seconds, barrier)) for _ in range(n_workers)]
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with PeakSampler(connections) as sampler:
        for process in processes:
            process.start()
        try:
            barrier.wait(600)
        except threading.BrokenBarrierError:
            for process in processes:
                process.kill()
            raise RuntimeError(f"the {n_workers} workers did not all start: exits "
                               f"{[process.exitcode for process in processes]}") from None
        released = time.perf_counter()
        for process in processes:
            process.join(600)
        ended = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers' CPU, start and imports included
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    exits = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():
            process.kill()
    storage = open_storage(read_url)
    trials = optuna.load_study(study_name=config.name, storage=storage).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    first = min(t.datetime_start for t in trials if t.datetime_start is not None) if trials else None
    span = (max(t.datetime_complete for t in complete) - first).total_seconds() if complete else float("nan")
    peak = sampler.peak - baseline
    return {"workers": n_workers, "trials": n_trials, "epoch_seconds": epoch_seconds,
            "trials_per_s": round(len(complete) / span, 2),
            "ideal_trials_per_s": round(n_workers / 2 / epoch_seconds, 1),
            "trial_span_s": round(span, 1),
            "run_s": round(ended - released, 1), "start_s": round(released - started, 1),
            "peak_connections": peak, "connections_per_worker": round(peak / n_workers, 2),
            "worker_cpu_s": round(cpu, 1), "cpu_count": os.cpu_count(), **exactness(trials, n_trials, exits)}


def scale(args: argparse.Namespace, n_workers: int, n_trials: int) -> dict[str, dict]:
    """(c) on each storage that is reachable, one after another."""
    results: dict[str, dict] = {}
    runs: list[tuple[str, Callable[[Path], dict]]] = []
    postgres = postgres_database(args.postgres)
    redis_study = redis_prefix(args.redis)
    try:
        if postgres:
            runs.append(("postgresql", lambda folder: scale_run(
                postgres[0], postgres[0], folder, n_workers, n_trials, args.epoch_seconds,
                postgres_connections(postgres[0]))))
        if redis_study:
            runs.append(("redis", lambda folder: scale_run(
                redis_study[0], redis_study[0], folder, n_workers, n_trials, args.epoch_seconds, redis_study[2],
                baseline=redis_study[2]())))
        proxied = postgres_database(args.postgres) if postgres else None
        if proxied:
            def through_proxy(folder: Path) -> dict:
                with Proxy(proxied[0]) as proxy:
                    return scale_run(proxy.url, proxied[0], folder, n_workers, n_trials, args.epoch_seconds,
                                     postgres_connections(proxied[0]))
            runs.append(("grpc-proxy", through_proxy))
        for kind, run in runs:
            with tempfile.TemporaryDirectory() as folder:
                figures = run(Path(folder))
            results[kind] = figures
            extra = f"; FAIL other than budget: {figures['other_fails']}" if figures["other_fails"] else ""
            print(f"{kind:10s} {n_workers} workers: {figures['trials_per_s']} trials/s (ideal "
                  f"{figures['ideal_trials_per_s']}; {n_trials} trials in "
                  f"{figures['trial_span_s']} s from the first start to the last end; run {figures['run_s']} s after "
                  f"{figures['start_s']} s of spawning and imports; the workers used {figures['worker_cpu_s']} CPU s "
                  f"on {figures['cpu_count']} cores)", flush=True)
            print(f"{kind:10s} {n_workers} workers: peak {figures['peak_connections']} connections "
                  f"({figures['connections_per_worker']} a worker)", flush=True)
            print(f"{kind:10s} {n_workers} workers: exact {figures['exact']}: {figures['states']}, worker exits "
                  f"{','.join(figures['worker_exits'])}{extra}", flush=True)
    finally:
        if postgres:
            postgres[1]()
        if redis_study:
            redis_study[1]()
        if postgres and proxied:
            proxied[1]()
    for kind, there in (("postgresql", postgres), ("redis", redis_study)):
        if not there:
            print(f"{kind}: no server reachable; scale run skipped", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 trials a storage, a 1,000-trial history")
    parser.add_argument("--trials", type=int, help="trials per storage for (a) (default 100)")
    parser.add_argument("--history", type=int, help="finished trials for (b) (default 10,000)")
    parser.add_argument("--postgres", metavar="URL", help="admin URL of a PostgreSQL server (default: local)")
    parser.add_argument("--redis", metavar="URL", help="a Redis database for (c) (default: redis://127.0.0.1:6379/0)")
    parser.add_argument("--workers-scale", type=int, metavar="N", help="worker processes for (c) (default 32; "
                        "4 with --quick; 0 skips it)")
    parser.add_argument("--scale-trials", type=int, metavar="N", help="trials for (c) (default 3 a worker)")
    parser.add_argument("--epoch-seconds", type=float, default=0.2, metavar="S",
                        help="each fake epoch's wait in (c); a trial has 2 (default 0.2)")
    parser.add_argument("--only-scale", action="store_true", help="run (c) only")
    args = parser.parse_args()
    n_trials = args.trials or (30 if args.quick else 100)
    history = args.history or (1000 if args.quick else 10_000)
    n_workers = args.workers_scale if args.workers_scale is not None else (4 if args.quick else 32)
    scale_trials = args.scale_trials or 3 * n_workers
    results: dict[str, dict[str, float]] = {}
    postgres = None
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite:///{folder}/study.db", "journal": f"journal:///{folder}/study.log"}
        postgres = postgres_database(args.postgres) if not args.only_scale else None
        if postgres:
            urls["postgresql"] = postgres[0]
        try:
            for kind, url in urls.items() if not args.only_scale else ():
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
    if not postgres and not args.only_scale:
        print("postgresql: no server reachable; skipped", flush=True)
    scaled = scale(args, n_workers, scale_trials) if n_workers > 0 else {}
    print(json.dumps({"bench": "workers", "trials": n_trials, "history": history, "goal_poll_idle_ms": 20,
                      "cpu_count": os.cpu_count(), "results": results, "scale": scaled}))


if __name__ == "__main__":
    main()
