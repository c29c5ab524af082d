"""The trials table: one row per trial, added or updated in O(1) per event."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from engine import TrialFinished, TrialStarted

STATE_STYLE = {"RUNNING": "cyan", "COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}
BEST_MARK = "★"


def number_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class TrialTable(DataTable):
    """Trials by number; the best row is starred; `v` sorts by value."""

    DEFAULT_CSS = "TrialTable { height: 1fr; }"
    BINDINGS = [Binding("v", "sort_by_value", "Sort by value", id="table.sort_value"),
                Binding("n", "sort_by_number", "Sort by #", id="table.sort_number")]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.param_names: tuple[str, ...] = ()
        self.best_key: str | None = None
        self.values: dict[str, float] = {}

    def set_params(self, names: tuple[str, ...]) -> None:
        """(Re)build the columns; called once per study, before any row."""
        self.clear(columns=True)
        self.param_names = names
        self.best_key = None
        self.values.clear()
        self.add_column(" ", key="best", width=1)
        for label, key in (("#", "number"), ("state", "state"), ("value", "value"), ("test acc", "test"),
                           ("time", "time")):
            self.add_column(label, key=key)
        for name in names:
            self.add_column(name, key=f"p.{name}")

    def _param_cells(self, params: dict) -> list[str]:
        return [str(params.get(name, "")) for name in self.param_names]

    def trial_started(self, event: TrialStarted) -> None:
        key = str(event.number)
        if key not in self.rows:
            self.add_row("", event.number, Text("RUNNING", style=STATE_STYLE["RUNNING"]), "-", "-", "-",
                         *self._param_cells(event.params), key=key)

    def trial_finished(self, event: TrialFinished) -> None:
        key = str(event.number)
        cells = {"state": Text(event.state, style=STATE_STYLE.get(event.state, "")),
                 "value": number_text(event.value), "test": number_text(event.test_accuracy),
                 "time": f"{event.duration:.1f}s"}
        if key not in self.rows:
            self.add_row("", event.number, *cells.values(), *self._param_cells(event.params), key=key)
        else:
            for column, value in cells.items():
                self.update_cell(key, column, value, update_width=True)
        if event.state == "COMPLETE" and event.value is not None:
            self.values[key] = event.value

    def mark_best(self, number: int) -> None:
        key = str(number)
        if self.best_key is not None and self.best_key in self.rows:
            self.update_cell(self.best_key, "best", "")  # the old best loses its star
        if key in self.rows:
            self.update_cell(key, "best", Text(BEST_MARK, style="bold yellow"))
        self.best_key = key

    def action_sort_by_value(self) -> None:
        self.sort("value", key=lambda value: -1.0 if value == "-" else float(value), reverse=True)

    def action_sort_by_number(self) -> None:
        self.sort("number")
