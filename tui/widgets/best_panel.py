"""The best-so-far panel; a new best flashes."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from engine import BestChanged

FLASH_SECONDS = 2.0


class BestPanel(Static):
    """Value, trial number, params and test accuracy of the best trial."""

    DEFAULT_CSS = """
    BestPanel { height: auto; border: round $accent; padding: 0 1; }
    BestPanel.-new { border: round $success; background: $success 20%; }
    """
    best: reactive[BestChanged | None] = reactive(None)

    def on_mount(self) -> None:
        self.border_title = "Best so far"

    def watch_best(self, best: BestChanged | None) -> None:
        if best is None:
            self.update("no complete trial yet")
            return
        test = "-" if best.test_accuracy is None else f"{best.test_accuracy:.4f}"
        params = "  ".join(f"{name}={value}" for name, value in best.params.items())
        self.update(f"[b]{best.value:.4f}[/b]  trial {best.number}  test accuracy {test}\n{params}")
        self.add_class("-new")
        self.set_timer(FLASH_SECONDS, lambda: self.remove_class("-new"))
