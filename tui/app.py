"""The Textual app: a setup screen, then a run screen driving StudyRunner in a thread worker."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from engine import StudyConfig, StudyRunner
from engine.logs import native_stderr_to
from tui.screens.modals import HelpScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen


class TunedeckApp(App):
    """tunedeck: set up a study, watch it run, export it."""

    CSS_PATH = "app.tcss"
    TITLE = "tunedeck"
    BINDINGS = [
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", show=False),
    ]

    def __init__(self, config: StudyConfig | None = None,
                 runner_factory: Callable[..., StudyRunner] = StudyRunner) -> None:
        super().__init__()
        self.config = config or StudyConfig()
        self.runner_factory = runner_factory

    def on_mount(self) -> None:
        # Import-time objects live for good, and a streaming dashboard churns through short-lived render
        # objects: freeze the former and collect the young generations less often, so that collector
        # pauses (the worst key latency in bench/ui_stream.py) stay short.
        gc.freeze()
        gc.set_threshold(2000, 50, 10)
        self.push_screen(SetupScreen(self.config))

    def open_setup(self, config: StudyConfig) -> None:
        """Show the setup form filled from `config` (after a run, or after loading a file)."""
        self.config = config
        self.switch_screen(SetupScreen(config))

    def start_study(self, config: StudyConfig) -> None:
        """Leave the setup form for the live dashboard of a study of `config`."""
        self.config = config
        self.switch_screen(RunScreen(config, self.runner_factory))

    def screen_bindings(self, screen: Screen) -> list[tuple[str, Binding, DOMNode]]:
        """(key, binding, node) of every described binding active on a screen."""
        return [(key, active.binding, active.node) for key, active in screen.active_bindings.items()
                if active.binding.description]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette lists every action of the current screen, with its key."""
        yield from super().get_system_commands(screen)
        for _key, binding, node in self.screen_bindings(screen):
            yield SystemCommand(binding.description, f"key: {self.get_key_display(binding)}",
                                partial(self.call_later, self.run_action, binding.action, node))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = [(self.get_key_display(binding), binding.description)
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


def run_app(config: StudyConfig) -> int:
    """Open the app with a prefilled setup form."""
    with terminal_apart_from_fd2(Path(config.out_dir) / "tensorflow.log"):
        TunedeckApp(config).run()
    return 0
