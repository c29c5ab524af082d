"""The trials table as a lazygit or k9s user drives it: j/k, g/G, sort by any column with the sort shown and kept
while trials stream in, `/` to filter by text or parameter, the newest trial followed, the # column frozen."""

from __future__ import annotations

from test_tui import wait_for
from tui_fakes import factory, trial_events

from engine import StudyConfig
from tui.app import TunedeckApp
from tui.screens.run import RunScreen
from tui.widgets.trial_table import TrialTable


def labels(table: TrialTable) -> list[str]:
    return [column.label.plain for column in table.columns.values()]


def numbers(table: TrialTable) -> list[int]:
    return [int(table.get_row_at(index)[1]) for index in range(table.row_count)]


async def dashboard(pilot, app) -> TrialTable:
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and len(app.screen.trials) == 5)
    await pilot.pause(0.3)
    return app.screen.query_one(TrialTable)


async def test_sort_by_any_column_is_shown_and_kept_while_trials_stream_in(tmp_path):
    make = factory(hold=True)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=(160, 48)) as pilot:
        table = await dashboard(pilot, app)
        assert table.cursor_row == 4  # it followed the newest trial
        await pilot.press("v")  # by value, the best first; pruned and failed after every complete one
        assert numbers(table) == [1, 4, 0, 2, 3]
        assert "value ▲" in labels(table)
        await pilot.press("I")  # inverted: the worst first; the failed trial (no value) stays last
        assert numbers(table) == [2, 0, 4, 1, 3] and "value ▼" in labels(table)
        for event in trial_events(5, "COMPLETE", 0.99, (0.99,)):  # a new best streams in: the sort holds
            make.last.emit(event)
        await wait_for(pilot, lambda: table.row_count == 6)
        assert numbers(table) == [2, 0, 4, 1, 5, 3]
        await pilot.press("greater_than_sign")  # the next column: test accuracy
        assert "test acc ▲" in labels(table) and "value" in labels(table)
        assert numbers(table) == [2, 0, 4, 1, 5, 3]  # ascending test accuracy; no value last
        await pilot.press("n")
        assert numbers(table) == [0, 1, 2, 3, 4, 5] and "# ▲" in labels(table)
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        for event in trial_events(6, "COMPLETE", 0.5, (0.5,)):  # the user moved: no following
            make.last.emit(event)
        await wait_for(pilot, lambda: table.row_count == 7)
        assert table.cursor_row == 1
        await pilot.press("G")  # back at the last row: following again
        for event in trial_events(7, "COMPLETE", 0.5, (0.5,)):
            make.last.emit(event)
        await wait_for(pilot, lambda: table.row_count == 8)
        await pilot.pause(0.3)
        assert table.cursor_row == 7
        assert table.fixed_columns == 2  # the star and # stay when scrolling sideways
        make.last.close()


async def test_slash_filters_by_text_or_parameter_and_says_what_is_hidden(tmp_path):
    make = factory(hold=True)
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=make)
    async with app.run_test(size=(120, 35)) as pilot:
        table = await dashboard(pilot, app)
        screen = app.screen
        await pilot.press("slash", *"layer_num=3")
        await pilot.pause(0.1)
        assert numbers(table) == [1, 4]  # layer_num is 2 + number % 3
        await pilot.press("enter")
        assert app.focused is table
        state = screen.query_one("#table-state")
        assert state.display and "filter 'layer_num=3' · 2 of 5 trials shown" in str(state.render())
        for event in trial_events(7, "COMPLETE", 0.5, (0.5,)) + trial_events(6, "PRUNED", 0.4, (0.4,)):
            make.last.emit(event)  # trials that stream in are filtered too
        await wait_for(pilot, lambda: len(table.cells) == 7)
        await pilot.pause(0.3)
        assert numbers(table) == [1, 4, 7]
        await pilot.press("f")  # pruned/failed hidden on top of the filter
        await pilot.pause(0.3)
        assert "pruned/failed hidden" in str(state.render())
        await pilot.press("f", "slash", *"layer_num=3 value>0.9")  # terms add up
        await pilot.pause(0.1)
        assert numbers(table) == [1, 4]
        await pilot.press("ctrl+u", *"PRUNED")  # plain text is searched in every cell
        await pilot.pause(0.1)
        assert numbers(table) == [2, 6]
        await pilot.press("ctrl+u", *"nosuch=1")
        await pilot.pause(0.1)
        assert "no column 'nosuch'" in screen.query_one("#filter").border_subtitle
        await pilot.press("escape")  # cleared, every trial back
        await pilot.pause(0.3)
        assert numbers(table) == [0, 1, 2, 3, 4, 6, 7] and not state.display and app.focused is table
        make.last.close()
