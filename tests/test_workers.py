"""Several workers on one study, as separate processes: exact budget, distinct draws, dead workers, stop.

The workers here train with the fake trainer (tests/fakes.py): what is tested is the runner and the storage.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import signal
import threading
import time

import optuna
import pytest
from conftest import Recorder
from fakes import FakeTrainer, fake_config, join, start_workers, wait_until
from optuna.trial import TrialState

from engine import StopRequest, StudyConfig, StudyRunner, StudyWatcher, TrialFinished, TrialStarted
from engine.store import open_storage, process_start, schema
from tui.cli import main

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def stored_trials(config: StudyConfig) -> list:
    return optuna.load_study(study_name=config.name, storage=open_storage(config.storage_url)).get_trials(deepcopy=False)


def only_budget_failures(trials) -> bool:
    """Two workers that take the last slot at the same moment: the later trial is FAIL "not run", untrained."""
    return all(t.user_attrs.get(schema.STOPPED_BY) == "budget" for t in trials if t.state == TrialState.FAIL)


def states(trials) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def test_three_workers_on_an_empty_postgres_database(postgres_url, tmp_path):
    config = fake_config(tmp_path, postgres_url, n_trials=9)
    assert join(start_workers(config, 3, epoch_seconds=0.1)) == [0, 0, 0]  # nobody lost the schema race
    trials = stored_trials(config)
    assert sum(t.state in FINISHED for t in trials) == 9
    assert "RUNNING" not in states(trials)
    drawn = [tuple(sorted(t.params.items())) for t in trials if t.state in FINISHED]
    assert len(set(drawn)) == len(drawn)  # each worker's sampler has its own seed
    workers = {t.user_attrs[schema.WORKER]["id"] for t in trials}
    assert len(workers) >= 2 and all(w.startswith(f"{platform.node()}:") and w.endswith("/cpu") for w in workers)
    attrs = optuna.load_study(study_name=config.name, storage=postgres_url).user_attrs
    assert sum(key.startswith(schema.WORKER_ENV_PREFIX) for key in attrs) == 3
    assert attrs[schema.N_TRIALS] == 9 and attrs[schema.CONFIG]["model"] == "mlp"


def test_a_killed_worker_s_trial_fails_and_is_retried(postgres_url, tmp_path):
    config = fake_config(tmp_path, postgres_url, n_trials=4, epochs=6)
    victim, survivor = start_workers(config, 2, epoch_seconds=0.4)

    def victim_trial():
        try:
            trials = stored_trials(config)
        except KeyError:
            return None
        return next((t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values
                     and t.user_attrs.get(schema.WORKER, {}).get("pid") == victim.pid), None)

    wait_until(lambda: victim_trial() is not None, 60)
    killed = victim_trial()
    os.kill(victim.pid, signal.SIGKILL)
    assert join([survivor]) == [0]
    trials = stored_trials(config)
    assert sum(t.state in FINISHED for t in trials) == 4 and "RUNNING" not in states(trials)
    dead = trials[killed.number]
    assert dead.state == TrialState.FAIL and schema.trial_error(dead) == schema.NO_HEARTBEAT
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs[schema.WORKER]["pid"] == survivor.pid


def test_two_workers_on_one_sqlite_file(tmp_path):
    config = fake_config(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", n_trials=8)
    assert join(start_workers(config, 2, epoch_seconds=0.05)) == [0, 0]
    trials = stored_trials(config)
    assert states(trials).get("COMPLETE") == 8 and only_budget_failures(trials)  # none failed, lost or over


def test_two_workers_on_a_journal_file(tmp_path):
    config = fake_config(tmp_path, f"journal:///{tmp_path / 'study.log'}", n_trials=6)
    assert join(start_workers(config, 2, epoch_seconds=0.05)) == [0, 0]
    trials = optuna.load_study(study_name=config.name, storage=open_storage(config.storage_url)).trials
    assert states(trials).get("COMPLETE") == 6 and only_budget_failures(trials)
    assert len({t.user_attrs[schema.WORKER]["id"] for t in trials}) == 2


def _leave_a_running_trial(url: str, name: str) -> None:
    """A worker that dies mid-trial on a journal storage (which has no heartbeat)."""
    study = optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    trial = study.ask()
    trial.suggest_int("layer_num", 2, 4)
    me = {"id": f"{platform.node()}:{os.getpid()}/cpu", "host": platform.node(), "pid": os.getpid(),
          "device": "cpu", "started": process_start(os.getpid())}
    trial.set_user_attr(schema.WORKER, me)
    os._exit(0)


def test_journal_fails_a_dead_local_worker_s_trial_on_start(tmp_path):
    config = fake_config(tmp_path, f"journal:///{tmp_path / 'study.log'}", n_trials=2)
    process = multiprocessing.get_context("spawn").Process(target=_leave_a_running_trial,
                                                           args=(config.storage_url, config.name))
    process.start()
    process.join(60)
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder, trainer=FakeTrainer(), poll_seconds=0.1).run()
    assert (result.n_complete, result.n_failed) == (2, 1)
    trials = optuna.load_study(study_name=config.name, storage=open_storage(config.storage_url)).trials
    assert trials[0].state == TrialState.FAIL and "died while the trial ran" in schema.trial_error(trials[0])
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == TrialState.COMPLETE and retry.params["layer_num"] == trials[0].params["layer_num"]


def test_a_worker_waits_for_others_trials_and_takes_a_freed_slot(tmp_path):
    config = fake_config(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", n_trials=2)
    StudyRunner(fake_config(tmp_path, config.storage, n_trials=1), trainer=FakeTrainer()).run()
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    other = study.ask()  # another worker's trial, alive: 1 finished + 1 running fill the budget of 2
    recorder = Recorder()
    runner = StudyRunner(config, emit=recorder, trainer=FakeTrainer(), poll_seconds=0.1)
    thread = threading.Thread(target=runner.run)
    thread.start()
    log = tmp_path / "runs" / "shared" / "tunedeck.log"
    wait_until(lambda: log.is_file() and "fill the budget" in log.read_text(), 30)  # it waits, and says so
    assert thread.is_alive() and not [e for e in recorder.of(TrialStarted) if e.number != other.number]
    study.tell(other, state=TrialState.FAIL)  # it failed: its slot is free again
    thread.join(60)
    assert not thread.is_alive()
    assert [e.number for e in recorder.of(TrialStarted)] == [other.number, other.number + 1]
    assert states(stored_trials(config)) == {"COMPLETE": 2, "FAIL": 1}


def test_a_trial_that_lost_the_race_for_the_last_slot_is_not_run(tmp_path, monkeypatch):
    config = fake_config(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", n_trials=1)
    StudyRunner(fake_config(tmp_path, config.storage, n_trials=1), trainer=FakeTrainer()).run()
    config.n_trials = 2
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    study.ask()  # another worker took the last slot a moment ago
    answers = iter([True, False])  # this worker's own check passed just before

    def wait_for_slot(self, study, started):
        return next(answers)

    monkeypatch.setattr(StudyRunner, "_wait_for_slot", wait_for_slot)
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder, trainer=FakeTrainer()).run()
    lost = recorder.of(TrialFinished)[-1]
    assert lost.number == 2 and lost.state == "FAIL" and lost.error.startswith("not run: other workers")
    assert stored_trials(config)[2].user_attrs[schema.STOPPED_BY] == "budget"
    assert result.ok  # not counted as a failure


def test_stop_ends_every_worker(postgres_url, tmp_path, capsys):
    config = fake_config(tmp_path, postgres_url, n_trials=10, epochs=200)
    processes = start_workers(config, 2, epoch_seconds=0.1)

    def running() -> int:
        try:
            return states(stored_trials(config)).get("RUNNING", 0)
        except KeyError:
            return 0

    wait_until(lambda: running() == 2, 60)
    asked = time.monotonic()
    assert main(["stop", "--now", "--storage", postgres_url, "--study-name", config.name]) == 0
    assert "asked every worker of study 'shared' to stop at their next batch (2 trials running)" in capsys.readouterr().out
    assert join(processes, 30) == [0, 0]
    assert time.monotonic() - asked < 15  # each saw the request within its poll interval
    trials = stored_trials(config)
    assert states(trials) == {"FAIL": 2}
    assert all(t.user_attrs[schema.STOPPED_BY] == "user" and "stopped by user at epoch" in t.user_attrs[schema.ERROR]
               for t in trials)


@pytest.mark.parametrize("url", ["sqlite:///study.db", "journal:///study.log"])
def test_stop_of_a_missing_study_names_what_is_there(tmp_path, monkeypatch, capsys, url):
    monkeypatch.chdir(tmp_path)
    StudyRunner(fake_config(tmp_path, url, n_trials=1), trainer=FakeTrainer()).run()
    assert main(["stop", "--storage", url, "--study-name", "other"]) == 2
    error = capsys.readouterr().err
    assert "study-name: no study 'other' in" in error and error.strip().endswith("studies there: shared")


def test_stopping_a_runner_asks_every_worker_of_the_study(tmp_path):
    """The app's `s`/`S` on a study trained in the app: the request goes into the storage for the others."""
    config = fake_config(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", n_trials=3, epochs=100)
    recorder = Recorder()
    runner = StudyRunner(config, emit=recorder, trainer=FakeTrainer(0.05), poll_seconds=0.2)
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_until(lambda: recorder.of(TrialStarted), 30)
    runner.stop(StopRequest(now=True))
    thread.join(30)
    request = optuna.load_study(study_name=config.name, storage=config.storage_url).user_attrs[schema.STOP_REQUEST]
    assert request["now"] is True and request["by"] == runner.worker.id
    assert recorder.of(TrialFinished)[0].error.startswith("stopped by user at epoch")


def _running_trial_of(config, pid):
    try:
        trials = stored_trials(config)
    except KeyError:
        return None
    return next((t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values
                 and t.user_attrs.get(schema.WORKER, {}).get("pid") == pid), None)


def test_a_killed_journal_worker_s_trial_is_reaped_by_its_lease(tmp_path):
    """A journal has no heartbeat: the survivor, waiting for the dead worker's trial to free the budget, reaps it
    when its lease expires (2 x heartbeat), and the retried parameters run. Before, it waited forever."""
    config = fake_config(tmp_path, f"journal:///{tmp_path / 'study.log'}", n_trials=4, epochs=6)
    victim, survivor = start_workers(config, 2, epoch_seconds=0.4)
    wait_until(lambda: _running_trial_of(config, victim.pid) is not None, 60)
    killed = _running_trial_of(config, victim.pid)
    os.kill(victim.pid, signal.SIGKILL)
    assert join([survivor], 120) == [0]
    trials = stored_trials(config)
    assert sum(t.state in FINISHED for t in trials) == 4 and "RUNNING" not in states(trials)
    dead = trials[killed.number]
    assert dead.state == TrialState.FAIL and "stopped renewing the trial's lease" in schema.trial_error(dead)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_a_view_reaps_the_trial_of_a_worker_that_died_when_none_is_left(tmp_path, storage):
    """Every worker gone: `watch` shows the dead worker's trial as FAIL, not RUNNING forever."""
    url = f"sqlite:///{tmp_path / 'study.db'}" if storage == "sqlite" else f"journal:///{tmp_path / 'study.log'}"
    config = fake_config(tmp_path, url, n_trials=4, epochs=50)
    (victim,) = start_workers(config, 1, epoch_seconds=0.2)
    wait_until(lambda: _running_trial_of(config, victim.pid) is not None, 60)
    killed = _running_trial_of(config, victim.pid)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    recorder = Recorder()
    watcher = StudyWatcher(url, config.name, recorder, poll_seconds=0.2)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        wait_until(lambda: any(t.number == killed.number and t.state == "FAIL" for t in recorder.of(TrialFinished)),
                   30)
    finally:
        watcher.close()
        thread.join(30)
    failed = next(t for t in recorder.of(TrialFinished) if t.number == killed.number)
    assert failed.error and failed.broken


def test_n_trials_lowered_by_a_late_worker_is_the_study_s_for_every_worker(tmp_path):
    """A worker joining with a smaller --trials changes the study's target, recorded with who changed it; every
    worker (and view) then stops on the same one: the study ends with exactly the new n_trials."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = StudyRunner(fake_config(tmp_path, url, n_trials=8, epochs=3), trainer=FakeTrainer(epoch_seconds=0.1),
                        poll_seconds=0.1, emit=(seen := Recorder()))
    thread = threading.Thread(target=first.run)
    thread.start()
    wait_until(lambda: seen.of(TrialFinished), 60)
    late = StudyRunner(fake_config(tmp_path, url, n_trials=4, epochs=3), trainer=FakeTrainer(epoch_seconds=0.1),
                       poll_seconds=0.1)
    late_finished = late.run()
    thread.join(60)
    study = optuna.load_study(study_name="shared", storage=url)
    assert states(study.trials).get("COMPLETE") == 4 and only_budget_failures(study.trials)
    assert study.user_attrs[schema.N_TRIALS] == 4 and late_finished.detail == "finished 4 trials"
    (change,) = schema.config_changes(study.user_attrs)
    assert change["changes"] == ["n_trials 8 -> 4"] and change["by"] == late.worker.id


def test_of_two_incompatible_creators_the_first_writer_wins(tmp_path):
    """Two workers create one new study at the same moment with configs that make different studies: the storage
    picks one creator; the other is refused with the differences (exit 2, one line), and no trial mixes them."""
    import subprocess
    import sys
    from pathlib import Path

    from engine.study import save_config

    url = f"sqlite:///{tmp_path / 'study.db'}"
    paths = []
    for subset in (0, 100):
        path = tmp_path / f"worker-{subset}.toml"
        save_config(fake_config(tmp_path, "", n_trials=3, subset=subset), path)
        paths.append(path)
    command = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))
    env = {**os.environ, "TUNEDECK_STORAGE": url}
    workers = [subprocess.Popen([*command, str(path)], env=env, stderr=subprocess.PIPE, text=True) for path in paths]
    results = [(worker.wait(60), worker.stderr.read()) for worker in workers]
    assert sorted(code for code, _ in results) == [0, 2]
    winner, loser = (0, 1) if results[0][0] == 0 else (1, 0)
    line = results[loser][1].strip().splitlines()[-1]
    assert "is another study: this run would change subset" in line and line.startswith("tunedeck worker: error:")
    study = optuna.load_study(study_name="shared", storage=url)
    assert study.user_attrs[schema.CONFIG]["subset"] == (0, 100)[winner]
    assert states(study.trials) == {"COMPLETE": 3}
