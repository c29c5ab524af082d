"""The trials table: one row per trial, added or updated in O(1) per event; a repaint renders only changed cells.
Sorted by any column, filtered by text or parameter, following the newest trial unless the user moved."""

from __future__ import annotations

import operator
import re
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from engine import BestChanged, ConfigError, Objective, TrialFinished, TrialStarted
from engine.report import number_text, param_text
from tui.formatting import state_markup

BEST_MARK = "[b yellow]★[/]"
WORKER_WIDTH = 18
FIXED_COLUMNS = (("#", "number", 5), ("state", "state", 8), ("value", "value", 6), ("test acc", "test", 8),
                 ("epochs", "epochs", 6), ("time", "time", 7))
UNFINISHED = ("PRUNED", "FAIL")  # hidden by `f`, and sorted last by value
SCREENFUL = 100  # rows, for DataTable's caches
ROW_CACHE_SIZE = 500  # rendered rows kept, least recently used dropped (a screen shows a few dozen)
# Following moves the cursor only when a tick brings a few rows: a burst (a resume's replay, a stream faster than
# anyone reads) would render a screenful of new rows every tick; the cursor catches up when the burst ends.
FOLLOW_MOST = 4
TERM = re.compile(r"^([^\s=<>!]+)(=|!=|<=|>=|<|>)(.+)$")  # a filter term on one column: name=value, name>0.9
COMPARE = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le,
           ">=": operator.ge}


def as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def term_test(term: str, columns: dict[str, str]):
    """A filter term as a test of a row's raw values: `name=value` (`!=`, `<`, `>`, `<=`, `>=`) on the column
    named `name` (a parameter, or #, state, value, test, epochs, time, worker); any other text is searched for in
    every cell."""
    match = TERM.match(term)
    if match is None:
        needle = term.lower()
        return lambda raw: any(needle in str(value).lower() for value in raw.values())
    name, sign, wanted = match.groups()
    column = columns.get(name.lower())
    if column is None:
        raise ConfigError(f"filter: no column {name!r}; columns are {', '.join(columns)}")
    number = as_number(wanted)
    compare = COMPARE[sign]

    def test(raw: dict[str, Any]) -> bool:
        value = raw.get(column)
        if number is not None and as_number(value) is not None:
            return compare(as_number(value), number)
        if sign in ("=", "!="):
            return compare(str(value).lower(), wanted.lower())
        return False

    return test


