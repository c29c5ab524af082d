"""A database that goes away: a worker and a view ride out an outage (every connection dropped, new ones refused,
through tests/tcp_proxy.py), every connection terminated by the server, and a storage that stays away past
storage_retry. Training is the fake trainer's: what is tested is the storage calls."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from conftest import Recorder
from fakes import FakeTrainer, Running, fake_config, trials_of, wait_until
from optuna.trial import TrialState
from tcp_proxy import TcpProxy

from engine import StopReason, StorageOutage, StudyRunner, StudyWatcher, TrialFinished
from engine.store import schema, transient
from engine.study import save_config

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))


def through(proxy: TcpProxy, url: str) -> str:
    """The URL with its server's port replaced by the proxy's."""
    address = url.split("@", 1)[1].split("/", 1)[0]
    return url.replace(f"@{address}/", f"@127.0.0.1:{proxy.port}/")


def server_port(url: str) -> int:
    return int(url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def states(trials) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


class CutAfterFirstTrial:
    """Cuts the proxy when the first trial is finished, for `seconds`, once."""

    def __init__(self, proxy: TcpProxy, recorder: Recorder, seconds: float) -> None:
        self.proxy, self.recorder, self.seconds = proxy, recorder, seconds
        self.restored = threading.Event()

    def __call__(self, event) -> None:
        self.recorder(event)
        if isinstance(event, TrialFinished) and not self.restored.is_set() and not hasattr(self, "timer"):
            self.proxy.cut()
            self.timer = threading.Timer(self.seconds, self._restore)
            self.timer.start()

    def _restore(self) -> None:
        self.proxy.restore()
        self.restored.set()


@pytest.fixture(params=["postgres", "mysql"])
def database_url(request):
    return request.getfixturevalue(f"{request.param}_url")


def test_a_worker_rides_out_a_database_outage(database_url, tmp_path):
    """Every connection dropped and new ones refused for 4 s after the first trial: the study ends exact, no trial
    FAIL, nothing RUNNING; the outage is told as it lasts and when it ends. Before: StorageInternalError, exit 1."""
    proxy = TcpProxy(server_port(database_url))
    config = fake_config(tmp_path, through(proxy, database_url), n_trials=4, epochs=3)
    recorder = Recorder()
    cutter = CutAfterFirstTrial(proxy, recorder, seconds=4)
    finished = StudyRunner(config, emit=cutter, trainer=FakeTrainer(epoch_seconds=0.1), poll_seconds=0.2).run()
    assert cutter.restored.is_set()
    assert (finished.reason, finished.ok, finished.n_complete, finished.n_failed) == (StopReason.FINISHED, True, 4, 0)
    assert states(trials_of(database_url)) == {"COMPLETE": 4}
    outages = recorder.of(StorageOutage)
    assert outages and not outages[0].over and outages[-1].over and outages[-1].seconds >= 3
    assert "storage unreachable, retrying (" in outages[0].text
    assert "answers again after" in (tmp_path / "runs" / "shared" / "tunedeck.log").read_text()
    proxy.close()


def test_a_view_rides_out_a_database_outage(postgres_url, tmp_path):
    """The view's storage goes away for 3 s while the workers (direct) go on: it tells the outage, then shows
    each trial once and the study's end."""
    proxy = TcpProxy(server_port(postgres_url))
    config = fake_config(tmp_path, postgres_url, n_trials=6, epochs=3)
    training = Recorder()
    running = Running(StudyRunner(config, emit=training, trainer=FakeTrainer(epoch_seconds=0.1), poll_seconds=0.2))
    wait_until(lambda: training.of(TrialFinished), 60)
    view = Recorder()
    cutter = CutAfterFirstTrial(proxy, view, seconds=3)
    finished = StudyWatcher(through(proxy, postgres_url), "shared", cutter, poll_seconds=0.2).run()
    running.join(60)
    assert (finished.reason, finished.ok, finished.n_complete) == (StopReason.FINISHED, True, 6)
    assert sorted(t.number for t in view.of(TrialFinished)) == list(range(6))  # each trial once
    outages = view.of(StorageOutage)
    assert outages and outages[-1].over
    proxy.close()


