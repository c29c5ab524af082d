"""Snapshot tests of the setup and run screens (textual is pinned in the test extra).

Update after an intended change of the look with: pytest tests/test_snapshots.py --snapshot-update
"""

import pytest
from tui_fakes import factory

from engine import StudyConfig
from tui.app import TunedeckApp
from tui.screens import run as run_module
from tui.screens import setup as setup_screen
from tui.screens.run import RunScreen
from tui.widgets.best_panel import BestPanel
from tui.widgets.charts import ThrottledPlot


@pytest.fixture
def pinned_clock(monkeypatch):
    monkeypatch.setattr(RunScreen, "clock", staticmethod(lambda: 1000.0))
    monkeypatch.setattr(run_module, "wall_clock", lambda: "12:00:00")


@pytest.fixture
def cpu_box(monkeypatch):
    """The same machine everywhere: the setup form lists the GPUs and CPU cores it finds."""
    monkeypatch.setattr(setup_screen, "visible_gpus", lambda: [])
    monkeypatch.setattr(setup_screen, "cpu_cores", lambda: 2)


SIZES = [(80, 24), (120, 35), (200, 60)]  # an SSH default, a tmux split of a laptop, a big monitor


@pytest.mark.parametrize("size", [(120, 40), *SIZES], ids=lambda size: f"{size[0]}x{size[1]}")
def test_setup_screen(snap_compare, cpu_box, size):
    app = TunedeckApp(StudyConfig(model="cnn", dataset="mnist-5k", out_dir="runs"), runner_factory=factory())

    async def gpus_listed(pilot):
        for _ in range(200):  # the GPUs and the data's shape are read in threads
            if ("CPU cores" in str(app.screen.query_one("#gpu-note").render())
                    and "classes" in str(app.screen.query_one("#data-info").render())):
                break
            await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=size, run_before=gpus_listed)


@pytest.mark.parametrize("size", [(140, 44), *SIZES], ids=lambda size: f"{size[0]}x{size[1]}")
def test_run_screen(snap_compare, pinned_clock, size):
    app = TunedeckApp(StudyConfig(model="mlp", dataset="mnist-5k", out_dir="runs"), runner_factory=factory())

    async def finished(pilot):
        await pilot.press("ctrl+r")
        for _ in range(200):
            if isinstance(app.screen, RunScreen) and app.screen.state == "finished":
                break
            await pilot.pause(0.05)
        await pilot.pause(0.6)  # let the charts' redraw timer run
        for _ in range(200):  # and their builds (in threads) come back
            if all(chart.idle for chart in app.screen.query(ThrottledPlot) if chart.size.area):  # hidden: never
                break
            await pilot.pause(0.05)
        app.clear_notifications()  # the "Study ended" toast and the new best's flash time out: whether they
        app.screen.query_one(BestPanel).remove_class("-new")  # show would depend on timing
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=finished)
