"""How trial states look in both UIs (rich markup, also understood by Textual)."""

from __future__ import annotations

STATE_STYLE = {"RUNNING": "cyan", "COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "PRIOR": "blue"}


def state_markup(state: str) -> str:
    """A state in its colour, as markup (plain strings are not tracked by the garbage collector)."""
    return f"[{STATE_STYLE.get(state, 'default')}]{state}[/]"


def fit_line(parts: list[tuple[int, str]], width: int) -> str:
    """Markup parts joined by " · ", in order, dropping the least important (highest rank first, the last of a
    rank first) until the line fits `width` cells."""
    from rich.text import Text

    kept = list(parts)
    while True:
        line = "  ·  " if width >= 120 else " · "
        line = line.join(text for _, text in kept)
        if Text.from_markup(line).cell_len <= width or len(kept) <= 1:
            return line
        worst = max(range(len(kept)), key=lambda index: (kept[index][0], index))
        del kept[worst]
