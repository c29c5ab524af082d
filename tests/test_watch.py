"""Watching a study that other processes run, in the app (Pilot): the table fills, stop reaches the workers."""

from __future__ import annotations

import threading

import optuna
import pytest
from fakes import FakeTrainer, fake_config, join, start_workers, wait_until
from rich.text import Text
from test_tui import SIZE, wait_for
from tui_fakes import factory

from engine import StudyConfig, StudyRunner
from engine.store import default_storages, schema
from tui.app import TunedeckApp
from tui.screens.modals import ChoiceScreen, ConfirmScreen
from tui.screens.picker import StudyPickerScreen
from tui.screens.run import RunScreen
from tui.widgets.trial_table import TrialTable


def study_ready(config: StudyConfig) -> bool:
    try:
        return schema.DATA in optuna.load_study(study_name=config.name, storage=config.storage_url).user_attrs
    except KeyError:
        return False


def cell(table: TrialTable, number: int, column: str) -> str:
    return Text.from_markup(str(table.get_cell(str(number), column))).plain


def watched_worker(tmp_path, n_trials: int, epochs: int, epoch_seconds: float):
    """A worker process running a study, and an app watching it (once the study has begun)."""
    config = fake_config(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", n_trials=n_trials, epochs=epochs)
    [worker] = start_workers(config, 1, epoch_seconds=epoch_seconds)
    wait_until(lambda: study_ready(config), 60)
    return config, worker, TunedeckApp(watch=(config.storage_url, config.name))


async def test_watch_shows_every_trial_another_process_runs(tmp_path):
    config, worker, app = watched_worker(tmp_path, n_trials=4, epochs=3, epoch_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.running_trials)
        screen = app.screen
        table = screen.query_one(TrialTable)
        await wait_for(pilot, lambda: table.row_count and cell(table, 0, "state") == "RUNNING")
        await wait_for(pilot, lambda: screen.state == "finished", 60)
        assert table.row_count == 4 and {cell(table, n, "state") for n in range(4)} == {"COMPLETE"}
        assert cell(table, 0, "worker").endswith(f":{worker.pid}/cpu")
        assert "4/4 trials" in str(screen.query_one("#status").render())
        await pilot.press("r")  # a view has no setup to go back to
        assert isinstance(app.screen, RunScreen)
    assert join([worker]) == [0]


async def test_stop_now_from_a_watching_view_stops_the_workers(tmp_path):
    config, worker, app = watched_worker(tmp_path, n_trials=5, epochs=200, epoch_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.running_trials)
        await pilot.press("S")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        # seen while it shows: a toast times out, and the workers may take longer than that to finish
        await wait_for(pilot, lambda: any("stopped by a view on" in str(n.message) for n in app._notifications), 90)
        await wait_for(pilot, lambda: app.screen.state == "stopped", 90)
    assert join([worker], 90) == [0]
    trial = optuna.load_study(study_name=config.name, storage=config.storage_url).trials[0]
    assert trial.user_attrs[schema.STOPPED_BY] == "user"


async def test_the_picker_lists_the_studies_run_left_under_the_folder_and_escape_comes_back(tmp_path):
    """`tunedeck watch` without --storage: every runs/<study>/study.db is found, their studies listed together
    (read from Optuna's study summaries); enter opens one, escape comes back, and a new study shows up by itself."""
    for name, n_trials in (("first", 1), ("second", 2)):
        config = fake_config(tmp_path, "", n_trials=n_trials)
        config.study_name = name
        StudyRunner(config, trainer=FakeTrainer()).run()
    urls = default_storages(tmp_path)
    assert urls == [f"sqlite:///{tmp_path}/runs/first/study.db", f"sqlite:///{tmp_path}/runs/second/study.db"]
    app = TunedeckApp(watch=(urls, None))
    async with app.run_test(size=SIZE) as pilot:
        picker = app.screen
        assert isinstance(picker, StudyPickerScreen)
        table = picker.query_one("#studies")
        await wait_for(pilot, lambda: table.row_count == 2)
        rows = {table.get_cell(key, "study"): (table.get_cell(key, "trials"), table.get_cell(key, "target"))
                for key in (str(k.value) for k in table.rows)}
        assert rows == {"first": (1, 1), "second": (2, 2)}
        keys = [str(key.value) for key in table.rows]
        table.move_cursor(row=next(i for i, key in enumerate(keys) if key.endswith("second")))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        assert app.screen.query_one(TrialTable).row_count == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is picker)
        config = fake_config(tmp_path, "", n_trials=1)
        config.study_name = "third"
        StudyRunner(config, trainer=FakeTrainer()).run()
        picker.storage_urls = default_storages(tmp_path)
        await wait_for(pilot, lambda: table.row_count == 3, 20)  # refreshed by itself


def test_a_watched_study_whose_workers_are_all_gone_says_so(tmp_path):
    """A study stopped half way with no worker left: the view says "no live worker" instead of "running", and its
    elapsed time counts from the study's first trial."""
    import time as clock

    from conftest import Recorder

    from engine import StudyStarted, StudyWatcher, Waiting

    config = fake_config(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", n_trials=2)
    StudyRunner(config, trainer=FakeTrainer(), emit=(seen := Recorder())).run()
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    study.set_user_attr(schema.N_TRIALS, 4)  # raised by a worker that then died before it started a trial
    view = Recorder()
    watcher = StudyWatcher(config.storage_url, config.name, view, poll_seconds=0.1)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        wait_until(lambda: view.of(Waiting), 30)
    finally:
        watcher.close()
        thread.join(30)
    (idle,) = view.of(Waiting)
    assert idle.state == "no live worker" and "2 of 4 trials finished" in idle.message
    first = view.of(StudyStarted)[0].started_at
    assert first is not None and first <= clock.time() and seen.of(StudyStarted)[0].started_at is None


@pytest.mark.parametrize("key, expected", [("l", "closed"), ("s", "now")])
async def test_quitting_an_app_that_started_workers_asks_to_stop_or_leave_them(tmp_path, key, expected):
    make = factory(hold=True, owns_workers=True)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RunScreen(app.config, make))
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "running")
        await pilot.press("q")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press(key)
        await wait_for(pilot, lambda: not app.is_running)
    assert make.last.stopped == expected


async def test_a_view_opened_before_its_study_waits_for_it(tmp_path, monkeypatch, capsys):
    """`tunedeck watch` a moment before the workers create the study: it waits, then shows it (it said "no study"
    and exited 2)."""
    import threading

    from tui.cli import main

    url = f"sqlite:///{tmp_path / 'study.db'}"
    StudyRunner(fake_config(tmp_path, url, n_trials=1), trainer=FakeTrainer()).run()  # the storage exists
    opened = []
    monkeypatch.setattr("tui.app.run_app", lambda **options: opened.append(options) or 0)
    assert main(["watch", "--storage", url, "--study-name", "late"]) == 0  # the app opens (stubbed here)
    assert opened == [{"watch": (url, "late")}]
    late = fake_config(tmp_path, url, n_trials=2)
    late.study_name = "late"
    app = TunedeckApp(watch=(url, "late"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "waiting")
        screen = app.screen
        await wait_for(pilot, lambda: any("waiting for study 'late' in sqlite:///" in line
                                          for line in screen.query_one("Log").lines))
        worker = threading.Thread(target=StudyRunner(late, trainer=FakeTrainer(0.1)).run)
        worker.start()
        await wait_for(pilot, lambda: screen.state == "finished", 60)
        assert screen.query_one(TrialTable).row_count == 2
        worker.join(30)
