"""`tunedeck run`: the study headless with a rich live display of the whole study; Ctrl-C stops gracefully."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from engine import (
    BestChanged,
    Cause,
    EngineError,
    EpochEnded,
    RetrainEpoch,
    Scope,
    StopReason,
    StopRequest,
    StorageOutage,
    StudyConfig,
    StudyFinished,
    StudyRunner,
    StudyStarted,
    TrialFinished,
    TrialStarted,
    UserError,
    WorkerPool,
)
from engine.gpus import GpuMonitor, GpuReader, GpuSample, gpu_bar, visible_gpus
from engine.logs import native_stderr_to
from engine.report import clock_text, eta_seconds, export_report, number_text, params_text
from engine.signals import SignalRelay
from tui.formatting import state_markup

LAST_TRIALS = 6
WORKER_WIDTH = 18
FIXED_WIDTH = 5 + 8 + 6 + 8 + 6 + 6 + WORKER_WIDTH + 2 * 8  # the table's columns before the params, and padding


class RunDisplay:
    """Turns engine events into a progress bar, the best so far and the last few trials.

    `handle` runs on the engine thread while rich's Live renders on its own: a lock keeps a render from
    seeing the state half-changed."""

    def __init__(self, bell: Console | None = None, lines: Console | None = None,
                 gpus: Callable[[], list[GpuSample]] = list) -> None:
        self.bell = bell  # rings on a new best and on a failed trial (--bell)
        self.gpus = gpus  # this host's GPUs now (a GpuMonitor's latest): a line each under the progress
        self.lines = lines  # stdout that is not a terminal (a file, tee): a plain line per finished trial, at once
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), EtaColumn(self))
        self.task = self.progress.add_task("starting", total=None)
        self.best: BestChanged | None = None
        self.last: deque[TrialFinished] = deque(maxlen=LAST_TRIALS)
        self.running: dict[int, str] = {}  # trial number -> its status line
        self.messages: list[str] = []
        self.started: StudyStarted | None = None
        self.outage = ""  # "storage unreachable, retrying (12 s)" while it lasts
        self.durations: list[float] = []  # of finished (complete or pruned) trials, replayed ones included
        self.eta_at: tuple[float, float] | None = None  # (seconds left, when estimated), at each finished trial
        self.lock = threading.Lock()

    def handle(self, event: object) -> None:
        """Engine callback (engine thread)."""
        with self.lock:
            self._apply(event)

    def note(self, message: str) -> None:
        with self.lock:
            self.messages.append(escape(message))

    def _apply(self, event: object) -> None:
        match event:
            case StudyStarted():
                self.started = event
                # completed starts at 0: a resumed study's earlier trials are replayed as TrialFinished
                self.progress.update(self.task, total=event.n_trials, completed=0,
                                     description=escape(f"{event.study_name} on {event.dataset} ({event.device})"))
                if event.dataset_note:
                    self.messages.append(escape(event.dataset_note))
            case TrialStarted():
                self.running[event.number] = escape(f"trial {event.number} on {event.worker}: "
                                                    f"{params_text(event.params)}")
            case EpochEnded():
                monitor = self.started.goal.monitored.label if self.started else "val accuracy"
                value = event.curve[-1] if event.curve else event.val_accuracy
                self.running[event.number] = f"trial {event.number}: epoch {event.epoch + 1}, {monitor} {value:.4f}"
            case TrialFinished():
                self.running.pop(event.number, None)
                self.last.append(event)
                if self.lines is not None:
                    self.lines.print(trial_line(event), markup=False, highlight=False, soft_wrap=True)
                if event.state not in ("FAIL", "PRIOR"):  # prior knowledge (a warm start) was not run here
                    self.progress.advance(self.task)
                    self.durations.append(event.duration)
                    self.estimate()
                elif self.bell and self.started:
                    self.bell.bell()
            case BestChanged():
                if self.bell and self.started and self.best is not None:
                    self.bell.bell()
                self.best = event
            case StudyFinished():
                self.running.clear()
                self.eta_at = None
                self.messages.append(escape(f"done: {event.text}"))
            case StorageOutage(over=True):
                self.outage = ""
                self.messages.append(escape(event.text))
            case StorageOutage():
                self.outage = f"[b red]{escape(event.text)}[/]: {escape(event.error)}"
            case EngineError():
                pass  # raised to the CLI, which prints it once on stderr

    def estimate(self) -> None:
        """ETA from the median trial's duration (rich's own ETA took a resumed study's replayed trials, which
        arrive at once, for its speed: "0:00:01" with three trials left), as many at a time as run now."""
        if self.started is not None:
            left = self.started.n_trials - len(self.durations)
            eta = eta_seconds(self.durations, left, len(self.running) + 1)
            self.eta_at = None if eta is None else (eta, time.monotonic())

    def eta(self) -> float | None:
        if self.eta_at is None:
            return None
        seconds, since = self.eta_at
        return max(0.0, seconds - (time.monotonic() - since))

    def __rich_console__(self, console: Console, options):
        self.width = options.max_width
        yield self.render()

    width = 100  # the console's, at the last render

    def render(self) -> Group:
        with self.lock:
            table = Table(box=None, header_style="bold")  # one line a trial at any width: long cells end in …
            for column in ("trial", "state", "value", "test acc", "epochs", "time"):
                table.add_column(column, no_wrap=True)
            table.add_column("worker", no_wrap=True, overflow="ellipsis", max_width=WORKER_WIDTH)
            table.add_column("params / error", no_wrap=True, overflow="ellipsis",
                             max_width=max(12, self.width - FIXED_WIDTH))
            for t in self.last:
                table.add_row(str(t.number), state_markup(t.state), number_text(t.value),
                              number_text(t.test_accuracy), str(t.epochs_trained), f"{t.duration:.1f}s",
                              escape(t.worker), escape(t.error or params_text(t.params)))
            best = (f"[bold]best[/]: {self.best.value:.4f} (trial {self.best.number}, test accuracy "
                    f"{number_text(self.best.test_accuracy)}) {escape(params_text(self.best.params))}"
                    if self.best else "best: -")
            outage = [self.outage] if self.outage else []
            running = [Text.from_markup(line, overflow="ellipsis", end="") for line in self.running.values()]
            for line in running:
                line.no_wrap = True
            gpus = [Text(gpu_bar(sample, self.width), no_wrap=True, style="dim") for sample in self.gpus()]
            return Group(self.progress, *gpus, *outage, best, *running, table, *self.messages)


class EtaColumn(ProgressColumn):
    """ "ETA 0:03:10" from the display's estimate, counting down between trials."""

    def __init__(self, display: RunDisplay) -> None:
        super().__init__()
        self.display = display

    def render(self, task) -> Text:
        return Text(f"ETA {clock_text(self.display.eta())}", style="progress.remaining")


