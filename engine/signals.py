"""Signals and the imports they must not cut in half (standard library only: engine/__init__ uses it first)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while C extensions import (NumPy, TensorFlow): an interrupt in the middle of one
    leaves it half initialised and the process dies on the signal at exit. It is delivered right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class SignalRelay:
    """Signals handled away from their handler. The handler only records the signal (Python writes its number to a
    self-pipe, the wakeup fd) and returns; a thread reads each number and calls `on_signal(signum)`, where locks
    and I/O are safe: a handler runs between two bytecodes of the main thread, which may hold the very lock a
    stop or a display takes. `immediate(signum)`, when given, runs in the handler itself: it may raise (to end
    the process before anything started) but must take no lock and do no I/O; the signal is relayed all the same.
    Use from the main thread."""

    def __init__(self, signals: Iterable[int], on_signal: Callable[[int], None],
                 immediate: Callable[[int], None] | None = None) -> None:
        self.signals = tuple(signals)
        self.on_signal = on_signal
        self.immediate = immediate

    def _handler(self, signum: int, frame: object) -> None:
        if self.immediate is not None:
            self.immediate(signum)

    def _relay(self) -> None:
        while data := os.read(self._read, 64):
            for signum in data:
                if signum in self.signals:
                    try:
                        self.on_signal(signum)
                    except Exception:  # the relay must outlive a failed callback: the next signal still counts
                        logging.getLogger("tunedeck").exception("handling signal %d failed", signum)

    def __enter__(self) -> SignalRelay:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # a full pipe drops a number rather than block the handler
        self._thread = threading.Thread(target=self._relay, name="signal-relay", daemon=True)
        self._thread.start()  # before any handler: a signal from here on is relayed
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._previous = {signum: signal.signal(signum, self._handler) for signum in self.signals}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._write)  # the relay reads the end of the pipe and returns
        self._thread.join(5)
        if not self._thread.is_alive():  # else it still reads: its descriptor must not be reused under it
            os.close(self._read)
