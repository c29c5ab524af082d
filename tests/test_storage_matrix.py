"""Every storage tunedeck offers, for real (SQLite, a journal file, Optuna's journal on Redis, PostgreSQL, MySQL): a
runner followed by a view, and a pool of worker processes one of which is killed with SIGKILL mid-trial. CI runs
all five servers-backed cases (conftest: a missing server fails there, not skips).

Training is the fake trainer's: what is tested is the storage and the sources on it."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from conftest import Recorder
from fakes import FakeTrainer, Running, fake_config, trials_of, wait_until
from optuna.trial import TrialState

from engine import StopReason, StudyRunner, StudyStarted, StudyWatcher, TrialFinished, WorkerPool
from engine.store import schema

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))


def test_a_runner_and_a_view_on_every_storage(storage_url, tmp_path):
    config = fake_config(tmp_path, storage_url, n_trials=4, epochs=2)
    training = Recorder()
    running = Running(StudyRunner(config, emit=training, trainer=FakeTrainer(epoch_seconds=0.05), poll_seconds=0.2))
    wait_until(lambda: training.of(StudyStarted), 60)
    view = Recorder()
    finished = StudyWatcher(storage_url, "shared", view, poll_seconds=0.2).run()
    running.join(60)
    assert (finished.reason, finished.ok, finished.n_complete) == (StopReason.FINISHED, True, 4)
    assert sorted(t.number for t in view.of(TrialFinished)) == [0, 1, 2, 3]
    assert [t.value for t in sorted(view.of(TrialFinished), key=lambda t: t.number)] == \
        [t.value for t in sorted(training.of(TrialFinished), key=lambda t: t.number)]
    assert {t.state for t in trials_of(storage_url)} == {TrialState.COMPLETE}


def test_a_pool_rides_out_a_worker_killed_mid_trial_on_every_storage(storage_url, tmp_path):
    """kill -9 of one of two workers: its trial becomes FAIL with why (heartbeat or lease) and is retried by the
    survivor, the study ends with exactly n_trials finished and nothing RUNNING, the survivor exits 0 and the pool
    says which worker was killed."""
    config = fake_config(tmp_path, storage_url, n_trials=4, epochs=40)  # 2 s a trial: killed mid-trial
    recorder = Recorder()
    pool = WorkerPool(config, recorder, n_workers=2, poll_seconds=0.2, command=FAKE_WORKER)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(finished=pool.run()))
    thread.start()
    wait_until(lambda: len(pool.processes) == 2, 30)
    victim = pool.processes[0]

    def victim_trial():
        return next((t for t in trials_of(storage_url) if t.state == TrialState.RUNNING and t.intermediate_values
                     and t.user_attrs.get(schema.WORKER, {}).get("pid") == victim.pid), None)

    wait_until(lambda: victim_trial() is not None, 60)
    killed = victim_trial()
    os.kill(victim.pid, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive()
    finished = result["finished"]
    assert finished.reason == StopReason.WORKER_CRASHED and "worker 0 was killed by SIGKILL" in finished.detail
    assert [process.returncode for process in pool.processes] == [-signal.SIGKILL, 0]
    trials = trials_of(storage_url)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = trials[killed.number]
    assert dead.state == TrialState.FAIL and schema.trial_error(dead)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
