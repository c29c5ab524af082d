"""The source protocol, against each implementation: a stop from the UI thread, from a signal and from the
storage; close() ends only the view; a pool whose workers all finished ends ok, every time.

Training is the fake trainer's (tests/fakes.py): what is tested is how sources start, stop and end."""

from __future__ import annotations

import os
import platform
import signal
import sys
from pathlib import Path

import pytest
from conftest import Recorder
from fakes import FakeTrainer, Running, fake_config, wait_until

from engine import (
    Cause,
    EngineError,
    Scope,
    Source,
    StopReason,
    StopRequest,
    StudyFinished,
    StudyRunner,
    StudyWatcher,
    TrialFinished,
    TrialStarted,
    TrialStopped,
    WorkerPool,
)
from engine.keras import Retrainer
from engine.signals import SignalRelay
from engine.store import read_stop_request, reading_study, stop_study

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))


def runner_for(tmp_path, recorder: Recorder, n_trials: int = 20, epochs: int = 50) -> StudyRunner:
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=n_trials, epochs=epochs)
    return StudyRunner(config, emit=recorder, trainer=FakeTrainer(epoch_seconds=0.05), poll_seconds=0.2)


def stored_stop(url: str):
    with reading_study(url, "shared") as study:
        return read_stop_request(study.user_attrs)


def test_every_source_implements_the_protocol_and_says_what_it_can_do(tmp_path):
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=2)
    sources = {"runner": StudyRunner(config, trainer=FakeTrainer()), "watcher": StudyWatcher(config.storage_url, "x"),
               "pool": WorkerPool(config), "retrainer": Retrainer(config.storage_url, "x")}
    abilities = {name: (source.trains_here, source.owns_workers, source.can_retrain)
                 for name, source in sources.items()}
    assert all(isinstance(source, Source) for source in sources.values())
    assert abilities == {"runner": (True, False, True), "watcher": (False, False, True),
                         "pool": (False, True, True), "retrainer": (True, False, False)}


def test_a_runner_stopped_from_the_ui_thread_stops_here_only(tmp_path):
    recorder = Recorder()
    running = Running(runner_for(tmp_path, recorder))
    wait_until(lambda: recorder.of(TrialStarted), 30)
    running.source.stop(StopRequest(now=True, scope=Scope.PROCESS))
    finished = running.join()
    assert (finished.reason, finished.ok, finished.detail) == (StopReason.STOPPED, True, "stopped by user")
    assert [(t.state, t.stopped_by) for t in recorder.of(TrialFinished)] == [("FAIL", "user")]
    assert stored_stop(running.source.config.storage_url) is None  # this process only: nothing for others


def test_a_runner_stopped_by_a_signal_records_the_signal(tmp_path):
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    request = StopRequest(now=True, scope=Scope.PROCESS, cause=Cause.SIGNAL)
    with SignalRelay((signal.SIGUSR1,), lambda signum: runner.stop(request)):
        running = Running(runner)
        wait_until(lambda: recorder.of(TrialStarted), 30)
        os.kill(os.getpid(), signal.SIGUSR1)
        finished = running.join()
    assert (finished.reason, finished.detail) == (StopReason.STOPPED, "stopped by signal")
    trial = recorder.of(TrialFinished)[0]
    assert (trial.state, trial.stopped_by, trial.broken) == ("FAIL", "signal", False)
    assert trial.error.startswith("stopped by signal at epoch")


def test_a_runner_stopped_through_the_storage(tmp_path):
    recorder = Recorder()
    running = Running(runner_for(tmp_path, recorder))
    wait_until(lambda: recorder.of(TrialStarted), 30)
    assert stop_study(running.source.config.storage_url, "shared", now=False, by="tester") == 1
    finished = running.join()
    assert (finished.reason, finished.detail) == (StopReason.STOPPED, "stopped by tester")
    assert [t.state for t in recorder.of(TrialFinished)] == ["COMPLETE"]  # after its trial


