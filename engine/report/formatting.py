"""Numbers, durations and tables as tunedeck shows them: the summary, the model card and the screens alike."""

from __future__ import annotations

import statistics
from typing import Any


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table; pipes in cells are escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def number_text(value: Any) -> str:
    """An accuracy or objective value as shown everywhere: 4 decimals, "-" when missing."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def param_text(value: Any) -> str:
    """A parameter's value as people read it: 4 significant digits for a float (0.001235, not 17 digits)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def params_text(params: dict[str, Any]) -> str:
    """`layer_num=3 learning_rate=0.00123`: parameters as people read them (4 significant digits, not 17)."""
    return " ".join(f"{name}={param_text(value)}" for name, value in params.items())


def seconds_text(value: float) -> str:
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)}m {seconds:04.1f}s" if minutes else f"{seconds:.1f}s"


def clock_text(seconds: float | None) -> str:
    """A duration as a clock: 1:02:03, "-" when unknown."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def eta_seconds(durations: list[float], remaining: int, parallel: int = 1) -> float | None:
    """Time left: the median finished trial's duration for each trial left, `parallel` at a time; None before any
    trial has finished (a resumed study's earlier trials count by their own durations, not by how fast they were
    replayed)."""
    if not durations:
        return None
    return statistics.median(durations) * -(-max(remaining, 0) // max(parallel, 1))
