"""The Textual app driven with Pilot: setup form, validation, start, run dashboard, stop/quit/export."""

import pytest
from conftest import fix, tiny_config
from rich.text import Text
from textual.widgets import Input, Log, Select
from tui_fakes import factory

from engine import StopRequest, StudyConfig, StudyRunner, dump_config
from tui.app import TunedeckApp
from tui.screens.modals import ConfirmScreen, HelpScreen, TrialDetailScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.widgets.best_panel import BestPanel
from tui.widgets.charts import CurvePlot, HistoryPlot, ImportancePlot
from tui.widgets.param_row import ParamRow
from tui.widgets.trial_table import TrialTable

SIZE = (140, 44)


def rows(app):
    return app.screen.space_fields()


async def wait_for(pilot, predicate, seconds: float = 30.0):
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def test_setup_defaults_per_model_and_switching(tmp_path):
    app = TunedeckApp(StudyConfig(model="mlp", out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        space = rows(app)
        assert list(space) == ["layer_num", "epochs", "first_layer_unit", "batch_size", "learning_rate"]
        assert space["epochs"] | {} == {**space["epochs"], "kind": "int", "low": "5", "high": "50", "step": "5"}
        assert space["first_layer_unit"]["choices"] == "64, 128, 256, 512"
        app.screen.query_one("#model", Select).value = "cnn"
        await pilot.pause()
        space = rows(app)
        assert list(space) == ["k", "layer_num", "epochs", "first_layer_unit", "batch_size", "learning_rate", "dropout"]
        assert space["k"]["low"] == "2" and space["k"]["high"] == "5"
        assert space["batch_size"] == {**space["batch_size"], "kind": "fixed", "value": "128"}
        assert space["first_layer_unit"]["choices"] == "16, 32, 64, 128, 256"


INVALID = [
    ("#n_trials", "0", "err-n_trials", "n_trials: must be in 1..1000000"),
    ("#seed", "-1", "err-seed", "seed: must be in 0..4294967295"),
    ("#timeout", "-5", "err-timeout", "timeout: must be in 0..31536000"),
    ("#gpus", "0,a", "err-gpus", "gpus: expected GPU indexes like 0,1 or 0,0,1,1 (or GPU-/MIG- UUIDs), got '0,a'"),
    ("#workers", "-2", "err-workers", "workers: must be in 0..256"),
    ("#heartbeat", "0", "err-heartbeat", "heartbeat: must be in 1..3600"),
    ("#storage_retry", "-5", "err-storage_retry", "storage_retry: must be in 0..604800"),
    ("#lr_patience", "-3", "err-lr_patience", "lr_patience: must be in 0..100000, got -3"),
    ("#storage", "study.db", "err-storage", "storage: 'study.db' is not a storage URL"),
    ("#epochs-high", "3", "row-epochs", "space.epochs: low must be <= high (got 5 > 3)"),
    ("#epochs-step", "7", "row-epochs", "space.epochs.step: 7 does not divide the range 5..50"),
    ("#first_layer_unit-choices", "", "row-first_layer_unit", "space.first_layer_unit.choices: must be a non-empty list"),
    ("#layer_num-low", "x", "row-layer_num", "space.layer_num.low: expected a number, got 'x'"),
    ("#learning_rate-value", "50", "row-learning_rate", "space.learning_rate.value: learning_rate must be in"),
]


@pytest.mark.parametrize("selector, text, where, message", INVALID, ids=[i[0] for i in INVALID])
async def test_each_invalid_field_shows_its_message(tmp_path, selector, text, where, message):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(selector, Input).value = text
        await pilot.pause()
        shown = app.screen.query_one(f"#{where}")
        if isinstance(shown, ParamRow):
            shown = shown.query_one(".row-error")
        assert message in str(shown.render())
        assert shown.display
        await pilot.press("ctrl+r")  # refused while a field is invalid
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        assert any(message in str(n.message) for n in app._notifications)


async def test_local_path_must_exist(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#dataset", Select).value = "path"
        await pilot.pause()
        assert app.screen.query_one("#field-path").display
        app.screen.query_one("#path", Input).value = str(tmp_path / "nope.npz")
        await pilot.pause()
        assert "does not exist" in str(app.screen.query_one("#err-dataset").render())


async def test_keyboard_only_path_to_start(tmp_path):
    make = factory()
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(40):  # Tab through the form until the trials field has focus
            if app.focused is not None and app.focused.id == "n_trials":
                break
            await pilot.press("tab")
        assert app.focused.id == "n_trials"
        await pilot.press("end", "backspace", "backspace", "3", "tab")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        assert make.last.config.n_trials == 3


async def test_save_then_load_config(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    path = tmp_path / "form.toml"
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#config_path", Input).value = str(path)
        app.screen.query_one("#n_trials", Input).value = "17"
        await pilot.press("ctrl+s")
        assert "n_trials = 17" in path.read_text()
        app.screen.query_one("#n_trials", Input).value = "5"
        app.screen.query_one("#config_path", Input).value = str(path)
        await pilot.press("ctrl+o")  # 5 is an edit since the save: asked first
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert app.screen.query_one("#n_trials", Input).value == "17"


async def test_run_screen_shows_scripted_events(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        screen = app.screen
        table = screen.query_one(TrialTable)
        assert table.row_count == 5
        states = [Text.from_markup(table.get_cell(str(n), "state")).plain for n in range(5)]
        assert states == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
        assert Text.from_markup(table.get_cell("1", "best")).plain == "★" and table.get_cell("0", "best") == ""
        assert table.get_cell("4", "value") == "0.9300"
        best = screen.query_one(BestPanel)
        assert best.best.number == 1 and "0.9500" in str(best.render())
        history = screen.query_one(HistoryPlot)
        assert history.points["COMPLETE"] == ([0, 1, 4], [0.91, 0.95, 0.93])
        assert history.points["PRUNED"][0] == [2] and history.points["FAIL"][0] == [3]
        assert list(zip(history.best_x, history.best_y, strict=True)) == [(0, 0.91), (1, 0.91), (1, 0.95)]
        curves = screen.query_one(CurvePlot)
        assert curves.median() == pytest.approx([0.865, 0.93])  # epoch 1: 0.85 0.9 0.5 0.88; epoch 2: 0.91 0.95 0.93
        assert screen.query_one(ImportancePlot).importances["first_layer_unit"] == 0.7
        assert "3/5 trials" not in str(screen.query_one("#status").render())
        assert "4/5 trials" in str(screen.query_one("#status").render())  # failed trials do not count
        log_text = "\n".join(screen.query_one(Log).lines)
        assert "trial 3 FAIL" in log_text and "loss became nan" in log_text
        table.focus()
        table.move_cursor(row=3)
        await pilot.press("enter")
        assert isinstance(app.screen, TrialDetailScreen) and app.screen.trial.error.startswith("loss")
        await pilot.press("escape")
        table.action_sort_by_value()
        assert str(table.get_row_at(0)[1]) == "1"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ("s", "Stop the study after its running trials") in app.screen.rows


async def test_stop_keys(tmp_path):
    make = factory(hold=True)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.query_one(TrialTable).row_count == 5)
        await pilot.press("S")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert make.last.stopped is None
        await pilot.press("s")
        assert make.last.stopped == "after trial"
        await wait_for(pilot, lambda: app.screen.state == "stopped")  # not "finished": it was stopped


async def test_quit_while_running_stops_the_engine(tmp_path):
    make = factory(hold=True)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "running")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)
    assert make.last.stopped == "now"


async def test_export_and_back_to_setup(finished_study):
    config, _, _ = finished_study
    (config.run_dir / "summary.md").unlink(missing_ok=True)
    app = TunedeckApp(config, runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        await pilot.press("e")
        await wait_for(pilot, lambda: (config.run_dir / "summary.md").is_file())
        await wait_for(pilot, lambda: any("Summary written to" in str(n.message) for n in app._notifications))
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        assert app.screen.query_one("#n_trials", Input).value == str(config.n_trials)


async def test_end_to_end_with_the_real_engine(tmp_path):
    """Two real trials; when the study ends the app writes its report as `tunedeck run` does (summary.md,
    trials.csv, the plots, and --export's copy), before the user quits."""
    config = fix(tiny_config(tmp_path, n_trials=2), epochs=1)
    app = TunedeckApp(config, runner_factory=StudyRunner, reports=(tmp_path / "shared.md", True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished", 120)
        table = app.screen.query_one(TrialTable)
        assert table.row_count == 2
        assert {Text.from_markup(table.get_cell(str(n), "state")).plain for n in range(2)} == {"COMPLETE"}
        assert app.screen.query_one(BestPanel).best is not None
        await pilot.press("q")
    run_dir = config.run_dir
    summary = (run_dir / "summary.md").read_text()
    assert f"# Study `{config.name}`" in summary or config.name in summary.splitlines()[0]
    assert len((run_dir / "trials.csv").read_text().splitlines()) == 3  # a header and the two trials
    assert (run_dir / "plots" / "history.png").stat().st_size > 0 and (tmp_path / "shared.md").exists()


async def test_engine_error_is_shown_and_the_app_survives(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"this is not a zip archive")
    config = tiny_config(tmp_path)
    config.dataset, config.subset = str(bad), 0
    app = TunedeckApp(config, runner_factory=StudyRunner)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "error", 60)
        assert "is not a readable .npz file" in "\n".join(app.screen.query_one(Log).lines)
        await wait_for(pilot, lambda: any("not a readable" in str(n.message) for n in app._notifications))
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen) and app.is_running


async def test_command_palette_lists_screen_actions(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Start", "Load config", "Save config"} <= set(titles)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Stop the study after its running trials", "Back to the setup form", "Quit"} <= set(commands)
        commands["Back to the setup form"].callback()
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))


async def test_default_space_key_resets_edits(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#epochs-high", Input).value = "3"
        await pilot.pause()
        assert app.screen.errors
        app.screen.query_one("#subset", Input).focus()  # ctrl+d in a text field: asked, not a deleted character
        app.screen.query_one("#subset", Input).value = "500"
        await pilot.press("home", "ctrl+d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # kept
        await pilot.pause()
        assert rows(app)["epochs"]["high"] == "3" and app.screen.query_one("#subset", Input).value == "500"
        await pilot.press("ctrl+d", "y")
        await pilot.pause()
        assert rows(app)["epochs"]["high"] == "50" and not app.screen.errors
        assert app.screen.query_one("#subset", Input).value == "500"


async def test_edits_are_never_lost_without_asking(tmp_path):
    """A model switch keeps the edited space for the switch back; a kind change keeps the values (a range's low
    becomes the fixed value, a small int range the choices); ctrl+o asks before replacing unsaved edits; valid
    empty fields (Subset all, Timeout none) stay unmarked after tabbing through them."""
    path = tmp_path / "saved.toml"
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(), config_path=str(path))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        screen.query_one("#epochs-high", Input).value = "20"
        await pilot.pause()
        screen.query_one("#model", Select).value = "cnn"
        await pilot.pause(0.3)
        assert "k" in rows(app)
        screen.query_one("#model", Select).value = "mlp"
        await pilot.pause(0.3)
        assert rows(app)["epochs"]["high"] == "20"  # the edit came back with the model
        screen.query_one("#layer_num-kind", Select).value = "categorical"
        await pilot.pause()
        assert rows(app)["layer_num"]["choices"] == "2, 3, 4"
        screen.query_one("#layer_num-kind", Select).value = "int"
        await pilot.pause()
        assert rows(app)["layer_num"] | {} == {**rows(app)["layer_num"], "low": "2", "high": "4"}
        screen.query_one("#layer_num-kind", Select).value = "fixed"
        await pilot.pause()
        assert rows(app)["layer_num"]["value"] == "2"
        screen.query_one("#subset", Input).focus()
        await pilot.press("tab", "tab", "tab")
        assert not screen.query_one("#subset", Input).has_class("-invalid")
        screen.query_one("#timeout", Input).focus()
        await pilot.press("tab")
        assert not screen.query_one("#timeout", Input).has_class("-invalid")
        path.write_text(dump_config(StudyConfig(n_trials=17)))
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # the edits are not saved: asked
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and rows(app)["epochs"]["high"] == "20"
        await pilot.press("ctrl+o", "y")
        await pilot.pause(0.3)
        assert app.screen.query_one("#n_trials", Input).value == "17"


async def test_resumed_study_counts_replayed_trials_once(tmp_path):
    """The engine announces 2 earlier finished trials, then replays them: 2/5, not 4/5."""
    from dataclasses import replace

    from tui_fakes import started, trial_events

    script = [replace(started(), n_finished=2)] + trial_events(0, "COMPLETE", 0.9, (0.9,))[-1:] \
        + trial_events(1, "PRUNED", 0.5, (0.5,))[-1:]
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(script=script, hold=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.query_one(TrialTable).row_count == 2)
        assert "2/5 trials" in str(app.screen.query_one("#status").render())
        app.screen.source.stop(StopRequest())


def test_headless_display_counts_replayed_trials_once():
    from dataclasses import replace

    from tui_fakes import started, trial_events

    from tui.headless import RunDisplay

    display = RunDisplay()
    for event in [replace(started(), n_finished=2)] + trial_events(0, "COMPLETE", 0.9, (0.9,))[-1:] \
            + trial_events(1, "PRUNED", 0.5, (0.5,))[-1:]:
        display.handle(event)
    assert display.progress.tasks[0].completed == 2


def test_headless_display_shows_every_worker_s_trials_verbatim():
    """Worker ids, dataset names and parameters are shown as they are, never read as rich markup."""
    from dataclasses import replace

    from rich.console import Console
    from tui_fakes import started, trial_events

    from engine import TrialStarted
    from tui.headless import RunDisplay

    display = RunDisplay()
    display.handle(replace(started(), dataset="digits[bold].npz"))
    display.handle(TrialStarted(7, {"units": [1, 2]}, 5, worker="gpubox:41/gpu1"))
    for event in trial_events(3, "COMPLETE", 0.9, (0.9,))[-1:]:
        display.handle(replace(event, worker="otherbox:99/cpu"))
    console = Console(record=True, width=200)
    console.print(display)
    text = console.export_text()
    assert "digits[bold].npz" in text and "trial 7 on gpubox:41/gpu1: units=[1, 2]" in text
    assert "otherbox:99/cpu" in text


async def test_a_storage_password_is_hidden_in_the_form(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        field = app.screen.query_one("#storage", Input)
        field.value = "postgresql://tuner@db/studies"
        await pilot.pause()
        assert not field.password
        field.value = "postgresql://tuner:s3cret@db/studies"
        await pilot.pause()
        field.focus()
        await pilot.pause()
        assert field.password and "s3cret" not in app.export_screenshot()
        assert not app.screen.errors


def loss_study() -> list:
    """Four trials of a val_loss study (lower is better): 0.30, 0.12, failed, 0.20."""
    from dataclasses import replace

    from tui_fakes import started, trial_events

    events = [replace(started(4), objective="val_loss", maximize=False)]
    for number, state, value in ((0, "COMPLETE", 0.30), (1, "COMPLETE", 0.12), (2, "FAIL", None),
                                 (3, "COMPLETE", 0.20)):
        events += trial_events(number, state, value, () if value is None else (value + 0.1, value))
    return events


async def test_a_loss_study_sorts_draws_and_names_its_values_as_a_loss(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(script=loss_study()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        screen = app.screen
        table = screen.query_one(TrialTable)
        table.action_sort_by_value()
        assert [str(table.get_row_at(i)[1]) for i in range(4)] == ["1", "3", "0", "2"]  # lowest loss first, FAIL last
        history = screen.query_one(HistoryPlot)
        points, best_x, best_y = history.snapshot()
        assert best_y[-1] == 0.12
        assert points["FAIL"][1][0] > 0.30  # past the worst loss, not at 0.0 (the best end of a loss axis)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, TrialDetailScreen)
        assert "val loss 0.1200" in str(detail.query("Label").first().render())


@pytest.mark.parametrize("owns_workers, expected", [(False, "now"), (True, "closed")])
async def test_sigterm_in_the_app_stops_training_here_or_closes_a_pool_s_view(tmp_path, owns_workers, expected):
    import signal

    from engine import Cause, Scope

    make = factory(hold=True, owns_workers=owns_workers)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RunScreen(app.config, make))
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "running")
        app.stop_on_signal(signal.SIGTERM)
        await wait_for(pilot, lambda: not app.is_running)
    assert make.last.stopped == expected and app.signal_status == 128 + signal.SIGTERM
    if not owns_workers:
        assert make.last.requests == [StopRequest(now=True, scope=Scope.PROCESS, cause=Cause.SIGNAL)]


def test_headless_output_to_a_file_gets_a_plain_line_per_trial_at_once():
    """`tunedeck run ... > run.log` or `| tee`: each finished trial is a line as it finishes (the live display
    only shows at the end there), with parameters as people write them, not 17-digit floats."""
    import io

    from rich.console import Console

    from engine import TrialFinished
    from tui.headless import RunDisplay

    stream = io.StringIO()
    display = RunDisplay(lines=Console(file=stream, width=60))
    display.handle(TrialFinished(3, "COMPLETE", 0.91234567, {"layer_num": 2, "learning_rate": 0.0012345678901234},
                                 12.34, test_accuracy=0.9, epochs_trained=5, worker="vm:7/cpu"))
    assert stream.getvalue() == ("trial 3 COMPLETE value 0.9123 test 0.9000 epochs 5 12.3s vm:7/cpu layer_num=2 "
                                 "learning_rate=0.001235\n")


async def test_help_lists_this_screen_s_keys_first_and_scrolls_at_80x24(tmp_path):
    """`?` at 80x24: the run screen's keys first (s, S, e, ..., q, 1-5), in a table that scrolls to the last
    row (before: a clipped Markdown page that showed the table's cursor keys and did not scroll); the palette
    lists each action once and not the table's own commands."""
    from textual.widgets import DataTable

    make = factory(hold=True)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "running")
        run_screen = app.screen
        commands = list(app.get_system_commands(run_screen))
        titles = [command.title for command in commands]
        assert len(titles) == len(set(titles)) and "Stop every running trial now (asks first)" in titles
        assert next(c for c in commands if c.title == "Quit").help == "key: q"  # ours: it asks about workers
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = [key for key, _ in app.screen.rows]
        assert keys[:3] == ["s", "S", "e"] and {"q", "1", "5", "t"} <= set(keys)
        table = app.screen.query_one(DataTable)
        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_row == table.row_count - 1 and table.scroll_offset.y > 0
        await pilot.press("g")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
        await pilot.press("escape")
        assert app.screen is run_screen
        make.last.close()


async def test_the_focused_drop_down_stands_out(tmp_path):
    from textual.widgets._select import SelectCurrent

    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        sampler, pruner = (app.screen.query_one(f"#{key}", Select) for key in ("sampler", "pruner"))
        sampler.focus()
        await pilot.pause()
        focused = sampler.query_one(SelectCurrent).styles.background
        other = pruner.query_one(SelectCurrent).styles.background
        assert sum(abs(a - b) for a, b in zip(focused.rgb, other.rgb, strict=True)) > 60


def test_headless_eta_after_a_resume_and_one_line_a_trial_at_100_columns():
    """Seven trials of 10 s replayed at once by a resume, three left: ETA about 30 s (rich's own speed estimate
    said 0:00:01); at 100 columns each trial of the table is one line, long parameters cut with …"""
    import io

    from rich.console import Console
    from tui_fakes import started

    from engine import TrialFinished
    from tui.headless import RunDisplay

    display = RunDisplay()
    display.handle(started(n_trials=10))
    params = {f"parameter_{i}": 0.0012345 * i for i in range(8)}
    for number in range(7):
        display.handle(TrialFinished(number, "COMPLETE", 0.9, params, 10.0, test_accuracy=0.9, epochs_trained=5,
                                     worker="a-long-host-name:12345/gpu0"))
    assert 29 <= display.eta() <= 30
    stream = io.StringIO()
    Console(file=stream, width=100, force_terminal=False).print(display)
    lines = stream.getvalue().splitlines()
    assert "ETA 0:00:" in lines[0]
    rows = [line for line in lines if "COMPLETE" in line]
    assert len(rows) == 6 and all(line.rstrip().endswith("…") for line in rows)
    assert len(lines) <= 1 + 1 + 1 + 6  # the bar, the best, the header, six trials