def test_a_study_wide_stop_of_a_runner_reaches_the_storage(tmp_path):
    recorder = Recorder()
    running = Running(runner_for(tmp_path, recorder))
    wait_until(lambda: recorder.of(TrialStarted), 30)
    running.source.stop(StopRequest(now=True))
    assert running.join().reason == StopReason.STOPPED
    _, stored = stored_stop(running.source.config.storage_url)
    assert (stored.now, stored.cause, stored.by) == (True, Cause.USER, running.source.worker.id)


def test_a_watcher_stops_the_study_only_when_asked_for_the_study_and_close_leaves_it_running(tmp_path):
    recorder = Recorder()
    running = Running(runner_for(tmp_path, recorder))
    wait_until(lambda: recorder.of(TrialStarted), 30)
    url = running.source.config.storage_url
    view = Recorder()
    watcher = StudyWatcher(url, "shared", view, poll_seconds=0.1)
    watching = Running(watcher)
    wait_until(lambda: view.of(TrialStarted), 30)
    watcher.stop(StopRequest(now=True, scope=Scope.PROCESS))  # "this view only": a watcher trains nothing
    watcher.close()
    assert watching.join().reason == StopReason.CLOSED
    assert stored_stop(url) is None and running.thread.is_alive()  # the workers go on
    second = StudyWatcher(url, "shared", Recorder(), poll_seconds=0.1)
    watching = Running(second)
    second.stop(StopRequest(now=True))
    finished = watching.join()
    assert (finished.reason, finished.detail) == (StopReason.STOPPED, f"stopped by a view on {platform.node()}")
    assert running.join().reason == StopReason.STOPPED


def training_pool(tmp_path, recorder: Recorder) -> tuple[WorkerPool, Running]:
    """Two fake workers of a long study, both in a trial."""
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=20, epochs=100)
    pool = WorkerPool(config, recorder, n_workers=2, poll_seconds=0.2, command=FAKE_WORKER)
    running = Running(pool)
    wait_until(lambda: len(recorder.of(TrialStarted)) >= 2, 60)
    return pool, running


def test_a_pool_stopped_here_signals_its_workers_and_ends_ok(tmp_path):
    recorder = Recorder()
    pool, running = training_pool(tmp_path, recorder)
    pool.stop(StopRequest(now=True, scope=Scope.PROCESS))
    finished = running.join(90)
    assert (finished.reason, finished.ok) == (StopReason.STOPPED, True)
    assert recorder.of(StudyFinished) == [finished]  # what it shows is what it returns
    assert [process.returncode for process in pool.processes] == [0, 0]
    assert stored_stop(pool.config.storage_url) is None
    assert {t.stopped_by for t in recorder.of(TrialFinished) if t.state == "FAIL"} == {"signal"}


def test_a_pool_stopped_through_the_storage_ends_ok_and_its_workers_exit_0(tmp_path):
    recorder = Recorder()
    pool, running = training_pool(tmp_path, recorder)
    stop_study(pool.config.storage_url, "shared", now=True, by="tester")
    finished = running.join(90)
    assert (finished.reason, finished.ok, finished.detail) == (StopReason.STOPPED, True, "stopped by tester")
    assert [process.returncode for process in pool.processes] == [0, 0]
    assert {t.stopped_by for t in recorder.of(TrialFinished) if t.state == "FAIL"} == {"user"}


def test_a_retrainer_stopped_by_a_signal_writes_nothing(finished_study, tmp_path):
    config = finished_study[0]
    retrainer = Retrainer(config.storage_url, config.name, out_dir=str(tmp_path / "final"))
    with SignalRelay((signal.SIGUSR1,), lambda signum: retrainer.stop(StopRequest(now=True, cause=Cause.SIGNAL))):
        os.kill(os.getpid(), signal.SIGUSR1)
        wait_until(retrainer._stop.is_set, 10)
    with pytest.raises(TrialStopped, match="nothing was written"):
        retrainer.run()
    assert not (tmp_path / "final" / "final.keras").exists() and not (tmp_path / "final" / "final.md").exists()


