"""`tunedeck fork` (a study copied under a new name, resumed another way, the original untouched) and
`tunedeck status` (state, counts, best and live workers as JSON for scripts)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import optuna
import pytest
from fakes import FakeTrainer, Running, fake_config, wait_until

from engine import StopRequest, StudyRunner
from engine.store import (
    RUNNING_WHEN_FORKED,
    close_storage,
    open_storage,
    reading_study,
    schema,
    storage_status,
    write_stop_request,
)
from tui.cli import main


def make_study(tmp_path, url, name, n_trials, **changes):
    config = fake_config(tmp_path, url, n_trials, **changes)
    config.study_name = name
    result = StudyRunner(config, trainer=FakeTrainer(), poll_seconds=0.1).run()
    assert result.ok
    return config


def dump(url, name) -> str:
    """Everything stored about a study, as text: equal dumps are equal studies."""
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = [{"number": t.number, "state": t.state.name, "params": t.params, "values": t.values,
                   "distributions": {k: repr(v) for k, v in t.distributions.items()},
                   "intermediate": t.intermediate_values, "user_attrs": t.user_attrs, "system_attrs": t.system_attrs,
                   "start": t.datetime_start, "complete": t.datetime_complete}
                  for t in study.get_trials(deepcopy=False)]
        data = {"directions": [d.name for d in study.directions], "user_attrs": study.user_attrs,
                "system_attrs": storage.get_study_system_attrs(study._study_id), "trials": trials}
        return json.dumps(data, sort_keys=True, default=str)
    finally:
        close_storage(storage)


def status_of(url, name, **kwargs) -> dict:
    (status,) = storage_status(url, name, **kwargs)
    return status


def later() -> float:
    """A moment well past every grace period of these studies (heartbeat 1 s)."""
    return time.time() + 120


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=120)


def test_fork_then_resume_with_another_sampler_leaves_the_original_unchanged(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/study.db"
    make_study(tmp_path, url, "orig", 2)
    with reading_study(url, "orig") as study:  # the original: a raised target, stopped, and a trial still running
        study.set_user_attr(schema.N_TRIALS, 4)
        running = study.ask()
        study._storage.set_trial_user_attr(running._trial_id, schema.WORKER, {"id": "elsewhere:1/cpu", "pid": 1,
                                                                              "host": "elsewhere", "device": "cpu"})
        write_stop_request(study, StopRequest(by="a test"))
    before = dump(url, "orig")
    assert status_of(url, "orig", now=later())["state"] == "stopped"

    assert main(["fork", "orig", "fork", "--storage", url]) == 0
    out = capsys.readouterr()
    assert "forked study 'orig' (3 trials; 1 running there copied as FAIL (trials 2)) into 'fork'" in out.out
    assert out.err == ""  # not Optuna's "A new study created"
    assert dump(url, "orig") == before

    with reading_study(url, "fork") as fork:
        attrs, trials = fork.user_attrs, fork.get_trials(deepcopy=False)
    with reading_study(url, "orig") as study:
        originals = study.get_trials(deepcopy=False)
    assert [(t.number, t.params, t.value) for t in trials[:2]] == [(t.number, t.params, t.value) for t in originals[:2]]
    assert trials[2].state.name == "FAIL" and trials[2].user_attrs[schema.ERROR] == RUNNING_WHEN_FORKED
    assert attrs[schema.CONFIG]["study_name"] == "fork" and attrs[schema.N_TRIALS] == 4
    assert attrs[schema.STOP_REQUEST] is None  # the original's stop request is not the fork's
    record = attrs[schema.FORKED_FROM]
    assert {k: record[k] for k in ("study", "storage", "trials", "running")} == \
        {"study": "orig", "storage": url, "trials": 3, "running": [2]}
    status = status_of(url, "fork")  # at once: the copied trials ended in the original, not on a worker of the fork
    assert status["state"] == "idle" and status["stop_request"] is None and status["forked_from"] == record
    assert not status["stop_requested"] and status["counts"]["failed"] == 1

    config = fake_config(tmp_path, url, 5, sampler="random")  # another sampler, a larger budget
    config.study_name = "fork"
    result = StudyRunner(config, trainer=FakeTrainer(), poll_seconds=0.1).run()
    assert result.ok and result.n_complete == 5
    with reading_study(url, "fork") as fork:
        assert sum(schema.counted(t) for t in fork.get_trials(deepcopy=False)) == 5
        assert len(fork.get_trials(deepcopy=False)) == 6
        assert fork.user_attrs[schema.CONFIG]["sampler"] == "random"
    assert dump(url, "orig") == before  # byte for byte: trials, attributes, counts
    assert status_of(url, "fork")["state"] == "finished"


def test_fork_into_a_journal_in_another_storage_resumes_there(tmp_path, capsys):
    url, journal = f"sqlite:///{tmp_path}/study.db", f"journal:///{tmp_path}/fork.log"
    make_study(tmp_path, url, "orig", 2)
    before = dump(url, "orig")
    assert main(["fork", "orig", "orig", "--storage", url, "--to", journal]) == 0  # the same name elsewhere is fine
    capsys.readouterr()
    status = status_of(journal, "orig")
    assert status["counts"]["complete"] == 2 and status["state"] == "finished"
    assert status["forked_from"]["storage"] == url and status["storage"] == journal
    config = fake_config(tmp_path, journal, 3)
    config.study_name = "orig"
    assert StudyRunner(config, trainer=FakeTrainer(), poll_seconds=0.1).run().n_complete == 3
    assert dump(url, "orig") == before
    assert status_of(url, "orig")["counts"]["complete"] == 2


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    """A storage with studies orig and taken, made once: each test works on its own copy of the file."""
    folder = tmp_path_factory.mktemp("two")
    make_study(folder, f"sqlite:///{folder}/study.db", "orig", 1)
    make_study(folder, f"sqlite:///{folder}/study.db", "taken", 1)
    return folder / "study.db"


@pytest.mark.parametrize("args, message", [
    (["nope", "new", "--to", "OTHER"], "study-name: no study 'nope' in sqlite:///"),
    (["orig", "orig"], "study-name: study 'orig' in sqlite:///"),
    (["orig", "taken"], "already exists; fork into another name"),
    (["orig", "a/b"], "study_name: 'a/b' is not a name"),
    (["orig", "new", "--to", "nowhere"], "storage: 'nowhere' is not a storage URL"),
    (["orig", ""], "fork: OLD and NEW must be study names"),
])
def test_fork_errors_exit_2_on_one_line_and_change_nothing(args, message, two_studies, tmp_path, capsys):
    shutil.copy(two_studies, tmp_path / "study.db")
    url, other = f"sqlite:///{tmp_path}/study.db", tmp_path / "other.db"
    before = [dump(url, "orig"), dump(url, "taken")]
    code = main(["fork", *[f"sqlite:///{other}" if arg == "OTHER" else arg for arg in args], "--storage", url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not other.exists()  # a missing original creates no storage file
    assert [dump(url, "orig"), dump(url, "taken")] == before
    assert [s["name"] for s in storage_status(url)] == ["orig", "taken"]


def test_fork_of_a_missing_storage_exits_2(tmp_path, capsys):
    assert main(["fork", "a", "b", "--storage", f"sqlite:///{tmp_path}/missing.db"]) == 2
    assert "storage: no sqlite file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_status_json_is_read_by_json_tool_and_its_fields_are_right(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/study.db"
    make_study(tmp_path, url, "done", 3)
    make_study(tmp_path, url, "other", 1)
    result = cli("status", "--storage", url, "--study-name", "done", "--json")
    assert result.returncode == 0, result.stderr
    assert subprocess.run([sys.executable, "-m", "json.tool"], input=result.stdout, capture_output=True,
                          text=True, timeout=60).returncode == 0
    status = json.loads(result.stdout)
    with reading_study(url, "done") as study:
        best = study.best_trial
    assert status["name"] == "done" and status["state"] == "finished" and status["n_trials"] == 3
    assert status["counts"] == {"complete": 3, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "prior": 0,
                                "counted": 3}
    assert status["best"]["value"] == best.value and status["best"]["number"] == best.number
    assert status["best"]["params"] == best.params
    assert status["best"]["test_accuracy"] == best.user_attrs[schema.TEST_ACCURACY]
    assert status["direction"] == "maximize" and status["objective"] == "val_accuracy"
    assert status["workers"] == [] and status["stop_request"] is None and status["forked_from"] is None
    assert status["started"].endswith("+00:00") and status["last_activity"] >= status["started"]

    every = cli("status", "--storage", url, "--json")  # every study of the storage: JSON Lines
    assert every.returncode == 0
    assert subprocess.run([sys.executable, "-m", "json.tool", "--json-lines"], input=every.stdout,
                          capture_output=True, text=True, timeout=60).returncode == 0
    assert [json.loads(line)["name"] for line in every.stdout.splitlines()] == ["done", "other"]

    capsys.readouterr()
    assert main(["status", "--storage", url]) == 0  # a table, one line per study
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("STUDY") and lines[1].split()[:3] == ["done", "finished", "3/3"]

    assert main(["status", "--storage", url, "--study-name", "nope", "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1 and "no study 'nope'" in out.err


def test_status_shows_a_running_trial_with_its_live_worker(storage_url, tmp_path):
    """Every kind of storage: Optuna's heartbeat on RDB ones, the trial's lease on journals (a file, Redis)."""
    url = storage_url
    config = fake_config(tmp_path, url, 2)
    runner = StudyRunner(config, trainer=FakeTrainer(epoch_seconds=30), poll_seconds=0.1)
    running = Running(runner)
    try:
        def heartbeat_seen() -> bool:
            try:
                workers = status_of(url, "shared")["workers"]
            except Exception:  # noqa: BLE001 - not created yet
                return False
            return bool(workers) and workers[0]["last_heartbeat"] is not None
        wait_until(heartbeat_seen, 30)
        status = status_of(url, "shared")
        assert status["state"] == "running" and status["counts"]["running"] == 1
        (worker,) = status["workers"]
        assert worker["pid"] == os.getpid() and worker["host"] == platform.node() and worker["trial"] == 0
        assert worker["device"] == "cpu" and worker["id"] == f"{platform.node()}:{os.getpid()}/cpu"
        assert status["stale_trials"] == []
        beat = datetime.datetime.fromisoformat(worker["last_heartbeat"]).timestamp()
        assert abs(time.time() - beat) < 10  # on the database's clock, as Optuna judges it
        assert json.loads(json.dumps(status, allow_nan=False)) == status
    finally:
        runner.close()  # this process only: no stop request is written
        running.join()
    status = status_of(url, "shared", now=later())
    assert status["state"] == "idle" and status["workers"] == [] and status["stop_request"] is None
    assert status["counts"]["failed"] == 1

    with reading_study(url, "shared") as study:
        study.enqueue_trial({"learning_rate": 0.01})
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        trial = study.ask()  # takes the queued trial; its "worker" is a process of this host that has ended
        study._storage.set_trial_user_attr(trial._trial_id, schema.WORKER, {
            "id": f"{platform.node()}:{dead.pid}/cpu", "host": platform.node(), "pid": dead.pid, "device": "cpu"})
        study.enqueue_trial({"learning_rate": 0.02})
    status = status_of(url, "shared")
    assert status["stale_trials"] == [trial.number] and status["workers"] == []
    assert status_of(url, "shared", now=later())["state"] == "waiting"
