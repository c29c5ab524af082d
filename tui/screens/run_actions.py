"""What the run screen's keys do to the study: stop it, export it, go back to setup, quit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from textual import work

from engine import Scope, StopRequest
from tui.screens.modals import ChoiceScreen, ConfirmScreen

STOP_HERE_NOW = StopRequest(now=True, scope=Scope.PROCESS)  # this process's training or workers, at the next batch


class StudyActions:
    """Mixed into RunScreen: `s`, `S`, `e`, `r` and `q`, asked of the screen's source (engine.Source) by what it
    can do, never by which source it is. Storage reads and writes run in thread workers."""

    def action_stop(self) -> None:
        """Ask every worker of the study to stop after its trial."""
        if self.running:
            self.source.stop(StopRequest())
            self.state = "stopping"
            self.write_log("asked every worker to stop after its running trial")

    def action_stop_now(self) -> None:
        if not self.running:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.source.stop(StopRequest(now=True))
                self.state = "stopping"
                self.write_log("asked every worker to stop now")

        self.app.push_screen(ConfirmScreen("Stop every running trial of the study now? (recorded as FAIL)"),
                             answered)

    def action_export(self) -> None:
        self.export_summary()

    @work(thread=True, group="export", exit_on_error=False)
    def export_summary(self) -> None:
        """`e`: the Markdown summary, trials.csv and the plots, off the UI thread (it reads the study)."""
        self.write_summary(self.config.run_dir / "summary.md")

    def write_summary(self, *paths: Path | None, plots: bool = True) -> None:
        """Write the study's summary to each path (in a thread: it reads the storage); say where, or why not."""
        from engine.report import export_report

        for path in filter(None, paths):
            try:
                path = export_report(self.config.storage_url, self.config.name, path, plots)
            except Exception as exc:  # noqa: BLE001 - shown to the user, the app goes on
                self.app.call_from_thread(self.notify, f"Export failed: {exc}", severity="error")
                self.app.call_from_thread(self.write_log, f"summary not written: {exc}", logging.ERROR)
                return
            self.app.call_from_thread(self.notify, f"Summary written to {path.resolve()}", title="Exported")
            self.app.call_from_thread(self.write_log, f"summary written to {path.resolve()}")

    def action_back_to_setup(self) -> None:
        if self.running:
            self.notify("The study is still running: stop it first (s)", severity="warning")
            return
        self.app.open_setup(self.config)

    def action_quit_study(self) -> None:
        """Quit. Watching: the workers go on. Workers started here: stop them, or leave them running. Training
        here: the running trial stops, the study stays resumable."""
        if not self.running:
            self.app.exit()
            return
        source = self.source
        if source.owns_workers:
            def chosen(choice: str | None) -> None:
                if choice == "stop":
                    self.quit_after(lambda: source.stop(STOP_HERE_NOW), "stopping the workers")
                elif choice == "leave":
                    self.quit_after(source.close, "leaving the workers running; `tunedeck watch` shows them again")

            self.app.push_screen(ChoiceScreen("Quit: stop this app's workers, or leave them running?",
                                              [("s", "Stop them", "stop"), ("l", "Leave them running", "leave")]),
                                 chosen)
        elif source.trains_here:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.quit_after(lambda: source.stop(STOP_HERE_NOW),
                                    "quitting: stopping the engine; the study stays resumable")

            self.app.push_screen(ConfirmScreen("Quit? The running trial stops; the study can be resumed."), answered)
        else:
            self.quit_after(source.close, "closing the view; the workers go on")

    def quit_after(self, action: Callable[[], None], message: str) -> None:
        """Run `action`, then exit once the engine thread has ended."""
        self.quitting = True
        self.state = "stopping"
        self.write_log(message)
        action()
