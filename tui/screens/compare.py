"""The compare screen (the study picker's `c`): the marked studies side by side, the same table as `tunedeck
compare` fitted to the screen, and their best-so-far curves overlaid (against time, or `t`: trial number)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Static

from engine.report import best_so_far_curves, compare_text, read_columns
from tui.widgets.charts import ThrottledPlot, thin, trial_ticks
from tui.widgets.footer import PriorityFooter

COLOURS = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")  # one per study, in order


class CompareTable(Widget):
    """The comparison's text table, wrapped to this widget's width."""

    DEFAULT_CSS = "CompareTable { height: auto; padding: 0 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.columns: list = []

    def text(self, width: int) -> str:
        return compare_text(self.columns, max(width, 20)) if self.columns else ""

    def show(self, columns: list) -> None:
        self.columns = columns
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.text(width).splitlines()))

    def render(self) -> Text:
        return Text(self.text(self.size.width), no_wrap=True, overflow="crop")


class BestSoFarPlot(ThrottledPlot):
    """The best-so-far staircases of the studies of one objective, overlaid (panel `panel` of
    engine.report's best_so_far_curves: a study of another objective has a chart of its own)."""

    DEFAULT_CSS = "BestSoFarPlot { height: 1fr; min-height: 12; }"

    def __init__(self, panel: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.panel = panel
        self.columns: list | None = None  # None: not read yet
        self.by = "time"

    def show(self, columns: list, by: str) -> None:
        self.columns, self.by = columns, by
        self.dirty = True
        self.redraw_if_dirty()

    def snapshot(self) -> Any:
        if self.columns is None:
            return None
        xlabel, panels = best_so_far_curves(self.columns, self.by)
        return (xlabel, *panels[self.panel]) if self.panel < len(panels) else (xlabel, "", [])

    def draw(self, plt: Any, snapshot: Any) -> None:
        if snapshot is None:
            plt.title("Best so far: reading the studies…")
            return
        xlabel, ylabel, curves = snapshot
        if not curves:
            plt.title("Best so far: no study has a complete trial yet")
            return
        what = "time" if self.by == "time" else "trial number"
        plt.title(f"{ylabel.capitalize()} against {what}")
        last = 0.0
        for curve in curves:
            colour = COLOURS[curve.index % len(COLOURS)]
            plt.plot(*thin(curve.xs, curve.ys), color=colour, marker="braille", label=curve.title)
            plt.scatter([curve.best[0]], [curve.best[1]], color=colour, marker="dot")
            last = max(last, curve.xs[-1])
        plt.xlabel(xlabel)
        if self.by == "trial":
            plt.xlim(0, max(last, 1))
            plt.xticks(trial_ticks(int(last)))
        else:
            plt.xlim(0, last or 1)


class CompareScreen(Screen):
    """The studies at `addresses` ((storage URL, study name) each) side by side; `escape` goes back."""

    DEFAULT_CSS = """
    CompareScreen #compare-body { height: 1fr; }
    CompareScreen BestSoFarPlot { margin: 1 1 0 1; }
    """
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="compare.back", tooltip="Back to the studies"),
                Binding("t", "switch_axis", "Time/trial", id="compare.axis",
                        tooltip="Draw the curves against time or against trial number"),
                Binding("f5", "reload", "Reload", id="compare.reload"),
                Binding("q", "app.quit", "Quit", id="compare.quit")]

    def __init__(self, addresses: list[tuple[str, str]]) -> None:
        super().__init__()
        self.addresses = addresses
        self.columns: list = []
        self.by = "time"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Reading {len(self.addresses)} studies…", id="status")
        with VerticalScroll(id="compare-body"):
            yield CompareTable(id="compare-table")
            yield BestSoFarPlot(id="compare-chart-0")
        yield PriorityFooter()

    def on_mount(self) -> None:
        self.title = "tunedeck · compare"
        self.query_one("#compare-body").focus()
        self.action_reload()
        self.set_interval(0.2, self.redraw_charts)

    def redraw_charts(self) -> None:
        """A chart whose data changed while it was being built is built again."""
        for plot in self.query(BestSoFarPlot):
            plot.redraw_if_dirty()

    def action_reload(self) -> None:
        self.read_studies()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def read_studies(self) -> None:
        """Read the studies off the UI thread."""
        try:
            columns = read_columns(self.addresses)
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.app.call_from_thread(self.show_error, str(exc))
            return
        self.app.call_from_thread(self.show_columns, columns)

    def show_error(self, message: str) -> None:
        self.query_one("#status", Static).update(Text(f"{message} (f5 reads again)", style="red"))

    def show_columns(self, columns: list) -> None:
        self.columns = columns
        self.query_one(CompareTable).show(columns)
        panels = max(1, len(best_so_far_curves(columns, self.by)[1]))  # one chart per objective
        plots = list(self.query(BestSoFarPlot))
        for plot in plots[panels:]:
            plot.remove()
        for plot in plots[:panels]:
            plot.show(columns, self.by)
        for index in range(len(plots), panels):
            plot = BestSoFarPlot(index, id=f"compare-chart-{index}")
            plot.columns, plot.by = columns, self.by
            self.query_one("#compare-body").mount(plot)
        self.query_one("#status", Static).update(
            f"{len(columns)} studies side by side: t draws against {'trial number' if self.by == 'time' else 'time'},"
            f" escape goes back")

    def action_switch_axis(self) -> None:
        self.by = "trial" if self.by == "time" else "time"
        if self.columns:
            self.show_columns(self.columns)
