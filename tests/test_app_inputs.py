"""The app never crashes on input: any text in a field, an unexpected error, a bad config, a tiny terminal."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from test_tui import SIZE, wait_for
from textual.widgets import Input
from tui_fakes import factory, scripted_study

from engine import StudyConfig
from tui.app import TunedeckApp
from tui.headless import RunDisplay
from tui.screens import setup as setup_screen
from tui.screens.modals import ConfirmScreen, TooSmallScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.widgets.trial_table import TrialTable

HUGE = "9" * 400


def app_for(tmp_path, **options) -> TunedeckApp:
    return TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(), **options)


async def test_four_hundred_digits_in_any_number_field(tmp_path):
    app = app_for(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for field, error in (("#n_trials", "err-n_trials"), ("#seed", "err-seed"), ("#timeout", "err-timeout"),
                             ("#layer_num-high", "row-layer_num")):
            app.screen.query_one(field, Input).value = HUGE
            await pilot.pause()
            shown = app.screen.query_one(f"#{error}")
            text = str((shown.query_one(".row-error") if error.startswith("row-") else shown).render())
            assert "must be in" in text or "far too large" in text, text
            assert len(text.splitlines()) == 1
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, SetupScreen) and app.is_running


async def test_an_unexpected_error_is_a_notification_and_the_form_stays(tmp_path, monkeypatch):
    app = app_for(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        def broken(*args, **kwargs):
            raise RuntimeError("something nobody expected")

        monkeypatch.setattr(setup_screen, "check_form", broken)
        app.screen.query_one("#n_trials", Input).value = "17"
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, SetupScreen)
        assert any("RuntimeError: something nobody expected" in str(n.message) for n in app._notifications)
        assert app.screen.query_one("#n_trials", Input).value == "17"


async def test_loading_a_malformed_config_says_so_where_the_user_looks(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#config_path", Input).value = str(bad)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert any("is not valid TOML" in str(n.message) for n in app._notifications)
        assert isinstance(app.screen, SetupScreen)


async def test_save_asks_before_replacing_a_file(tmp_path):
    mine = tmp_path / "tunedeck.toml"
    mine.write_text("# my own notes\nmodel = 'cnn'\n")
    before = mine.read_bytes()
    app = app_for(tmp_path, config_path=str(mine))
    async with app.run_test(size=SIZE) as pilot:
        assert app.screen.query_one("#config_path", Input).value == str(mine)  # the file it was opened with
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert mine.read_bytes() == before
        await pilot.press("ctrl+s")
        await pilot.press("y")
        await pilot.pause()
        assert mine.read_bytes() != before and "n_trials = 10" in mine.read_text()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tunedeck.toml"]  # written in place, no leftovers


async def test_a_terminal_below_80x24_is_told_to_grow(tmp_path):
    app = app_for(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        run_screen = app.screen
        await pilot.resize_terminal(60, 15)
        await pilot.pause(0.2)
        assert isinstance(app.screen, TooSmallScreen)
        assert "enlarge it to at least 80x24" in str(app.screen.query_one("#too-small").render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert app.screen is run_screen
        table = run_screen.query_one(TrialTable)
        assert table.row_count == 5 and table.region.height >= 4  # the table is still there to read


def test_the_headless_display_renders_while_events_arrive():
    """rich renders on its own thread while the engine thread changes the display: never mid-change."""
    display = RunDisplay()
    events = scripted_study() * 40
    failures: list[BaseException] = []

    def feed() -> None:
        try:
            for event in events:
                display.handle(event)
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    thread = threading.Thread(target=feed)
    thread.start()
    console = Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        console.print(display)
    thread.join(10)
    assert not failures and display.progress.tasks[0].completed > 0
