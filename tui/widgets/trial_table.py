"""The trials table: one row per trial, added or updated in O(1) per event; a repaint renders only changed cells."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from engine import BestChanged, Objective, TrialFinished, TrialStarted
from engine.report import number_text
from tui.formatting import state_markup

BEST_MARK = "[b yellow]★[/]"
WORKER_WIDTH = 18
FIXED_COLUMNS = (("#", "number", 5), ("state", "state", 8), ("value", "value", 6), ("test acc", "test", 8),
                 ("epochs", "epochs", 6), ("time", "time", 7))
UNFINISHED = ("PRUNED", "FAIL")  # hidden by `f`, and sorted last by value
SCREENFUL = 100  # rows, for DataTable's caches
ROW_CACHE_SIZE = 500  # rendered rows kept, least recently used dropped (a screen shows a few dozen)


class TrialTable(DataTable):
    """Trials by number; the best row is starred; `v` sorts by value, `n` by number; `f` hides pruned and
    failed trials.

    Events are queued by `push` (O(1)) and applied by `flush` on the screen's timer, so a burst of trials
    costs one layout and one repaint instead of one per event. Every row's cells are kept, shown or not, so
    the filter can bring hidden rows back.

    DataTable drops every rendered cell whenever any cell changes, so a stream of trials re-rendered each
    visible cell on every frame (90-135 ms at 160x48). Rendered rows are kept here by what decides their
    look (the row's version, position, column widths, style, cursor), so a frame renders only changed rows."""

    DEFAULT_CSS = "TrialTable { height: 1fr; }"
    BINDINGS = [Binding("v", "sort_by_value", "Sort by value", id="table.sort_value"),
                Binding("n", "sort_by_number", "Sort by #", id="table.sort_number"),
                Binding("f", "toggle_unfinished", "Hide pruned/failed", id="table.filter")]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.param_names: tuple[str, ...] = ()
        self.best_key: str | None = None
        self.pending: list[TrialStarted | TrialFinished | BestChanged] = []
        self.cells: dict[str, dict[str, Any]] = {}  # every trial's cells by column key, shown or hidden
        self.states: dict[str, str] = {}
        self.values: dict[str, float | None] = {}  # finished trials' values, for `v`
        self.goal = Objective()  # the study's (StudyStarted.goal): which values sort first
        self.hide_unfinished = False
        self.versions: dict[str, int] = {}  # by row: bumped when a cell of the row changes
        # DataTable keys its own render caches by a counter that every cell update bumps, so at 10,000 entries
        # they hold mostly stale renders: a quarter of a million objects for each full garbage collection to
        # walk (150-300 ms pauses while trials stream in). With the row cache below, a screenful is enough.
        self._row_render_cache = LRUCache(SCREENFUL)
        self._cell_render_cache = LRUCache(SCREENFUL * 20)
        self._row_renderable_cache = LRUCache(SCREENFUL)
        self._line_cache = LRUCache(SCREENFUL * 2)
        self.rendered: LRUCache[tuple, tuple[list[list[Segment]], list[list[Segment]]]] = LRUCache(ROW_CACHE_SIZE)

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate) -> tuple[list[list[Segment]], list[list[Segment]]]:
        """A row's rendered cells, kept until the row changes, moves, or the cursor comes or goes."""
        if row_key is self._header_row_key or self.cursor_type != "row" or row_key not in self._row_locations:
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        row_index = self._row_locations.get(row_key)
        key = (row_key.value, self.versions.get(row_key.value, 0), row_index, line_no, base_style,
               cursor_location.row == row_index, hover_location.row == row_index, self.show_cursor,
               self._show_hover_cursor, self._pseudo_class_state,
               tuple(column.get_render_width(self) for column in self.ordered_columns))
        lines = self.rendered.get(key)
        if lines is None:
            lines = super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
            self.rendered.set(key, lines)
        return lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.rendered.clear()

    def _set_cell(self, key: str, column: str, value: Any) -> None:
        self.versions[key] = self.versions.get(key, 0) + 1
        self.update_cell(key, column, value)

    def push(self, event: TrialStarted | TrialFinished | BestChanged) -> None:
        self.pending.append(event)

    def flush(self) -> None:
        """Apply the queued events in order."""
        pending, self.pending = self.pending, []
        for event in pending:
            match event:
                case TrialStarted():
                    self.trial_started(event)
                case TrialFinished():
                    self.trial_finished(event)
                case BestChanged():
                    self.mark_best(event.number)

    def set_params(self, names: tuple[str, ...]) -> None:
        """(Re)build the columns; called once per study, before any row."""
        self.clear(columns=True)
        self.param_names = names
        self.best_key = None
        self.cells.clear()
        self.states.clear()
        self.versions.clear()
        self.rendered.clear()
        # Fixed widths: updating a cell of an auto-width column re-measures the whole column (O(rows)).
        self.add_column(" ", key="best", width=1)
        for label, key, width in FIXED_COLUMNS:
            self.add_column(label, key=key, width=width)
        for name in names:
            self.add_column(name, key=f"p.{name}")
        self.add_column("worker", key="worker", width=WORKER_WIDTH)

    def _params(self, params: dict) -> dict[str, str]:
        return {f"p.{name}": str(params[name]) for name in self.param_names if name in params}

    def visible(self, key: str) -> bool:
        return not (self.hide_unfinished and self.states.get(key) in UNFINISHED)

    def _show(self, key: str, changed: dict[str, Any]) -> None:
        """Add the row, update the changed cells of a shown row, or remove a row the filter now hides."""
        if not self.visible(key):
            if key in self.rows:
                self.remove_row(key)
            return
        if key not in self.rows:
            cells = self.cells[key]
            self.add_row(*(cells.get(column, "") for column in self.columns), key=key)
            return
        for column, value in changed.items():
            self._set_cell(key, column, value)

    def trial_started(self, event: TrialStarted) -> None:
        key = str(event.number)
        if key in self.cells:
            return
        self.states[key] = "RUNNING"
        self.cells[key] = {"best": "", "number": event.number, "state": state_markup("RUNNING"), "value": "-",
                           "test": "-", "epochs": "-", "time": "-", **self._params(event.params),
                           "worker": event.worker}
        self._show(key, {})

    def trial_finished(self, event: TrialFinished) -> None:
        key = str(event.number)
        changed = {"state": state_markup(event.state), "value": number_text(event.value),
                   "test": number_text(event.test_accuracy), "epochs": str(event.epochs_trained),
                   "time": f"{event.duration:.1f}s"}
        known = self.cells.setdefault(key, {"best": "", "number": event.number, "worker": event.worker})
        changed.update({column: value for column, value in self._params(event.params).items()
                        if known.get(column) != value})  # another worker's row, seen before all were drawn
        known.update(changed)
        self.states[key] = event.state
        self.values[key] = event.value
        self._show(key, changed)

    def mark_best(self, number: int) -> None:
        key = str(number)
        if self.best_key is not None and self.best_key in self.cells:
            self.cells[self.best_key]["best"] = ""  # the old best loses its star
            if self.best_key in self.rows:
                self._set_cell(self.best_key, "best", "")
        if key in self.cells:
            self.cells[key]["best"] = BEST_MARK
            if key in self.rows:
                self._set_cell(key, "best", BEST_MARK)
        self.best_key = key

    def action_sort_by_value(self) -> None:
        """Best first (the lowest for a loss); pruned and failed trials (a partial curve's value, or none) after
        every complete one, running ones last."""
        keys = sorted((key.value for key in self.rows),
                      key=lambda key: (self.states.get(key) in UNFINISHED, self.goal.sort_key(self.values.get(key))))
        rank = {int(key): index for index, key in enumerate(keys)}
        self.sort("number", key=lambda number: rank[number])

    def action_sort_by_number(self) -> None:
        self.sort("number")

    def action_toggle_unfinished(self) -> None:
        """Hide (or show again) pruned and failed trials: the rows are rebuilt from the kept cells."""
        self.hide_unfinished = not self.hide_unfinished
        self.clear()
        for key in sorted(self.cells, key=int):
            self._show(key, {})
        self.notify("pruned and failed trials hidden" if self.hide_unfinished else "every trial shown", timeout=2)
