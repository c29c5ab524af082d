"""The trials table: one row per trial, added or updated in O(1) per event."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from engine import BestChanged, TrialFinished, TrialStarted
from engine.report import number_text
from tui.formatting import state_markup

BEST_MARK = "[b yellow]★[/]"
WORKER_WIDTH = 18


class TrialTable(DataTable):
    """Trials by number; the best row is starred; `v` sorts by value.

    Events are queued by `push` (O(1)) and applied by `flush` on the screen's timer, so a burst of trials
    costs one layout and one repaint instead of one per event."""

    DEFAULT_CSS = "TrialTable { height: 1fr; }"
    BINDINGS = [Binding("v", "sort_by_value", "Sort by value", id="table.sort_value"),
                Binding("n", "sort_by_number", "Sort by #", id="table.sort_number")]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.param_names: tuple[str, ...] = ()
        self.best_key: str | None = None
        self.pending: list[TrialStarted | TrialFinished | BestChanged] = []
        self.incomplete: set[str] = set()  # rows added before all their parameters were drawn

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
        # Fixed widths: updating a cell of an auto-width column re-measures the whole column (O(rows)).
        self.add_column(" ", key="best", width=1)
        for label, key, width in (("#", "number", 5), ("state", "state", 8), ("value", "value", 6),
                                  ("test acc", "test", 8), ("epochs", "epochs", 6), ("time", "time", 7)):
            self.add_column(label, key=key, width=width)
        for name in names:
            self.add_column(name, key=f"p.{name}")
        self.add_column("worker", key="worker", width=WORKER_WIDTH)

    def _param_cells(self, params: dict) -> list[str]:
        return [str(params.get(name, "")) for name in self.param_names]

    def trial_started(self, event: TrialStarted) -> None:
        key = str(event.number)
        if key not in self.rows:
            self.add_row("", event.number, state_markup("RUNNING"), "-", "-", "-", "-",
                         *self._param_cells(event.params), event.worker, key=key)
            if len(event.params) < len(self.param_names):  # another worker's trial, seen mid-draw
                self.incomplete.add(key)

    def trial_finished(self, event: TrialFinished) -> None:
        key = str(event.number)
        cells = {"state": state_markup(event.state),
                 "value": number_text(event.value), "test": number_text(event.test_accuracy),
                 "epochs": str(event.epochs_trained), "time": f"{event.duration:.1f}s"}
        if key not in self.rows:
            self.add_row("", event.number, *cells.values(), *self._param_cells(event.params), event.worker, key=key)
            return
        for column, value in cells.items():
            self.update_cell(key, column, value)
        if key in self.incomplete:
            self.incomplete.discard(key)
            for name, value in zip(self.param_names, self._param_cells(event.params), strict=True):
                self.update_cell(key, f"p.{name}", value)

    def mark_best(self, number: int) -> None:
        key = str(number)
        if self.best_key is not None and self.best_key in self.rows:
            self.update_cell(self.best_key, "best", "")  # the old best loses its star
        if key in self.rows:
            self.update_cell(key, "best", BEST_MARK)
        self.best_key = key

    def action_sort_by_value(self) -> None:
        self.sort("value", key=lambda value: -1.0 if value == "-" else float(value), reverse=True)

    def action_sort_by_number(self) -> None:
        self.sort("number")
