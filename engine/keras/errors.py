"""A training error in one line."""

from __future__ import annotations

from engine.errors import first_line


def is_out_of_memory(exc: BaseException) -> bool:
    """TensorFlow's out-of-memory error (ResourceExhaustedError, "OOM when allocating tensor ..."), or a CUDA one."""
    text = first_line(exc, 300)
    return "ResourceExhausted" in type(exc).__name__ or "OOM when allocating" in text or "out of memory" in text.lower()


def describe_error(exc: BaseException) -> str:
    """One line for a training error; out-of-memory is named as such."""
    text = first_line(exc, 300)
    if is_out_of_memory(exc):
        return f"out of memory: {text}"
    return text if text == type(exc).__name__ else f"{type(exc).__name__}: {text}"
