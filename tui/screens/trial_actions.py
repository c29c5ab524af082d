"""What the run screen does with one trial: its detail, retraining it on all the data, running it again."""

from __future__ import annotations

from textual import work
from textual.widgets import DataTable

from tui.messages import EngineEvent
from tui.screens.modals import TrialDetailScreen
from tui.widgets.trial_table import TrialTable


class TrialActions:
    """Mixed into RunScreen: `enter` opens a trial's detail, `t` retrains the selected trial, and the detail's
    `r` queues its parameters again. Engine work (training, storage writes) runs in thread workers."""

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """`enter` on a row: the trial's detail, whose `t` and `r` come back here."""
        trial = self.trials.get(int(event.row_key.value))
        if trial is None:
            self.notify("That trial is still running", severity="warning")
            return

        def chosen(action: str | None) -> None:
            if action == "retrain":
                self.retrain(trial.number)
            elif action == "requeue":
                self.run_again(trial.number)
            elif action == "get":
                self.get_model(trial.number)

        goal = self.started.goal if self.started else self.config.goal
        study = (self.config.storage_url, self.config.name)
        self.app.push_screen(TrialDetailScreen(trial, goal, self.config.run_dir, study), chosen)

    def selected_trial(self) -> int | None:
        table = self.query_one(TrialTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_retrain(self) -> None:
        number = self.selected_trial()
        if number is not None:
            self.retrain(number)

    def retrain(self, number: int) -> None:
        """Train trial `number` once more on all the training data (final.keras, final.md), in an engine thread,
        its epochs streamed into the curves; only while no study runs in this app (one training per process)."""
        trial = self.trials.get(number)
        if not self.source.can_retrain:
            self.notify("This study's trials cannot be retrained here", severity="warning")
        elif self.running and self.source.trains_here:
            self.notify("A study trains in this app: retrain when it has ended", severity="warning")
        elif trial is None or trial.state != "COMPLETE":
            self.notify(f"Trial {number} is not complete: only a complete trial is retrained", severity="warning")
        else:
            self.write_log(f"retraining trial {number} on all the training data")
            self.run_retrain(number)

    @work(thread=True, exclusive=True, group="retrain", exit_on_error=False)
    def run_retrain(self, number: int) -> None:
        from engine.keras import Retrainer

        emit = lambda event: self.post_message(EngineEvent(event))  # noqa: E731
        Retrainer(self.config.storage_url, self.config.name, number, str(self.config.run_dir), emit=emit).run()

    @work(thread=True, group="get", exit_on_error=False)
    def get_model(self, number: int) -> None:
        """Download trial `number`'s kept model from the study's artifact store into the run folder's downloads/
        (whichever machine trained it)."""
        from engine import ConfigError
        from engine.store import get_model

        folder = self.config.run_dir / "downloads"
        try:
            path, what = get_model(self.config.storage_url, self.config.name, number, folder)
        except ConfigError as exc:
            if "exists" not in str(exc):
                raise
            self.app.call_from_thread(self.notify, f"Already downloaded: {folder.resolve()}", title="Get")
            return
        self.app.call_from_thread(self.notify, f"{what.capitalize()} downloaded to {path.resolve()}", title="Get")
        self.app.call_from_thread(self.write_log, f"{what} downloaded to {path}")

    @work(thread=True, group="requeue", exit_on_error=False)
    def run_again(self, number: int) -> None:
        """Queue trial `number`'s parameters again (off the UI thread: it writes to the storage)."""
        from engine.store import run_again

        run_again(self.config.storage_url, self.config.name, number)
        later = "the next trial runs them" if self.running else "they run when the study resumes with room left"
        self.app.call_from_thread(self.notify, f"Trial {number}'s parameters queued: {later}", title="Run again")
        self.app.call_from_thread(self.write_log, f"trial {number}'s parameters queued again")
