"""The engine's exceptions. User mistakes are ValueErrors whose message names the field."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to one line for a one-line error, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class ConfigError(ValueError):
    """A bad config file, flag, form field or storage URL; the message names the field and what is allowed."""


class DatasetError(ValueError):
    """A dataset that cannot be found, downloaded or read; the message says what to do."""


class TrialFailed(Exception):
    """A trial that cannot finish (NaN loss, out of memory, a broken model); Optuna marks it FAIL."""


class StopNow(Exception):
    """Raised between batches when the user asked to stop at once."""
