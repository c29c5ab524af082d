"""`/` on the run screen: filter the trials table by text or `name=value` terms, as it streams."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input, Static

from engine import ConfigError
from tui.widgets.trial_table import TrialTable

FILTER_HINT = "filter: text, or name=value, name>0.9 … (enter keeps it, escape clears it)"
FILTER_BINDINGS = [Binding("slash", "filter", "Filter", id="run.filter")]


class FilterInput(Input):
    """The filter's line under the table; `escape` clears the filter and goes back to the table."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", id="filter.clear")]

    def action_clear_filter(self) -> None:
        self.value = ""
        self.screen.close_filter()


class FilterActions:
    """Mixed into RunScreen: the filter line, and the line under the table that says what is hidden."""

    table_state_text: str | None = None  # what the line under the table shows

    def action_filter(self) -> None:
        line = self.query_one(FilterInput)
        line.display = True
        line.focus()

    def close_filter(self) -> None:
        self.query_one(FilterInput).display = False
        self.query_one(TrialTable).focus()
        self.show_table_state()

    def on_input_changed(self, event: Input.Changed) -> None:
        if not isinstance(event.input, FilterInput):
            return
        try:
            self.query_one(TrialTable).set_filter(event.value)
        except ConfigError as error:
            self.query_one(FilterInput).border_subtitle = str(error)
            return
        self.query_one(FilterInput).border_subtitle = ""
        self.show_table_state()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if isinstance(event.input, FilterInput):
            self.close_filter()

    def show_table_state(self) -> None:
        """Under the table, only while something hides rows: the filter, the hidden states, the count shown."""
        text = self.query_one(TrialTable).shown_text
        state = self.query_one("#table-state", Static)
        if text != self.table_state_text:
            self.table_state_text = text
            state.display = bool(text)
            state.update(text)