def trial_line(t: TrialFinished) -> str:
    """One finished trial as a plain line (a log file, `tee`): number, state, value, test accuracy, epochs, time,
    worker, then its error or its parameters."""
    return (f"trial {t.number} {t.state} value {number_text(t.value)} test {number_text(t.test_accuracy)} "
            f"epochs {t.epochs_trained} {t.duration:.1f}s {t.worker} {t.error or params_text(t.params)}").rstrip()


class QuietWhenClosed(io.TextIOBase):
    """stdout that falls silent when its reader goes away (`tunedeck run ... | head`): the study, the summary
    and the exit status go on as if it were still read."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def _went_away(self) -> None:
        self.gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())  # the interpreter's last flush at exit must not fail either
        os.close(devnull)

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except (BrokenPipeError, ValueError):
                self._went_away()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self._went_away()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding


# Signals that end a headless run like Ctrl-C twice (the running trial stops at its next batch), and its
# exit status: 128 + the signal's number, as a shell reports a process it killed.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def run_headless(config: StudyConfig, export: str | None, plots: bool = True, bell: bool = False,
                 gpu_reader: GpuReader | None = None) -> int:
    """Run the study (in this process, or in worker processes: config.workers, config.gpus); write the
    summary; exit 0 when done, 1 on a study error, 3 when a worker crashed, 128 + N when signal N (SIGTERM,
    SIGHUP) stopped it. This host's GPUs are shown while it runs (NVML, or `gpu_reader`)."""
    console = Console(file=QuietWhenClosed(sys.stdout))
    errors = Console(stderr=True, soft_wrap=True)  # one line per error, whatever the width
    monitor = GpuMonitor(gpu_reader)
    display = RunDisplay(console if bell else None, lines=None if console.is_terminal else console,
                         gpus=lambda: monitor.latest)
    plan = config.worker_plan(visible_gpus())
    if plan.in_processes:
        (display.lines.print if display.lines is not None else display.note)(plan.text)
        source = WorkerPool(config, display.handle, n_workers=plan.workers, gpus=plan.gpus)
    else:
        source = StudyRunner(config, emit=display.handle)
    interrupts = 0
    stopped_by: signal.Signals | None = None

    def before_start(signum: int) -> None:
        """In the handler itself: with nothing to save yet, end at once (no lock, no I/O here)."""
        if display.started is None:
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    def on_signal(signum: int) -> None:
        """On the relay's thread, where a stop and the display's lock are safe: this process's training or
        workers stop; other workers of the study go on."""
        nonlocal interrupts, stopped_by
        if signum == signal.SIGINT:
            interrupts += 1
            source.stop(StopRequest(now=interrupts > 1, scope=Scope.PROCESS))
            display.note("stopping now" if interrupts > 1 else
                         "stopping after the running trial (Ctrl-C again to stop now)")
            return
        stopped_by = signal.Signals(signum)
        source.stop(StopRequest(now=True, scope=Scope.PROCESS, cause=Cause.SIGNAL))
        display.note(f"stopping now: {stopped_by.name}")

    try:
        with SignalRelay((signal.SIGINT, *STOP_SIGNALS), on_signal, before_start), \
                native_stderr_to(config.run_dir / "tensorflow.log"), Live(display, console=console,
                                                                         refresh_per_second=4):
            monitor.start()
            try:
                finished = source.run()
            finally:
                monitor.close()
    except UserError:
        raise  # the CLI prints them as one line, exit 2
    except SystemExit as stop:  # a signal before the study began (workers started here were stopped)
        if isinstance(stop.code, int) and stop.code > 128:
            errors.print(f"tunedeck: stopped by {signal.Signals(stop.code - 128).name} before the study began")
        raise
    except Exception as exc:
        errors.print(escape(f"tunedeck: study error: {type(exc).__name__}: {exc} (log: {config.run_dir})"))
        return 1
    if not console.is_terminal:
        console.line()  # Live leaves its last frame without a newline when not on a terminal
    if finished.reason == StopReason.STORAGE_UNREACHABLE:  # no summary to read: the storage is gone
        errors.print(escape(f"tunedeck: {finished.text}; the finished trials are kept: the same command resumes"))
        return 1
    try:
        summaries = [export_report(config.storage_url, config.name, path, plots)
                     for path in (config.run_dir / "summary.md", export) if path]
    except OSError as exc:  # the trials are in the storage; `tunedeck export` can write the summary later
        errors.print(escape(f"tunedeck: error: cannot write the summary: {exc.strerror or exc} (the study is kept: "
                            f"tunedeck export writes it again)"))
        return 1
    console.print(escape(f"{finished.text}: {finished.n_complete} complete, {finished.n_pruned} pruned, "
                         f"{finished.n_failed} failed"))
    console.print(escape("summary: " + ", ".join(map(str, summaries))))
    if stopped_by is not None:
        errors.print(escape(f"tunedeck: stopped by {stopped_by.name}; the study is resumable with the same command"))
        return 128 + stopped_by
    if finished.reason == StopReason.WORKER_CRASHED:
        return 3
    return 0 if finished.ok else 1


