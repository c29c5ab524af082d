"""The run screen: an event source in a thread worker, events streamed into the table, panel and charts.

The source is a StudyRunner (this process trains), a WorkerPool (worker processes this app started) or a
StudyWatcher (a study run elsewhere): all emit the same events for the whole study and implement the source
protocol (engine.Source); the screen asks what a source can do, never which one it is."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Log, Static
from textual.worker import Worker, WorkerState

from engine import (
    BestChanged,
    EngineError,
    EpochEnded,
    ImportancesUpdated,
    RetrainEpoch,
    RetrainFinished,
    Source,
    StopReason,
    StorageOutage,
    StudyConfig,
    StudyFinished,
    StudyStarted,
    TrialFinished,
    TrialStarted,
    Waiting,
)
from engine.report import clock_text, eta_seconds
from tui.formatting import fit_line
from tui.messages import EngineEvent
from tui.screens.run_actions import StudyActions
from tui.screens.run_filter import FILTER_BINDINGS, FILTER_HINT, FilterActions, FilterInput
from tui.screens.run_layout import LAYOUT_BINDINGS, ZoomableLayout
from tui.screens.trial_actions import TrialActions
from tui.widgets.best_panel import BestPanel
from tui.widgets.charts import CurvePlot, HistoryPlot, ImportancePlot, ThrottledPlot
from tui.widgets.footer import PriorityFooter
from tui.widgets.gpu_bars import GpuBars
from tui.widgets.trial_table import TrialTable

log = logging.getLogger("tunedeck.ui")
FLUSH_SECONDS = 0.25  # table rows, log lines, charts and the status line are applied on this timer
SourceFactory = Callable[..., Source]  # (config, emit=...) -> an event source


def wall_clock() -> str:
    """The time of day shown in front of log lines."""
    return time.strftime("%H:%M:%S")


class RunScreen(StudyActions, TrialActions, FilterActions, ZoomableLayout, Screen):
    """Live dashboard of one study run."""

    BINDINGS = [
        Binding("s", "stop", "Stop", id="run.stop", tooltip="Stop the study after its running trials"),
        Binding("S", "stop_now", "Stop now", id="run.stop_now", tooltip="Stop every running trial now (asks first)"),
        Binding("e", "export", "Export", id="run.export", tooltip="Write summary.md, trials.csv and the plots"),
        Binding("r", "back_to_setup", "Setup", id="run.setup", tooltip="Back to the setup form"),
        Binding("t", "retrain", "Retrain", id="run.retrain",
                tooltip="Retrain the selected trial on all the training data"),
        Binding("q", "quit_study", "Quit", id="run.quit"),
        Binding("escape", "back_to_studies", "Studies", id="run.studies"),
        *FILTER_BINDINGS,
        *LAYOUT_BINDINGS,
    ]
    state: reactive[str] = reactive("starting")
    clock = staticmethod(time.monotonic)  # elapsed-time source (tests pin it)

    def __init__(self, config: StudyConfig, source_factory: SourceFactory) -> None:
        super().__init__()
        self.config = config
        self.source: Source = source_factory(config, emit=lambda event: self.post_message(EngineEvent(event)))
        self.started: StudyStarted | None = None
        self.trials: dict[int, TrialFinished] = {}
        self.running_trials: set[int] = set()
        self.durations: list[float] = []  # of finished (complete or pruned) trials, replayed ones included
        self.start_time = self.clock()
        self.end_time: float | None = None
        self.quitting = False
        self.outage: tuple[StorageOutage, float] | None = None  # the storage is unreachable: (event, when it came)
        self.status_line = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        yield self.gpu_bars()
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield BestPanel()
                yield TrialTable(id="trials")
                yield Static(id="table-state")
                yield FilterInput(placeholder=FILTER_HINT, id="filter")
            with Vertical(id="charts"):
                yield HistoryPlot(id="history")
                yield CurvePlot(id="curves")
                yield ImportancePlot(id="importances")
        yield Log(id="log", max_lines=2000)
        yield PriorityFooter()

    def gpu_bars(self) -> GpuBars:
        """This host's GPUs, whatever the source (a run here, a pool, a watched study): read with NVML, or with
        the app's `gpu_reader` where it has one (tests); a headless app (run_test) without one reads none."""
        reader = self.app.gpu_reader
        return GpuBars(reader, enabled=reader is not None or not self.app.is_headless, id="gpus")

    def on_mount(self) -> None:
        self.title = f"tunedeck · {self.config.name}"
        self.query_one(TrialTable).focus()
        self.fit_to(self.app.size)
        self.pending_log: list[str] = []
        self.set_interval(FLUSH_SECONDS, self.flush)
        self.flush()
        self.run_engine()

    @work(thread=True, exclusive=True, group="study", exit_on_error=False)
    def run_engine(self) -> StudyFinished:
        """The engine thread: runs the whole study (events come back through post_message), then, for a study
        this app started, writes its report as `tunedeck run` does, before a quit can end the app."""
        finished = self.source.run()
        reports = getattr(self.app, "reports", None)
        started_here = self.source.trains_here or self.source.owns_workers
        if reports is not None and started_here and finished.reason != StopReason.STORAGE_UNREACHABLE:
            export, plots = reports
            self.write_summary(self.config.run_dir / "summary.md", export, plots=plots)
        return finished

    # --- engine events ---------------------------------------------------------------
    def write_log(self, line: str, level: int = logging.INFO) -> None:
        """Queue a line for the log pane (written on the next flush) and log it to the file."""
        self.pending_log.append(f"{wall_clock()} {line}")
        log.log(level, line)

    def flush(self) -> None:
        """Apply what events queued: one layout and repaint per tick, however many events came."""
        self.query_one(TrialTable).flush()
        self.show_table_state()
        if self.pending_log:
            lines, self.pending_log = self.pending_log, []
            self.query_one(Log).write_lines(lines)
        for chart in self.query(ThrottledPlot):
            chart.redraw_if_dirty()
        self.update_status()
        self.query_one(GpuBars).poll()

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        self.handle_event(message.event)

    def handle_event(self, event: object) -> None:
        """Apply one engine event to the widgets: O(1) work; charts and the status line redraw on timers."""
        table = self.query_one(TrialTable)
        match event:
            case StudyStarted():
                self.started = event
                self.state = "running"
                if event.started_at is not None:  # a watched study: elapsed since its first trial
                    self.start_time = self.clock() - max(0.0, time.time() - event.started_at)
                table.set_params(event.param_names, gpu=event.device.upper() not in ("CPU", "?", ""))
                table.goal = self.query_one(HistoryPlot).goal = event.goal
                curves = self.query_one(CurvePlot)
                curves.title = f"{event.goal.monitored.label.capitalize()} per epoch"
                self.write_log(f"study {event.study_name} on {event.dataset} ({event.n_train} train, "
                               f"{event.n_test} test) · {event.device} · log {event.log_path}")
                if event.dataset_note:
                    self.write_log(event.dataset_note, logging.WARNING)
            case TrialStarted():
                self.running_trials.add(event.number)
                if self.state in ("waiting", "no live worker"):
                    self.state = "running"
                table.push(event)
                self.query_one(CurvePlot).running(event.number, ())
            case EpochEnded():
                self.query_one(CurvePlot).running(event.number, event.curve)
            case TrialFinished():
                self.on_trial_finished(event)
            case BestChanged():
                if self.query_one(BestPanel).best is not None:
                    self.alert(f"new best: trial {event.number}, {event.value:.4f}")
                self.query_one(BestPanel).best = event
                table.push(event)
            case ImportancesUpdated():
                self.query_one(ImportancePlot).set(event.importances)
            case StudyFinished():
                self.end_time = self.clock()
                self.outage = None
                self.state = ("stopped" if event.reason == StopReason.STOPPED else "finished") if event.ok else "error"
                self.write_log(f"study ended: {event.text} ({event.n_complete} complete, {event.n_pruned} "
                               f"pruned, {event.n_failed} failed)", logging.INFO if event.ok else logging.ERROR)
                self.notify(event.text, title="Study ended", severity="information" if event.ok else "error")
                self.flush()
            case EngineError():
                self.write_log(f"error: {event.message}", logging.ERROR)
            case StorageOutage(over=True):
                self.outage = None
                self.write_log(event.text, logging.WARNING)
            case StorageOutage():
                if self.outage is None:
                    self.write_log(f"storage unreachable, retrying: {event.error}", logging.WARNING)
                self.outage = (event, self.clock())
                self.update_status()
            case Waiting():
                self.state = event.state
                self.write_log(event.message)
            case RetrainEpoch():
                self.query_one(CurvePlot).running(event.trial, event.curve, label=f"retrain {event.trial} (train acc)")
            case RetrainFinished():
                own = "-" if event.trial_test_accuracy is None else f"{event.trial_test_accuracy:.4f}"
                self.write_log(f"trial {event.trial} retrained for {event.epochs} epochs: test accuracy "
                               f"{event.test_accuracy:.4f} (the trial's own {own}); model {event.model_path}")
                self.query_one(CurvePlot).finished(event.trial, ())
                self.notify(f"Model card: {event.card_path}", title=f"Trial {event.trial} retrained", timeout=10)

    def alert(self, message: str, severity: str = "information") -> None:
        """--bell: the terminal bell and a notification (a new best, a failed trial)."""
        if getattr(self.app, "ring_bell", False) and self.state == "running":
            self.app.bell()
            self.notify(message, severity=severity)

    def on_trial_finished(self, event: TrialFinished) -> None:
        self.trials[event.number] = event
        self.running_trials.discard(event.number)
        if event.broken:
            self.alert(f"trial {event.number} failed: {event.error}", "warning")
        self.query_one(TrialTable).push(event)
        self.query_one(HistoryPlot).add(event.number, event.state, event.value)
        self.query_one(CurvePlot).finished(event.number, event.curve)
        if event.state not in ("FAIL", "PRIOR"):  # prior knowledge (a warm start) was not run here
            self.durations.append(event.duration)
        value = "-" if event.value is None else f"{event.value:.4f}"
        line = f"trial {event.number} {event.state} value {value} in {event.duration:.1f}s"
        line += f" on {event.worker}" if event.worker else ""
        self.write_log(line + (f": {event.error}" if event.error else ""),
                       logging.WARNING if event.state == "FAIL" else logging.INFO)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group in ("retrain", "requeue", "get") and event.state == WorkerState.ERROR:
            self.write_log(f"{event.worker.group} failed: {event.worker.error}", logging.ERROR)
            self.notify(str(event.worker.error), title=f"{event.worker.group.capitalize()} failed", severity="error")
        if event.worker.group != "study":
            return
        if event.state == WorkerState.ERROR:
            self.end_time = self.clock()
            self.state = "error"
            error = event.worker.error
            self.write_log(f"engine stopped: {error}", logging.ERROR)
            self.flush()
            self.notify(str(error), title="Engine error", severity="error", timeout=10)
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED) and self.quitting:
            self.app.exit()

    # --- header line -----------------------------------------------------------------
    @property
    def n_finished(self) -> int:
        """Finished trials so far; a resumed study's earlier trials arrive as replayed TrialFinished events."""
        return len(self.durations)

    def eta(self) -> float | None:
        if self.started is None or self.state not in ("running", "stopping"):
            return None
        return eta_seconds(self.durations, self.started.n_trials - self.n_finished, len(self.running_trials))

    def update_status(self) -> None:
        s = self.started
        elapsed = (self.end_time or self.clock()) - self.start_time
        total = s.n_trials if s else self.config.n_trials
        eta = self.eta()
        parts = [(0, f"[reverse] {self.state} [/reverse] [b]{self.config.name}[/b]"),
                 (3, s.dataset if s else self.config.dataset), (4, s.device if s else "…"),
                 (0, f"{self.n_finished}/{total} trials"), (2, f"{len(self.running_trials)} running"),
                 (1, f"elapsed {clock_text(elapsed)}"), (1 if eta is None else 0, f"ETA {clock_text(eta)}")]
        if self.outage is not None:
            event, received = self.outage
            down = StorageOutage(event.seconds + self.clock() - received, event.error)
            parts.insert(1, (0, f"[b red]{down.text}[/]"))
        status = self.query_one("#status", Static)
        line = fit_line(parts, status.size.width or 78)
        if line != self.status_line:  # one row whatever it says: no layout of the screen (a frame's worth)
            self.status_line = line
            status.update(line, layout=False)

    def watch_state(self, state: str) -> None:
        self.sub_title = state
        if self.is_mounted:
            self.update_status()

    # --- actions ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state in ("starting", "waiting", "running", "stopping")
