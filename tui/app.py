"""The Textual app: a setup screen, then a run screen following an event source in a thread worker: a
StudyRunner in this process, a WorkerPool of worker processes, or a StudyWatcher of a study run elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from engine import Cause, Scope, StopRequest, StudyConfig, StudyRunner, StudyWatcher, WorkerPool
from engine.gpus import Gpu, GpuReader, visible_gpus
from engine.logs import native_stderr_to
from tui.screens.modals import HelpScreen, TooSmallScreen
from tui.screens.picker import StudyPickerScreen
from tui.screens.run import RunScreen, SourceFactory
from tui.screens.setup import SetupScreen

MIN_SIZE = (80, 24)  # below this the app says so instead of hiding fields


class TunedeckApp(App):
    """tunedeck: set up a study, watch it run, export it."""

    CSS_PATH = "app.tcss"
    TITLE = "tunedeck"
    BINDINGS = [
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", show=False),
    ]

    def __init__(self, config: StudyConfig | None = None, runner_factory: SourceFactory = StudyRunner,
                 watch: tuple[str | list[str], str | None] | None = None, config_path: str | None = None,
                 bell: bool = False, reports: tuple[Path | None, bool] | None = None) -> None:
        super().__init__()
        # (--export FILE.md or None, plots): a study started here writes its summary when it ends, as `run` does
        self.reports = reports
        self.ring_bell = bell  # --bell: a bell and a notification on a new best and on a failed trial
        self.config = config or StudyConfig()
        self.config_path = config_path or "tunedeck.toml"  # shown in the form's Config file field
        self.runner_factory = runner_factory  # a study run in this process (tests pass a fake)
        self.gpus_here: list[Gpu] | None = None  # the visible GPUs, once the setup form has looked (off the UI thread)
        self.gpu_reader: GpuReader | None = None  # the GPU bars' reader: tests inject one; else NVML in a terminal
        self.watch = watch  # (storage URL or URLs, study name or None): only watch studies run elsewhere
        self.signal_status: int | None = None  # 128 + the signal that ended the app

    def on_mount(self) -> None:
        # Import-time objects live for good, and a streaming dashboard churns through short-lived render
        # objects: freeze the former and collect the young generations less often, so that collector
        # pauses (the worst key latency in bench/ui_stream.py) stay short.
        gc.freeze()
        gc.set_threshold(2000, 50, 10)
        if self.watch is None:
            self.push_screen(SetupScreen(self.config, self.config_path))
        elif self.watch[1]:
            self.watch_study(*self.watch)
        else:
            urls = self.watch[0]
            self.push_screen(StudyPickerScreen(urls if isinstance(urls, list) else [urls]))

    def stop_on_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP (the SSH connection dropped): training here stops at the next batch and the study
        stays resumable; workers started here, and any watched study, go on without this view."""
        self.signal_status = 128 + signum
        screen = next((s for s in self.screen_stack if isinstance(s, RunScreen)), None)
        if screen is None or not screen.running:
            self.exit(return_code=128 + signum)
        elif screen.source.trains_here:
            request = StopRequest(now=True, scope=Scope.PROCESS, cause=Cause.SIGNAL)
            screen.quit_after(lambda: screen.source.stop(request), f"stopping: {signal.Signals(signum).name}")
        else:
            screen.quit_after(screen.source.close, f"closing the view: {signal.Signals(signum).name}")

    async def on_load(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.stop_on_signal, signum)

    def on_resize(self, event: events.Resize) -> None:
        """Below MIN_SIZE, a notice over everything; the screens underneath keep all their state."""
        width, height = event.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        showing = isinstance(self.screen, TooSmallScreen)
        if small and not showing:
            self.push_screen(TooSmallScreen(MIN_SIZE), lambda _: None)
        elif not small and showing:
            self.pop_screen()
        if small:
            self.call_after_refresh(lambda: isinstance(self.screen, TooSmallScreen) and self.screen.show(width, height))

    def open_setup(self, config: StudyConfig, config_path: str | None = None) -> None:
        """Show the setup form filled from `config` (after a run, or after loading a file)."""
        self.config = config
        self.config_path = config_path or self.config_path
        self.switch_screen(SetupScreen(config, self.config_path))

    def start_study(self, config: StudyConfig) -> None:
        """Leave the setup form for the live dashboard of a study of `config`: run in this process, or in
        worker processes (which outlive the app if the user leaves them running)."""
        self.config = config
        plan = config.worker_plan(self.gpus_here if self.gpus_here is not None else visible_gpus())
        if plan.in_processes:
            def pool(config: StudyConfig, emit: Callable) -> WorkerPool:
                return WorkerPool(config, emit, plan.workers, plan.gpus, detach=True)

            self.switch_screen(RunScreen(config, pool))
        else:
            self.switch_screen(RunScreen(config, self.runner_factory))

    def watch_study(self, storage_url: str, study_name: str, from_picker: bool = False) -> None:
        """The dashboard of a study that other processes run: read-only, except stop. Opened from the picker, it
        goes over it (`escape` comes back)."""
        config = StudyConfig(study_name=study_name, storage=storage_url)

        def watcher(config: StudyConfig, emit: Callable) -> StudyWatcher:
            return StudyWatcher(storage_url, study_name, emit)

        screen = RunScreen(config, watcher)
        if from_picker or len(self.screen_stack) <= 1:
            self.push_screen(screen)
        else:
            self.switch_screen(screen)

    def screen_bindings(self, screen: Screen) -> list[tuple[str, Binding, DOMNode]]:
        """(key, binding, node) of every described binding active on a screen, each action once: the screen's own
        first, then the app's, then the focused widget's (a table's cursor keys)."""
        order = [b.id for b in getattr(type(screen), "BINDINGS", []) if isinstance(b, Binding)]

        def rank(row: tuple[str, Binding, DOMNode]) -> tuple[int, int]:  # tunedeck's bindings carry an id
            own, binding = bool(row[1].id), row[1]
            group = 0 if own and row[2] is screen else 1 if own else 2 if row[2] in (screen, self) else 3
            return group, order.index(binding.id) if binding.id in order else len(order)

        found = sorted(((key, active.binding, active.node) for key, active in screen.active_bindings.items()
                        if active.binding.description), key=rank)
        seen: set[str] = set()
        return [row for row in found if not (row[1].description in seen or seen.add(row[1].description))]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette lists every action of the current screen and the app with its key, then Textual's
        own commands, each title once (ours win: "Quit" asks about running workers); a table's own keys stay in
        `?` help."""
        titles = set()
        for _key, binding, node in self.screen_bindings(screen):
            title = binding.tooltip or binding.description
            if node in (screen, self) and title not in titles:
                titles.add(title)
                yield SystemCommand(title, f"key: {self.get_key_display(binding)}",
                                    partial(self.call_later, self.run_action, binding.action, node))
        for command in super().get_system_commands(screen):
            if command.title not in titles:
                titles.add(command.title)
                yield command

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = [(self.get_key_display(binding), binding.tooltip or binding.description)
                for _, binding, _ in self.screen_bindings(self.screen)]
        self.push_screen(HelpScreen(rows))


@contextlib.contextmanager
def terminal_apart_from_fd2(log_path: Path) -> Iterator[None]:
    """Textual draws on stderr, and TensorFlow's C++ logs write to fd 2 under it: give Textual the
    terminal on a fresh descriptor and send fd 2 to a log file while the app runs."""
    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.__stderr__.encoding, errors="replace")
    saved = sys.__stderr__, sys.stderr
    sys.__stderr__ = sys.stderr = terminal
    try:
        with native_stderr_to(log_path):
            yield
    finally:
        sys.__stderr__, sys.stderr = saved
        terminal.close()


def run_app(config: StudyConfig | None = None, watch: tuple[str | list[str], str | None] | None = None,
            config_path: str | None = None, bell: bool = False, export: str | None = None,
            plots: bool = True) -> int:
    """Open the app with a prefilled setup form (from `config_path`, if it was opened with one), or on a study
    to watch. A study started here writes runs/<study>/summary.md (and `export`) when it ends."""
    config = config or StudyConfig()
    app = TunedeckApp(config, watch=watch, config_path=config_path, bell=bell,
                      reports=(Path(export) if export else None, plots))
    with terminal_apart_from_fd2(Path(config.out_dir) / "tensorflow.log"):
        app.run()
    return app.signal_status or app.return_code or 0
