"""The engine's exceptions. A user's mistake is a UserError whose message names the field or file."""

from __future__ import annotations

from typing import Any


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to one line for a one-line error, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def shown(value: Any, limit: int = 40) -> str:
    """A value as an error message quotes it: its repr, cut short (a 400-digit number stays one line)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plain(number: float) -> str:
    """1000000 and 1e-07 as people write them in a config."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


class UserError(ValueError):
    """Something the user can fix: the CLI prints it on one line (exit 2), the app shows it inline.

    `field` names what to fix (a config setting, `space.epochs`, a flag), so that a form can mark the field
    without reading the message; it is the text before the first colon unless given."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field if field is not None else message.split(":", 1)[0] if ":" in message else ""


class ConfigError(UserError):
    """A bad config file, flag or form field; the message names the field and what is allowed."""


class DatasetError(UserError):
    """A dataset that cannot be found, downloaded or read; the message says what to do."""


class StorageError(UserError):
    """A storage that cannot be opened (unreachable, locked, a missing driver) or a study not found in it."""


class TrialFailed(Exception):
    """A trial that cannot finish (NaN loss, out of memory, a broken model); Optuna marks it FAIL."""


class OutOfMemory(TrialFailed):
    """A trial whose model did not fit in the GPU's memory: a fact about its parameters, not a broken study."""


class TrialStopped(TrialFailed):
    """A trial stopped on request before it finished; the message says when ("at epoch 3")."""


class StopNow(Exception):
    """Raised between batches when the user asked to stop at once."""
