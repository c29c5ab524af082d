"""The dashboard at every size: zoom any panel, one chart at a time when small, resizing keeps everything."""

from __future__ import annotations

import pytest
from test_tui import wait_for
from textual.widgets import Label, Log
from tui_fakes import factory

from engine import StudyConfig
from tui.app import TunedeckApp
from tui.screens.run import RunScreen
from tui.widgets.charts import CurvePlot, HistoryPlot, ImportancePlot
from tui.widgets.trial_table import TrialTable

PANELS = [("1", TrialTable), ("2", HistoryPlot), ("3", CurvePlot), ("4", ImportancePlot), ("5", Log)]


async def finished_dashboard(pilot, app) -> RunScreen:
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
    await pilot.pause(0.3)
    return app.screen


@pytest.mark.parametrize("key, panel", PANELS, ids=[p.__name__ for _, p in PANELS])
async def test_each_zoom_key_fills_the_screen_and_comes_back(key, panel, tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await finished_dashboard(pilot, app)
        widget = screen.query_one(panel)
        await pilot.press(key)
        await pilot.pause()
        assert screen.maximized is widget and widget.region.height >= 20 and widget.region.width >= 78
        await pilot.press(key)  # the same key comes back
        await pilot.pause()
        assert screen.maximized is None
        await pilot.press(key, "escape")  # and so does escape
        await pilot.pause()
        assert screen.maximized is None


async def test_small_terminals_stack_the_table_and_one_readable_chart(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await finished_dashboard(pilot, app)
        charts = [screen.query_one(kind) for kind in (HistoryPlot, CurvePlot, ImportancePlot)]
        assert screen.has_class("-compact") and [chart.display for chart in charts] == [True, False, False]
        assert charts[0].region.height >= 10  # axes and at least 6 plot rows
        table = screen.query_one(TrialTable)
        assert table.region.height >= 5 and table.row_count == 5
        await pilot.press("tab")
        assert [chart.display for chart in charts] == [False, True, False]
        await pilot.press("shift+tab", "shift+tab")
        assert [chart.display for chart in charts] == [False, False, True]
        await pilot.resize_terminal(160, 48)  # re-laid out at once, with every row, chart and line kept
        await pilot.pause()
        assert not screen.has_class("-compact") and all(chart.display for chart in charts)
        assert all(chart.region.height >= 8 for chart in charts) and table.row_count == 5
        assert len(screen.query_one(Log).lines) >= 6 and screen.query_one(HistoryPlot).points["COMPLETE"][0]
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert screen.has_class("-compact") and table.row_count == 5


async def test_at_80x24_the_essentials_are_on_screen(tmp_path):
    """80x24 while a study runs: the status line keeps elapsed and ETA, the footer `?` and the screen's own keys
    (not the table's), the best line its label; the table shows more than 5 rows and follows the newest trial;
    the `S` question is whole."""
    from tui_fakes import screen_lines, scripted_study, trial_events

    script = scripted_study() + [event for n in range(5, 9) for event in trial_events(n, "COMPLETE", 0.9, (0.9,))]
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(hold=True, script=script))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and len(app.screen.trials) == 9)
        await pilot.pause(0.5)
        lines = screen_lines(app)
        status = next(line for line in lines if "trials" in line and "running" in line)
        assert "elapsed" in status and "ETA" in status
        assert lines[-1].split()[:4] == ["?", "Keys", "s", "Stop"]
        assert all(f" {key} " in lines[-1] for key in ("S", "e", "q"))
        from textual.widgets._footer import FooterKey

        keys = list(app.screen.query(FooterKey))
        palette = next(key for key in keys if key.has_class("-command-palette"))
        assert all(key.region.right <= palette.region.x for key in keys if key is not palette)  # none cut
        assert any(line.strip().startswith("Best 0.9500") for line in lines)
        table = app.screen.query_one(TrialTable)
        assert table.size.height >= 9 and table.cursor_row == table.row_count - 1  # on the newest trial
        await pilot.press("S")
        await pilot.pause(0.3)
        question = app.screen.query_one(Label)
        shown = " ".join(strip.text for strip in question.render_lines(question.size.region))
        assert "(recorded as FAIL)" in " ".join(shown.split())
        await pilot.press("n")
        app.runner_factory.last.close()


async def test_120x35_stacks_the_table_over_one_chart_and_keeps_parameter_names(tmp_path):
    """At exactly 120x35 side by side gave a 3-row history chart and one-letter parameter columns: it stacks."""
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await finished_dashboard(pilot, app)
        history = screen.query_one(HistoryPlot)
        assert screen.has_class("-compact") and history.region.height >= 10
        table = screen.query_one(TrialTable)
        shown = [column for column in table.ordered_columns if column.key.value.startswith("p.")]
        assert all(column.get_render_width(table) >= len(column.label.plain) for column in shown)
        assert table.region.right <= 120 and "layer_num" in " ".join(c.label.plain for c in shown)


async def test_the_history_chart_shows_every_point_whole_trial_ticks_and_its_key(tmp_path):
    """Every complete trial's point is visible (drawn over the best line, no legend over the plot), the x axis
    counts whole trials from 0, and the axis label says what each mark is."""
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await finished_dashboard(pilot, app)
        history = screen.query_one(HistoryPlot)
        await wait_for(pilot, lambda: history.idle)
        lines = history.render().plain.splitlines()
        axis = next(index for index, line in enumerate(lines) if "└" in line)
        assert sum(line.count("•") for line in lines[:axis]) == 3  # trials 0, 1 and 4
        ticks = lines[axis + 1].split()
        assert ticks == [str(n) for n in range(5)]
        assert "─ best  • complete  x pruned  x failed (no value)" in lines[axis + 2]


async def test_the_trial_detail_at_80x24_shows_the_parameters_and_c_copies_them_in_tmux(tmp_path, monkeypatch):
    """The detail fits 80x24 (it showed `[space]` and a cut header); `c` in tmux, whose default drops OSC 52
    from applications, fills tmux's paste buffer, and always writes the params to a file of the run."""
    from tui_fakes import screen_lines

    from tui.screens import modals

    buffers: list[str] = []
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    monkeypatch.setattr(modals, "tmux_buffer", lambda text: buffers.append(text) or True)
    config = StudyConfig(out_dir=str(tmp_path))
    app = TunedeckApp(config, runner_factory=factory())
    async with app.run_test(size=(80, 24)) as pilot:
        await finished_dashboard(pilot, app)
        await pilot.press("g", "enter")
        await pilot.pause(0.3)
        detail = app.screen
        assert isinstance(detail, modals.TrialDetailScreen)
        shown = "\n".join(screen_lines(app))
        assert "layer_num = 2" in shown and "first_layer_unit = 64" in shown and "batch_size = 128" in shown
        header = detail.query_one(Label)
        text = " ".join(strip.text for strip in header.render_lines(header.size.region))
        assert "test acc 0.9000" in " ".join(text.split()) and "worker" in text
        await pilot.press("c")
        await pilot.pause()
        written = config.run_dir / "trial-0-params.toml"
        assert buffers == [detail.params_toml] and written.read_text() == detail.params_toml
        message = str(list(app._notifications)[-1].message)
        assert "tmux's paste buffer" in message and str(written.resolve()) in message
