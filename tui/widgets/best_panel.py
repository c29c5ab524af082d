"""The best-so-far panel; a new best flashes."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from engine import BestChanged
from engine.report import number_text, params_text

FLASH_SECONDS = 2.0


class BestPanel(Static):
    """Value, trial number, params and test accuracy of the best trial; `compact`: on one labelled line (the
    stacked layout has no room for its border)."""

    DEFAULT_CSS = """
    BestPanel { height: auto; border: round $accent; padding: 0 1; }
    BestPanel.-new { border: round $success; background: $success 20%; }
    """
    best: reactive[BestChanged | None] = reactive(None)
    compact: reactive[bool] = reactive(False)

    def on_mount(self) -> None:
        self.border_title = "Best so far"

    def watch_best(self, best: BestChanged | None) -> None:
        self.show()
        if best is not None:
            self.add_class("-new")
            self.set_timer(FLASH_SECONDS, lambda: self.remove_class("-new"))

    def watch_compact(self) -> None:
        self.show()

    def show(self) -> None:
        best = self.best
        label = "[b]Best[/b] " if self.compact else ""
        if best is None:
            self.update(f"{label}no complete trial yet")
            return
        line = f"[b]{best.value:.4f}[/b]  trial {best.number}  test accuracy {number_text(best.test_accuracy)}"
        params = params_text(best.params)
        self.update(f"{label}{line}  {params}" if self.compact else f"{line}\n{params}")