def test_every_connection_terminated_by_the_server_is_ridden_out(postgres_url, tmp_path):
    """pg_terminate_backend on every connection of the study's database, twice, while trials run."""
    config = fake_config(tmp_path, postgres_url, n_trials=6, epochs=4)
    recorder = Recorder()
    running = Running(StudyRunner(config, emit=recorder, trainer=FakeTrainer(epoch_seconds=0.1), poll_seconds=0.2))
    admin = sqlalchemy.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    database = postgres_url.rsplit("/", 1)[1]
    for finished_trials in (1, 3):
        wait_until(lambda n=finished_trials: len(recorder.of(TrialFinished)) >= n, 60)
        with admin.connect() as connection:
            ended = connection.execute(sqlalchemy.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :db"), {"db": database})
            assert ended.scalar() >= 1
    running.join(60)
    admin.dispose()
    assert states(trials_of(postgres_url)) == {"COMPLETE": 6}


def test_a_storage_gone_past_storage_retry_stops_the_worker_with_one_line(postgres_url, tmp_path):
    """The proxy cut for good: the worker gives up after storage_retry seconds, exit status 1, one line saying so;
    its trial is reaped once the storage is back (here: by a view)."""
    proxy = TcpProxy(server_port(postgres_url))
    config = fake_config(tmp_path, "", n_trials=4, epochs=40, storage_retry=2)
    path = tmp_path / "worker.toml"
    save_config(config, path)
    url = through(proxy, postgres_url)
    worker = subprocess.Popen([*FAKE_WORKER, str(path)], env={"TUNEDECK_STORAGE": url, "PATH": "/usr/bin:/bin"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # in training (so its heartbeat is recorded: Optuna never reaps a trial that has none)
    wait_until(lambda: any(t.state == TrialState.RUNNING and t.intermediate_values
                           for t in trials_of(postgres_url)), 60)
    proxy.cut()
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("tunedeck worker: storage: postgresql://") and "unreachable for " in last
    assert "Traceback" not in err
    running = [t for t in trials_of(postgres_url) if t.state == TrialState.RUNNING]
    assert len(running) == 1  # it could not say so: the storage was gone
    view = StudyWatcher(postgres_url, "shared", Recorder(), poll_seconds=0.2)
    thread = threading.Thread(target=view.run)
    thread.start()
    try:
        wait_until(lambda: trials_of(postgres_url)[running[0].number].state == TrialState.FAIL, 30)
    finally:
        view.close()
        thread.join(30)
    proxy.close()


def test_a_worker_that_gives_up_marks_its_trial_when_the_storage_takes_one_more_write(tmp_path):
    """Past storage_retry with the storage answering again just then: the trial is FAIL "storage unreachable"."""
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/study.db", n_trials=3, epochs=2, storage_retry=1)
    recorder = Recorder()

    class GivesUp(FakeTrainer):
        def train(self, trial, params, emit, stop_now):
            from engine.store import StorageUnreachable
            raise StorageUnreachable("storage: sqlite:///study.db unreachable for 1 s: disk I/O error")

    finished = StudyRunner(config, emit=recorder, trainer=GivesUp(), poll_seconds=0.2).run()
    assert (finished.reason, finished.ok) == (StopReason.STORAGE_UNREACHABLE, False)
    (trial,) = trials_of(config.storage_url)
    assert trial.state == TrialState.FAIL and trial.user_attrs[schema.ERROR] == "storage unreachable for 1 s"


class RpcError(Exception):  # grpc.RpcError as a proxy's client raises it: a status code
    def __init__(self, code: str) -> None:
        self._code = code

    def code(self):
        return type("StatusCode", (), {"name": self._code})()


@pytest.mark.parametrize("error, retried", [
    (RpcError("UNAVAILABLE"), True),  # a `tunedeck proxy` restarting
    (RpcError("INVALID_ARGUMENT"), False),
    (sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")), True),
    (sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked")), True),
    (ConnectionRefusedError(111, "Connection refused"), True),
    (socket.gaierror(-2, "Name or service not known"), False),  # a typo in the host: said at once, not retried
    (sqlalchemy.exc.OperationalError("connect", {}, Exception('could not translate host name "pg" to address')), False),
    (sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key value")), False),
    (KeyError("no study"), False),
    (sqlalchemy.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back"), True),
    (ValueError("bad value"), False),
])
def test_which_errors_are_retried(error, retried):
    assert transient(error) == retried
    wrapped = optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
    wrapped.__cause__ = error
    assert transient(wrapped) == retried


class AnswerLost:
    """An Optuna storage whose next `method` call goes through and then fails as a dropped connection does: the
    write landed, its answer was lost."""

    def __init__(self, inner, method: str) -> None:
        self.inner, self.method, self.armed = inner, method, True

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.method or not self.armed:
            return attr

        def landed_then_lost(*args):
            attr(*args)
            self.armed = False
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return landed_then_lost


@pytest.mark.parametrize("method", ["create_new_trial", "set_trial_state_values", "set_trial_param"])
def test_a_retry_after_a_lost_answer_does_not_repeat_the_write(tmp_path, method):
    """A trial is never created twice, told twice or given a parameter twice when the answer to the first
    attempt was lost (the retry finds what landed)."""
    from engine.store.retrying import Outage, RetryingStorage

    inner = optuna.storages.get_storage(optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db"))
    storage = RetryingStorage(AnswerLost(inner, method), Outage(f"sqlite:///{tmp_path}/s.db", limit=10))
    study = optuna.create_study(storage=storage, study_name="lost")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    trials = optuna.load_study(study_name="lost", storage=inner).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert all(set(t.params) == {"x"} for t in trials)