@pytest.mark.parametrize("repeat", range(3))
def test_three_workers_that_finished_the_study_end_it_ok(postgres_url, tmp_path, repeat):
    """The pool's view decides after a final poll: workers that all exited having finished n_trials end the study
    ok (before, the view could see them gone before it counted their last trials, and said they had failed)."""
    config = fake_config(tmp_path, postgres_url, n_trials=9, epochs=2)
    recorder = Recorder()
    pool = WorkerPool(config, recorder, n_workers=3, poll_seconds=0.5, command=FAKE_WORKER)
    finished = Running(pool).join(120)
    assert (finished.reason, finished.ok, finished.n_complete) == (StopReason.FINISHED, True, 9)
    assert [process.returncode for process in pool.processes] == [0, 0, 0]


def test_a_crashed_worker_is_told_apart_from_failed_trials(tmp_path):
    """A worker that dies on an error of its own: the pool names it and its log, the study ends "worker crashed"
    (exit 3 from `tunedeck run`), and the trial says what failed it (not "stopped sending heartbeats")."""
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=4)
    recorder = Recorder()
    pool = WorkerPool(config, recorder, n_workers=1, poll_seconds=0.2, command=(*FAKE_WORKER, "crash"))
    finished = Running(pool).join(90)
    assert (finished.reason, finished.ok) == (StopReason.WORKER_CRASHED, False)
    assert "worker 0 crashed: RuntimeError: boom: a bug in the worker (traceback in" in finished.detail
    assert pool.processes[0].returncode == 3
    assert any("worker 0 crashed" in e.message for e in recorder.of(EngineError))
    trial = recorder.of(TrialFinished)[0]
    assert (trial.state, trial.error) == ("FAIL", "the worker failed: RuntimeError: boom: a bug in the worker")
    assert "RuntimeError: boom" in (tmp_path / "runs" / "shared" / "tunedeck.log").read_text()


def test_a_pool_whose_view_fails_leaves_its_workers_training(tmp_path, monkeypatch):
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=20, epochs=100)
    recorder = Recorder()
    pool = WorkerPool(config, recorder, n_workers=2, poll_seconds=0.2, command=FAKE_WORKER)

    def broken_view():
        wait_until(lambda: len(running_trials(config)) == 2, 60)
        raise RuntimeError("the view broke")

    monkeypatch.setattr(pool.watcher, "run", broken_view)
    with pytest.raises(RuntimeError, match="the view broke"):
        pool.run()
    assert all(process.poll() is None for process in pool.processes)  # still training
    assert "the workers go on" in recorder.of(EngineError)[-1].message
    stop_study(config.storage_url, "shared", now=True, by="tester")
    assert [process.wait(60) for process in pool.processes] == [0, 0]


def running_trials(config) -> list:
    from optuna.trial import TrialState

    try:
        with reading_study(config.storage_url, "shared") as study:
            return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # noqa: BLE001 - the workers have not created the study yet
        return []


def test_sigterm_to_the_pool_s_parent_stops_its_workers_and_keeps_the_study(tmp_path):
    """`tunedeck run --workers 2` sent SIGTERM: its workers stop at their next batch (trials FAIL "stopped by
    signal", not counted), both exit 0, the parent exits 143 with one line, and the study resumes."""
    import subprocess

    from engine.study import save_config

    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=20, epochs=100)
    save_config(config, tmp_path / "study.toml")
    parent = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_pool_run.py")), "run",
                               str(tmp_path / "study.toml"), "--workers", "2", "--no-plots"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: len(running_trials(config)) == 2, 90)
    parent.send_signal(signal.SIGTERM)
    _, err = parent.communicate(timeout=90)
    assert parent.returncode == 143, err
    assert err.strip().splitlines()[-1] in ("tunedeck: stopped by SIGTERM; the study is resumable with the same command",
                                            "tunedeck: stopped by SIGTERM before the study began")  # its view's pace
    with reading_study(config.storage_url, "shared") as study:
        trials = study.get_trials(deepcopy=False)
    assert not running_trials(config) and len(trials) == 2
    assert {t.user_attrs.get("stopped_by") for t in trials} == {"signal"}
    logs = [(tmp_path / "runs" / "shared" / f"worker-{i}.log").read_text() for i in (0, 1)]
    assert all(log.strip().splitlines()[-1].startswith("tunedeck worker: stopped") for log in logs)
