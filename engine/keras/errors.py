"""A training error in one line."""

from __future__ import annotations

from engine.errors import first_line


def describe_error(exc: BaseException) -> str:
    """One line for a training error; out-of-memory is named as such."""
    text = first_line(exc, 300)
    if "ResourceExhausted" in type(exc).__name__ or "OOM" in text or "out of memory" in text.lower():
        return f"out of memory: {text}"
    return text if text == type(exc).__name__ else f"{type(exc).__name__}: {text}"