class TrialTable(DataTable):
    """Trials by number; the best row is starred; `<`/`>` pick the sort column, `I` inverts it, `v` sorts by value
    (best first), `n` by number; the sort is shown in the header and kept while rows stream in; `f` hides pruned
    and failed trials; `set_filter` keeps the rows that match text or `name=value` terms. At the last row, the cursor
    follows each new trial.

    Events are queued by `push` (O(1)) and applied by `flush` on the screen's timer, so a burst of trials
    costs one layout and one repaint instead of one per event. Every row's cells are kept, shown or not, so
    the filter can bring hidden rows back.

    DataTable drops every rendered cell whenever any cell changes, so a stream of trials re-rendered each
    visible cell on every frame (90-135 ms at 160x48). Rendered rows are kept here by what decides their
    look (the row's version, position, column widths, style, cursor), so a frame renders only changed rows."""

    DEFAULT_CSS = "TrialTable { height: 1fr; }"
    BINDINGS = [Binding("v", "sort_by_value", "Sort by value", id="table.sort_value"),
                Binding("n", "sort_by_number", "Sort by #", id="table.sort_number"),
                Binding("greater_than_sign", "sort_column(1)", "Sort by next column", id="table.sort_next"),
                Binding("less_than_sign", "sort_column(-1)", "Sort by previous column", id="table.sort_previous"),
                Binding("I", "invert_sort", "Invert sort", id="table.sort_invert"),
                Binding("f", "toggle_unfinished", "Hide pruned/failed", id="table.filter"),
                Binding("j", "cursor_down", "Down", id="table.down", show=False),
                Binding("k", "cursor_up", "Up", id="table.up", show=False),
                Binding("g", "scroll_top", "First trial", id="table.first", show=False),
                Binding("G", "scroll_bottom", "Last trial (follows new ones)", id="table.last", show=False)]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, fixed_columns=2, **kwargs)
        self.param_names: tuple[str, ...] = ()
        self.best_key: str | None = None
        self.pending: list[TrialStarted | TrialFinished | BestChanged] = []
        self.cells: dict[str, dict[str, Any]] = {}  # every trial's cells by column key, shown or hidden
        self.raw: dict[str, dict[str, Any]] = {}  # every trial's values by column key: what sorts and filters
        self.goal = Objective()  # the study's (StudyStarted.goal): which values sort first
        self.hide_unfinished = False
        self.filter_text = ""
        self.filter_tests: list = []
        self.sort_key, self.sort_reverse = "number", False
        self.following, self.followed_row = True, 0  # the cursor follows the newest row unless the user moved
        self.versions: dict[str, int] = {}  # by row: bumped when a cell of the row changes
        # DataTable keys its own render caches by a counter that every cell update bumps, so at 10,000 entries
        # they hold mostly stale renders: a quarter of a million objects for each full garbage collection to
        # walk (150-300 ms pauses while trials stream in). With the row cache below, a screenful is enough.
        self._row_render_cache = LRUCache(SCREENFUL)
        self._cell_render_cache = LRUCache(SCREENFUL * 20)
        self._row_renderable_cache = LRUCache(SCREENFUL)
        self._line_cache = LRUCache(SCREENFUL * 2)
        self.rendered: LRUCache[tuple, tuple[list[list[Segment]], list[list[Segment]]]] = LRUCache(ROW_CACHE_SIZE)
        self.strips: LRUCache[tuple, Strip] = LRUCache(ROW_CACHE_SIZE)

    def row_look(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                 hover_location: Coordinate) -> tuple | None:
        """What decides how a line of a trial's row looks; None for the header (DataTable renders it)."""
        if row_key is self._header_row_key or self.cursor_type != "row" or row_key not in self._row_locations:
            return None
        row_index = self._row_locations.get(row_key)
        return (row_key.value, self.versions.get(row_key.value, 0), row_index, line_no, base_style,
                cursor_location.row == row_index, hover_location.row == row_index, self.show_cursor,
                self._show_hover_cursor, self._pseudo_class_state,
                tuple(column.get_render_width(self) for column in self.ordered_columns))

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """A cropped line, kept while its row looks the same: DataTable's own line cache is dropped by any cell
        update or cursor move anywhere, so a frame cropped every visible line again (40 ms at 160x48)."""
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        look = self.row_look(row_key, line_no, base_style, self.cursor_coordinate, self.hover_coordinate)
        if look is None:
            return super()._render_line(y, x1, x2, base_style)
        key = (look, x1, x2, self.size.width)
        strip = self.strips.get(key)
        if strip is None:
            strip = super()._render_line(y, x1, x2, base_style)
            self.strips.set(key, strip)
        return strip

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate) -> tuple[list[list[Segment]], list[list[Segment]]]:
        """A row's rendered cells, kept until the row changes, moves, or the cursor comes or goes."""
        key = self.row_look(row_key, line_no, base_style, cursor_location, hover_location)
        if key is None:
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        lines = self.rendered.get(key)
        if lines is None:
            lines = super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
            self.rendered.set(key, lines)
        return lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.rendered.clear()
        self.strips.clear()

    def _set_cell(self, key: str, column: str, value: Any) -> None:
        self.versions[key] = self.versions.get(key, 0) + 1
        self.update_cell(key, column, value)

    def push(self, event: TrialStarted | TrialFinished | BestChanged) -> None:
        self.pending.append(event)

    def flush(self) -> None:
        """Apply the queued events in order; keep the sort; at the last row, follow the newest trial."""
        pending, self.pending = self.pending, []
        if not pending:
            caught_up = self.cursor_row != self.followed_row or self.followed_row >= self.row_count - 1
            if self.following and not self.sorted_otherwise and not caught_up:
                self.follow()  # a burst has ended: catch up with the newest row
            return
        rows = self.row_count
        if rows == 0 or self.cursor_row >= rows - 1:
            self.following = True  # at the last row (again): follow
        elif self.cursor_row != self.followed_row:
            self.following = False  # the user moved off it
        for event in pending:
            match event:
                case TrialStarted():
                    self.trial_started(event)
                case TrialFinished():
                    self.trial_finished(event)
                case BestChanged():
                    self.mark_best(event.number)
        if self.sorted_otherwise:
            self.apply_sort()
        elif self.following and 0 < self.row_count - rows <= FOLLOW_MOST:
            self.follow()

    def follow(self) -> None:
        self.move_cursor(row=self.row_count - 1)
        self.followed_row = self.row_count - 1

    @property
    def sorted_otherwise(self) -> bool:
        """Sorted by something else than trial number, oldest first (the order rows arrive in)."""
        return (self.sort_key, self.sort_reverse) != ("number", False)

    def set_params(self, names: tuple[str, ...], gpu: bool = False) -> None:
        """(Re)build the columns; called once per study, before any row. `gpu`: a column of each trial's peak GPU
        memory (a study on GPUs)."""
        self.clear(columns=True)
        self.param_names = names
        self.best_key = None
        self.cells.clear()
        self.raw.clear()
        self.versions.clear()
        self.rendered.clear()
        self.strips.clear()
        # Fixed widths: updating a cell of an auto-width column re-measures the whole column (O(rows)).
        self.add_column(" ", key="best", width=1)
        for label, key, width in FIXED_COLUMNS:
            self.add_column(label, key=key, width=width)
        for name in names:
            self.add_column(name, key=f"p.{name}")
        if gpu:
            self.add_column("GPU MB", key="gpu", width=6)
        self.add_column("worker", key="worker", width=WORKER_WIDTH)
        self.show_sort()

    @property
    def column_names(self) -> dict[str, str]:
        """Column keys by the names a filter term uses."""
        names = {"#": "number", "number": "number", "state": "state", "value": "value", "test": "test",
                 "epochs": "epochs", "time": "time", "worker": "worker", "gpu": "gpu"}
        return names | {name.lower(): f"p.{name}" for name in self.param_names}

    def _params(self, params: dict) -> dict[str, str]:
        return {f"p.{name}": param_text(params[name]) for name in self.param_names if name in params}

    def _raw_params(self, params: dict) -> dict[str, Any]:
        return {f"p.{name}": params[name] for name in self.param_names if name in params}

    def visible(self, key: str) -> bool:
        raw = self.raw.get(key, {})
        if self.hide_unfinished and raw.get("state") in UNFINISHED:
            return False
        return all(test(raw) for test in self.filter_tests)

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
        self.raw[key] = {"number": event.number, "state": "RUNNING", "worker": event.worker,
                         **self._raw_params(event.params)}
        self.cells[key] = {"best": "", "number": event.number, "state": state_markup("RUNNING"), "value": "-",
                           "test": "-", "epochs": "-", "time": "-", **self._params(event.params),
                           "worker": event.worker}
        self._show(key, {})

    def trial_finished(self, event: TrialFinished) -> None:
        key = str(event.number)
        changed = {"state": state_markup(event.state), "value": number_text(event.value),
                   "test": number_text(event.test_accuracy), "epochs": str(event.epochs_trained),
                   "time": f"{event.duration:.1f}s"}
        if "gpu" in self.columns:
            changed["gpu"] = "-" if event.gpu_peak_mb is None else f"{event.gpu_peak_mb:.0f}"
        known = self.cells.setdefault(key, {"best": "", "number": event.number, "worker": event.worker})
        changed.update({column: value for column, value in self._params(event.params).items()
                        if known.get(column) != value})  # another worker's row, seen before all were drawn
        if event.worker and known.get("worker") != event.worker:  # started before its worker was recorded
            changed["worker"] = event.worker
        known.update(changed)
        self.raw[key] = {"number": event.number, "state": event.state, "value": event.value,
                         "test": event.test_accuracy, "epochs": event.epochs_trained, "time": event.duration,
                         "worker": event.worker, "gpu": event.gpu_peak_mb, **self._raw_params(event.params)}
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

    def order_key(self, key: str) -> tuple:
        """Where a row goes under the current sort: by value, the best first (the lowest for a loss), pruned and
        failed trials after every complete one, running ones last; by any other column, its values in order,
        empty cells last."""
        raw = self.raw.get(key, {})
        if self.sort_key == "value":
            return raw.get("state") in UNFINISHED, self.goal.sort_key(raw.get("value"))
        value = raw.get(self.sort_key)
        number = as_number(value)
        return (value is None, number is None, number if number is not None else str(value))

    def apply_sort(self) -> None:
        keys = sorted((key.value for key in self.rows), key=self.order_key)
        if self.sort_reverse:  # rows without a value in the column (running trials) stay last
            empty = [key for key in keys if self.raw.get(key, {}).get(self.sort_key) is None]
            keys = [key for key in keys if self.raw.get(key, {}).get(self.sort_key) is not None][::-1] + empty
        rank = {int(key): index for index, key in enumerate(keys)}
        self.sort("number", key=lambda number: rank[number])

    def sort_by(self, column: str, reverse: bool = False) -> None:
        self.sort_key, self.sort_reverse = column, reverse
        self.apply_sort()
        self.show_sort()

    def show_sort(self) -> None:
        """The sorted column's header carries ▲ (ascending; for values: best first) or ▼."""
        arrow = "▼" if self.sort_reverse else "▲"
        for key, column in self.columns.items():
            label = column.label.plain.rstrip(" ▲▼")
            column.label = Text(f"{label} {arrow}" if key.value == self.sort_key else label)
        self._require_update_dimensions = True
        self.refresh()

    def action_sort_by_value(self) -> None:
        self.sort_by("value")

    def action_sort_by_number(self) -> None:
        self.sort_by("number")

    def action_sort_column(self, step: int) -> None:
        keys = [key.value for key in self.columns if key.value != "best"]
        self.sort_by(keys[(keys.index(self.sort_key) + step) % len(keys)])

    def action_invert_sort(self) -> None:
        self.sort_by(self.sort_key, not self.sort_reverse)

    def set_filter(self, text: str) -> None:
        """Keep the rows that match every term of `text` (ConfigError names a term's unknown column)."""
        columns = self.column_names
        self.filter_tests = [term_test(term, columns) for term in text.split()]
        self.filter_text = text.strip()
        self.rebuild()

    def action_toggle_unfinished(self) -> None:
        self.hide_unfinished = not self.hide_unfinished
        self.rebuild()
        self.notify("pruned and failed trials hidden" if self.hide_unfinished else "every trial shown", timeout=2)

    def rebuild(self) -> None:
        """Rows again from the kept cells, after the filter changed, in the current sort."""
        self.clear()
        for key in sorted(self.cells, key=int):
            self._show(key, {})
        if self.sorted_otherwise:
            self.apply_sort()

    @property
    def shown_text(self) -> str:
        """What hides rows, for the line under the table; empty when every trial is shown."""
        parts = [f"filter {self.filter_text!r}"] if self.filter_text else []
        parts += ["pruned/failed hidden"] if self.hide_unfinished else []
        return f"{' · '.join(parts)} · {self.row_count} of {len(self.cells)} trials shown" if parts else ""
