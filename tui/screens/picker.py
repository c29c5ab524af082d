"""The study picker of `tunedeck watch` without a study name: the storage's studies; `enter` opens one."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from engine.report import number_text
from engine.store import mask_url


class StudyPickerScreen(Screen):
    """Name, trials by state, best value and last activity of each study; `enter` watches it."""

    BINDINGS = [Binding("q", "app.quit", "Quit", id="picker.quit"),
                Binding("f5", "reload", "Reload", id="picker.reload")]

    def __init__(self, storage_url: str) -> None:
        super().__init__()
        self.storage_url = storage_url

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Studies in {mask_url(self.storage_url)}: enter watches one", id="status")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="studies")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tunedeck · watch"
        table = self.query_one(DataTable)
        for label in ("study", "complete", "pruned", "failed", "running", "target", "best", "last activity"):
            table.add_column(label, key=label)
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        self.load_studies()

    @work(thread=True, exclusive=True, group="studies", exit_on_error=False)
    def load_studies(self) -> None:
        """Read the studies off the UI thread."""
        from engine.store import list_studies

        try:
            rows = list_studies(self.storage_url)
        except Exception as exc:  # noqa: BLE001 - shown on the screen
            self.app.call_from_thread(self.show_error, str(exc))
            return
        self.app.call_from_thread(self.show_rows, rows)

    def show_error(self, message: str) -> None:
        self.query_one("#status", Static).update(f"[red]{message}[/red]")
        self.notify(message, severity="error", timeout=10)

    def show_rows(self, rows) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            counts = row.counts
            when = row.last_activity.strftime("%Y-%m-%d %H:%M") if row.last_activity else "-"
            table.add_row(row.name, counts.get("COMPLETE", 0), counts.get("PRUNED", 0), counts.get("FAIL", 0),
                          counts.get("RUNNING", 0), row.n_trials or "-", number_text(row.best), when, key=row.name)
        if not rows:
            self.query_one("#status", Static).update(f"No study in {mask_url(self.storage_url)} yet")

    @on(DataTable.RowSelected)
    def open_study(self, event: DataTable.RowSelected) -> None:
        self.app.watch_study(self.storage_url, str(event.row_key.value))
