"""Modal screens: confirm, help, and a trial's detail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import tomli_w
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, Static, TextArea
from textual_plotext import PlotextPlot

from engine import Objective, TrialFinished
from engine.files import write_text_atomically
from engine.report import number_text

MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 80%; max-width: 100; height: auto; max-height: 90%; border: thick $accent;
                     background: $surface; padding: 1 2; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Label {{ width: 1fr; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no; `y`/`enter` confirm, `n`/`escape` cancel."""

    DEFAULT_CSS = MODAL_CSS.format(name="ConfirmScreen")
    BINDINGS = [Binding("y", "answer(True)", "Yes", id="confirm.yes"),
                Binding("n,escape", "answer(False)", "No", id="confirm.no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers, each with its key and a button; `escape` cancels (None)."""

    DEFAULT_CSS = MODAL_CSS.format(name="ChoiceScreen")
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="choice.cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.question = question
        self.choices = choices  # (key, label, value)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                for key, label, value in self.choices:
                    yield Button(f"{label} ({key})", id=f"choice-{value}")
                yield Button("Cancel (esc)", id="choice-cancel")

    def on_mount(self) -> None:
        self.query_one("#choice-cancel", Button).focus()

    def on_key(self, event) -> None:
        for key, _, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        value = event.button.id.removeprefix("choice-")
        self.dismiss(None if value == "cancel" else value)


class TooSmallScreen(ModalScreen[None]):
    """Shown over everything while the terminal is smaller than the app can be read at."""

    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; }
    TooSmallScreen Static { width: auto; padding: 0 1; background: $error; color: $text; }
    """
    BINDINGS = [Binding("ctrl+q", "app.quit", "Quit", id="small.quit")]

    def __init__(self, minimum: tuple[int, int]) -> None:
        super().__init__()
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def show(self, width: int, height: int) -> None:
        self.query_one(Static).update(f"The terminal is {width}x{height}: enlarge it to at least "
                                      f"{self.minimum[0]}x{self.minimum[1]} (ctrl+q quits)")


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below, this screen's own first, in a table that scrolls at any size (arrows,
    PageUp/PageDown, j/k, g/G, Home/End)."""

    DEFAULT_CSS = MODAL_CSS.format(name="HelpScreen") + """
    HelpScreen > Vertical { height: 90%; }
    HelpScreen DataTable { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
                Binding("j", "move(1)", "Down", show=False), Binding("k", "move(-1)", "Up", show=False),
                Binding("g", "ends(False)", "First", show=False), Binding("G", "ends(True)", "Last", show=False)]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Keys[/b], this screen's first · j/k, PageDown scroll · escape closes")
            yield DataTable(cursor_type="row", zebra_stripes=True, id="keys")
            yield Label("ctrl+p opens the command palette with every action.")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "action")
        table.add_rows(self.rows)
        table.focus()

    def action_move(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def action_ends(self, last: bool) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=table.row_count - 1 if last else 0)


class TrialDetailScreen(ModalScreen[str | None]):
    """A trial's state, values, worker, error text, learning curve, and its params as TOML to copy; `t` and `r`
    close it with what to do with the trial (retrain it, queue its parameters again)."""

    DEFAULT_CSS = MODAL_CSS.format(name="TrialDetailScreen") + """
    TrialDetailScreen > Vertical { height: 90%; padding: 0 1; }
    TrialDetailScreen PlotextPlot { height: 1fr; min-height: 6; }
    TrialDetailScreen TextArea { height: auto; max-height: 10; }
    """
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close", id="detail.close"),
                Binding("c", "copy", "Copy params", id="detail.copy"),
                Binding("t", "dismiss('retrain')", "Retrain on all data", id="detail.retrain"),
                Binding("r", "dismiss('requeue')", "Run again", id="detail.requeue"),
                Binding("g", "dismiss('get')", "Get its model", id="detail.get")]

    def __init__(self, trial: TrialFinished, goal: Objective, run_dir: Path | None = None,
                 study: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.trial = trial
        self.goal = goal  # the study's: names the value and the curve
        self.run_dir = run_dir  # where `c` also writes the params, for terminals that block the clipboard
        self.study = study  # (storage URL, study name): where its artifacts are listed from
        self.params_toml = tomli_w.dumps({"space": dict(trial.params)})

    def compose(self) -> ComposeResult:
        t = self.trial
        with Vertical():
            yield Label(f"[b]Trial {t.number}[/b] · {t.state} · {self.goal.label} {number_text(t.value)} · "
                        f"val acc {number_text(t.val_accuracy)} · test acc {number_text(t.test_accuracy)} · "
                        f"{t.duration:.1f}s · {t.epochs_trained} epochs · worker {t.worker or '-'}")
            if t.error:
                yield Static(f"[red]{t.error}[/red]")
            yield Label("Params as TOML · c copies · r runs them again · t retrains on all the data · g gets its "
                        "model · esc closes")
            yield TextArea(self.params_toml, read_only=True, show_cursor=False)
            yield Static("Artifacts: …" if self.study else "", id="artifacts")
            yield PlotextPlot(id="curve")

    @work(thread=True, exit_on_error=False)
    def list_artifacts(self) -> None:
        """The trial's artifacts in the study's store (off the UI thread: it reads the storage)."""
        from engine.store import trial_artifacts

        try:
            found = trial_artifacts(*self.study, self.trial.number)
        except Exception as exc:  # a storage that does not answer: the detail still shows the rest
            text = f"Artifacts: not read ({type(exc).__name__})"
        else:
            names = [name if there else f"{name} (removed: it dropped out of the best kept)" for name, there in found]
            hint = " · g downloads the model" if any(there for _, there in found) else ""
            text = f"Artifacts: {', '.join(names)}{hint}" if found else "Artifacts: none kept"
        self.app.call_from_thread(self.query_one("#artifacts", Static).update, text)

    def on_mount(self) -> None:
        if self.study:
            self.list_artifacts()
        plot = self.query_one(PlotextPlot)
        plot.plt.title(f"{self.goal.monitored.label} per epoch")
        if self.trial.curve:
            plot.plt.plot(list(range(1, len(self.trial.curve) + 1)), list(self.trial.curve), marker="hd")

    def action_copy(self) -> None:
        """The params to the terminal's clipboard (OSC 52), to tmux's paste buffer inside tmux (whose default
        `set-clipboard` drops OSC 52 from applications), and to a file beside the study's summary."""
        self.app.copy_to_clipboard(self.params_toml)
        where = ["the clipboard (if the terminal allows OSC 52)"]
        if os.environ.get("TMUX") and tmux_buffer(self.params_toml):
            where = ["tmux's paste buffer (prefix ] pastes)"]
        if self.run_dir is not None:
            try:
                path = write_text_atomically(self.run_dir / f"trial-{self.trial.number}-params.toml", self.params_toml)
                where.append(str(path.resolve()))
            except OSError as error:
                where.append(f"no file ({error.strerror or error})")
        self.notify("Params copied to " + " and ".join(where), timeout=8)


def tmux_buffer(text: str) -> bool:
    """Put `text` in tmux's paste buffer (and, with -w, the outer terminal's clipboard where tmux can reach it)."""
    try:
        return subprocess.run(["tmux", "load-buffer", "-w", "-"], input=text, text=True, capture_output=True,
                              timeout=2).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