def run_retrain(storage_url: str, study_name: str, trial: int | None, out_dir: str | None, force: bool = False) -> int:
    """`tunedeck retrain`: a progress bar of the epochs; Ctrl-C stops at the next batch and writes nothing."""
    from engine.errors import TrialStopped
    from engine.keras import Retrainer

    console = Console(file=QuietWhenClosed(sys.stdout))
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    task = progress.add_task("loading the study and the data", total=None)

    def show(event: object) -> None:
        if isinstance(event, RetrainEpoch):
            progress.update(task, total=event.epochs, completed=event.epoch + 1,
                            description=escape(f"trial {event.trial} on all training data: accuracy "
                                               f"{event.accuracy:.4f}"))

    retrainer = Retrainer(storage_url, study_name, trial, out_dir, emit=show, force=force)
    native_log = Path(out_dir or Path("runs") / study_name) / "tensorflow.log"  # kept if that folder exists
    try:
        with SignalRelay((signal.SIGINT,), lambda signum: retrainer.stop()), native_stderr_to(native_log), progress:
            finished = retrainer.run()
    except TrialStopped as exc:
        Console(stderr=True).print(escape(f"tunedeck: {exc}"))
        return 130
    own = number_text(finished.trial_test_accuracy)
    console.print(escape(f"trial {finished.trial} retrained on all training data for {finished.epochs} epochs: test "
                         f"accuracy {finished.test_accuracy:.4f} (the trial's own: {own})"))
    console.print(escape(f"model: {finished.model_path}\ncard: {finished.card_path}"))
    return 0
