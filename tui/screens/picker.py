"""The study picker of `tunedeck watch` without a study name: the studies of one storage, or of every storage
`tunedeck run` left under the current folder; `enter` opens one, `escape` there comes back; `space` marks studies and
`c` compares the marked ones side by side. It refreshes itself."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from engine.report import number_text
from engine.store import mask_url
from tui.widgets.footer import PriorityFooter

REFRESH_SECONDS = 5.0
KEY_SEPARATOR = "\n"  # between a row key's storage URL and study name
MARK = "●"  # a study marked for compare


class StudyPickerScreen(Screen):
    """Name, trials, target, best value and start of each study; `enter` watches it, `space` marks it and `c`
    compares the marked ones."""

    BINDINGS = [Binding("space", "mark", "Mark", id="picker.mark", tooltip="Mark or unmark the study to compare"),
                Binding("c", "compare", "Compare", id="picker.compare",
                        tooltip="Compare the marked studies side by side"),
                Binding("q", "app.quit", "Quit", id="picker.quit"),
                Binding("f5", "reload", "Reload", id="picker.reload")]

    def __init__(self, storage_urls: list[str]) -> None:
        super().__init__()
        self.storage_urls = storage_urls
        self.marked: set[str] = set()  # row keys of the studies marked to compare

    def compose(self) -> ComposeResult:
        yield Header()
        where = mask_url(self.storage_urls[0]) if len(self.storage_urls) == 1 else \
            f"{len(self.storage_urls)} storages under this folder"
        yield Static(f"Studies in {where}: enter watches one, space marks, c compares", id="status")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="studies")
        yield PriorityFooter()

    def on_mount(self) -> None:
        self.title = "tunedeck · watch"
        table = self.query_one(DataTable)
        table.add_column(" ", key="mark", width=1)  # MARK on a marked study
        labels = ["study", *(["storage"] if len(self.storage_urls) > 1 else []), "trials", "target", "best", "started"]
        for label in labels:
            table.add_column(label, key=label)
        table.focus()
        self.action_reload()
        self.set_interval(REFRESH_SECONDS, self.action_reload)

    def action_reload(self) -> None:
        self.load_studies()

    @work(thread=True, exclusive=True, group="studies", exit_on_error=False)
    def load_studies(self) -> None:
        """Read the studies off the UI thread."""
        from engine.store import list_studies

        rows, errors = [], []
        for url in self.storage_urls:
            try:
                rows += list_studies(url)
            except Exception as exc:  # noqa: BLE001 - shown on the screen
                errors.append(str(exc))
        self.app.call_from_thread(self.show_rows, rows, errors)

    def show_rows(self, rows, errors: list[str]) -> None:
        table = self.query_one(DataTable)
        selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear()
        several = len(self.storage_urls) > 1
        for row in rows:
            when = row.started.strftime("%Y-%m-%d %H:%M") if row.started else "-"
            best = number_text(row.best) + (" (min)" if row.direction == "minimize" else "")
            storage = [mask_url(row.storage)] if several else []
            key = f"{row.storage}{KEY_SEPARATOR}{row.name}"
            table.add_row(MARK if key in self.marked else "", row.name, *storage, row.n_trials, row.target or "-", best,
                          when, key=key)
        keys = [str(key.value) for key in table.rows]
        if selected in keys:
            table.move_cursor(row=keys.index(selected))
        status = self.query_one("#status", Static)
        if errors:
            status.update(f"[red]{errors[0]}[/red] (retrying every {REFRESH_SECONDS:g} s)")
        elif not rows:
            status.update(f"No study yet (refreshing every {REFRESH_SECONDS:g} s)")
        else:
            status.update(self.ready_status())

    @on(DataTable.RowSelected)
    def open_study(self, event: DataTable.RowSelected) -> None:
        url, name = str(event.row_key.value).split(KEY_SEPARATOR, 1)
        self.app.watch_study(url, name, from_picker=True)

    def ready_status(self) -> str:
        keys = {str(key.value) for key in self.query_one(DataTable).rows}
        marked = f", {len(self.marked & keys)} marked" if self.marked & keys else ""
        return (f"{len(keys)} studies{marked}: enter watches, space marks, c compares (updated every "
                f"{REFRESH_SECONDS:g} s)")

    def cursor_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_mark(self) -> None:
        """Mark or unmark the study under the cursor, and go to the next one."""
        key = self.cursor_key()
        if key is None:
            return
        table = self.query_one(DataTable)
        self.marked ^= {key}
        table.update_cell(key, "mark", MARK if key in self.marked else "")
        self.query_one("#status", Static).update(self.ready_status())
        table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        """The marked studies side by side, in the list's order."""
        from tui.screens.compare import CompareScreen

        table = self.query_one(DataTable)
        keys = [str(key.value) for key in table.rows if str(key.value) in self.marked]
        if len(keys) < 2:
            self.notify(f"Mark at least two studies with space to compare them ({len(keys)} marked)",
                        severity="warning")
            return
        self.app.push_screen(CompareScreen([tuple(key.split(KEY_SEPARATOR, 1)) for key in keys]))
