"""The run screen at any terminal size: side by side when there is room, stacked with one chart when there is
not (charts never shrink below what can be read: fewer charts, not smaller ones), and any panel zoomed."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.geometry import Size

from tui.widgets.best_panel import BestPanel

COMPACT_BELOW = Size(140, 40)  # narrower or lower: the table above one chart, the log on `5` (120x35 reads better so)
PANELS = {"table": "#trials", "history": "#history", "curves": "#curves", "importances": "#importances",
          "log": "#log"}
CHARTS = ("#history", "#curves", "#importances")
LAYOUT_BINDINGS = [
    Binding("1", "zoom('table')", "Table", id="run.zoom_table"),
    Binding("2", "zoom('history')", "History", id="run.zoom_history"),
    Binding("3", "zoom('curves')", "Curves", id="run.zoom_curves"),
    Binding("4", "zoom('importances')", "Importances", id="run.zoom_importances"),
    Binding("5", "zoom('log')", "Log", id="run.zoom_log"),
    Binding("tab", "cycle_chart(1)", "Next chart", id="run.next_chart"),
    Binding("shift+tab", "cycle_chart(-1)", "Previous chart", id="run.previous_chart", show=False),
]


class ZoomableLayout:
    """Mixed into RunScreen. `1`-`5` fill the screen with one panel (Textual's maximize); the same key or
    `escape` brings the dashboard back. Resizing re-lays out at once and keeps every row, chart and line."""

    shown_chart = 0  # in the stacked layout: which of CHARTS is shown

    def on_resize(self, event: events.Resize) -> None:
        self.fit_to(event.size)

    def fit_to(self, size: Size) -> None:
        compact = size.width < COMPACT_BELOW.width or size.height < COMPACT_BELOW.height
        self.set_class(compact, "-compact")
        self.query_one(BestPanel).compact = compact
        self.show_chart(self.shown_chart)

    def show_chart(self, index: int) -> None:
        self.shown_chart = index % len(CHARTS)
        for position, selector in enumerate(CHARTS):
            self.query_one(selector).set_class(position == self.shown_chart, "-shown")

    def action_cycle_chart(self, step: int) -> None:
        self.show_chart(self.shown_chart + step)

    @property
    def from_picker(self) -> bool:
        from tui.screens.picker import StudyPickerScreen

        stack = self.app.screen_stack
        return len(stack) > 1 and isinstance(stack[-2], StudyPickerScreen) and stack[-1] is self

    def action_back_to_studies(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.from_picker:
            self.source.close()  # the workers go on
            self.app.pop_screen()

    def action_zoom(self, panel: str) -> None:
        widget = self.query_one(PANELS[panel])
        if self.maximized is widget:
            self.minimize()
        else:
            self.maximize(widget, container=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cycling charts only matters when one chart is shown; a watching view has no setup to go back to."""
        if action == "cycle_chart":
            return self.has_class("-compact") and self.maximized is None
        if action == "back_to_studies":  # escape: out of a zoomed panel, else back to the picker it came from
            return self.maximized is not None or self.from_picker
        started_here = self.source.trains_here or self.source.owns_workers  # a view only has no setup to go back to
        return not (action == "back_to_setup" and not started_here)
