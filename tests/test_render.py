"""The trials table and the charts repaint only what changed, and never show stale content."""

from textual.app import App, ComposeResult

from engine import BestChanged, TrialFinished, TrialStarted
from tui.widgets.charts import ImportancePlot
from tui.widgets.trial_table import TrialTable


class Panels(App):
    def compose(self) -> ComposeResult:
        yield TrialTable()
        yield ImportancePlot()


def line(table: TrialTable, y: int) -> str:
    return table.render_line(y).text


async def test_a_changed_row_is_drawn_again_and_the_others_are_kept():
    app = Panels()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(TrialTable)
        table.set_params(("units",))
        for number in range(3):
            table.push(TrialStarted(number, {"units": 64}, 5))
        table.flush()
        await pilot.pause()
        assert all("RUNNING" in line(table, y) for y in (1, 2, 3))
        kept = len(table.rendered)
        table.push(TrialFinished(1, "COMPLETE", 0.9123, {"units": 64}, 2.0, 0.95, 0.9123, 4))
        table.push(BestChanged(1, 0.9123, {"units": 64}, 0.95))
        table.flush()
        await pilot.pause()
        assert "COMPLETE" in line(table, 2) and "0.9123" in line(table, 2) and "★" in line(table, 2)
        assert "RUNNING" in line(table, 1) and "RUNNING" in line(table, 3)
        assert len(table.rendered) == kept + 1  # only row 1 was rendered again


async def test_a_chart_built_in_a_thread_shows_the_new_data():
    app = Panels()
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.query_one(ImportancePlot)
        await pilot.pause()
        assert "learning_rate" not in chart.render().plain
        chart.set({"learning_rate": 0.7, "units": 0.3})
        chart.redraw_if_dirty()
        assert chart.building
        for _ in range(100):
            await pilot.pause(0.02)
            if chart.idle:
                break
        assert chart.idle and "learning_rate" in chart.render().plain


async def test_render_caches_stay_small_while_trials_stream_in(monkeypatch):
    """Old renders are dropped (the collector walks every kept one), and rows drawn again after being dropped
    are right."""
    monkeypatch.setattr("tui.widgets.trial_table.ROW_CACHE_SIZE", 8)
    monkeypatch.setattr("tui.widgets.trial_table.SCREENFUL", 4)
    app = Panels()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(TrialTable)
        table.set_params(("units",))
        for number in range(60):
            table.push(TrialStarted(number, {"units": 64}, 5))
            table.flush()
            await pilot.pause()
            table.push(TrialFinished(number, "COMPLETE", 0.5 + number / 1000, {"units": 64}, 2.0, 0.9, 0.5, 4))
            table.flush()
            await pilot.pause()
        assert len(table.rendered) <= 8 and len(table._cell_render_cache) <= 80
        table.move_cursor(row=0)
        await pilot.pause()
        assert "0.5000" in line(table, 1) and "COMPLETE" in line(table, 1)
