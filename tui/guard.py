"""One mechanism for the unexpected: a handler that raises is logged and shown, and the screen stays usable."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tunedeck.ui")


def _report(node: Any, exc: Exception) -> None:
    log.exception("unexpected error in %s", type(node).__name__)
    node.notify(f"{type(exc).__name__}: {exc}", title="Unexpected error (logged; the form is kept)",
                severity="error", timeout=10)


def guarded(handler: Callable) -> Callable:
    """Wrap an event handler or action of a widget or screen: an exception it raises becomes a notification
    and a log record instead of ending the app (Textual's default), with everything typed still there."""
    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def run_async(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await handler(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the point: nothing a user does may crash the app
                _report(self, exc)
        return run_async

    @functools.wraps(handler)
    def run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            _report(self, exc)
    return run
