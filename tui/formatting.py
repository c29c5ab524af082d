"""How trial states look in both UIs (rich markup, also understood by Textual)."""

from __future__ import annotations

STATE_STYLE = {"RUNNING": "cyan", "COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}


def state_markup(state: str) -> str:
    """A state in its colour, as markup (plain strings are not tracked by the garbage collector)."""
    return f"[{STATE_STYLE.get(state, 'default')}]{state}[/]"
