"""Stopping: one StopRequest type, merged behind one lock, and the StopReason a study ended with.

A request says when (after the running trial, or now: at the next batch), how far (this process, or the whole
study through its storage) and why. Requests only escalate: after-trial -> now, process -> study. Nothing here
may be called from a signal handler (the latch takes a lock): handlers record the signal and return.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Iterator
from dataclasses import dataclass


class Scope(enum.IntEnum):
    """How far a stop reaches; a larger scope includes the smaller."""

    PROCESS = 0  # this process: its training, or the workers it started
    STUDY = 1  # every worker of the study, through the storage


class Cause(enum.StrEnum):
    """Why a stop was asked. Its value is what a stopped trial records as `stopped_by`."""

    USER = "user"
    SIGNAL = "signal"
    BUDGET = "budget"  # not needed: other workers' trials already make the study's n_trials
    ERROR = "error"
    TIMEOUT = "timeout"


class StopReason(enum.StrEnum):
    """Why a source's run ended (StudyFinished.reason); the event's `detail` says it in words."""

    FINISHED = "finished"  # the study has its n_trials finished trials
    STOPPED = "stopped"  # a stop request: a person, a signal
    TIMEOUT = "timeout"
    FAILURES = "failures"  # trials failed in a row
    WORKERS_EXITED = "workers_exited"  # the workers left before the study's end
    WORKER_CRASHED = "worker_crashed"  # a worker process died on an error of its own (not a trial's)
    CLOSED = "closed"  # this view was closed; the study goes on
    STORAGE_UNREACHABLE = "storage_unreachable"  # the storage stayed unreachable past storage_retry seconds


@dataclass(frozen=True)
class StopRequest:
    """Stop after the running trial (now=False) or at the next batch, in this process or the whole study."""

    now: bool = False
    scope: Scope = Scope.STUDY
    cause: Cause = Cause.USER
    by: str = ""  # who asked, when known: a worker id, "a view on HOST"

    def merged(self, later: StopRequest) -> StopRequest:
        """This request with a later one: the stronger of each part. The cause goes with the request that made it
        stop now (a SIGTERM after an `s` is a stop by signal; a later `s` never makes it one by user)."""
        escalates = later.now and not self.now
        return StopRequest(self.now or later.now, max(self.scope, later.scope),
                           later.cause if escalates else self.cause, later.by if escalates else self.by or later.by)

    def text(self) -> str:
        """"stopped by signal", "stopped by host:42/cpu"."""
        return f"stopped by {self.by or self.cause.value}"


class StopLatch:
    """The stop requests a source received, merged behind one lock and readable from any thread (never from a
    signal handler). `now` is an Event that training checks between batches. A request for this process only
    never reaches the storage, even merged with a study-wide one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request: StopRequest | None = None  # every request, merged: what this process does
        self._study: StopRequest | None = None  # the study-wide requests alone, merged: what every worker is told
        self._written: StopRequest | None = None  # the study-wide part already in the storage
        self.now = threading.Event()
        self.changed = threading.Event()  # set on every request: wakes a waiting loop
        self._linked: set[threading.Event] = set()  # set with `now`: a trial's own stop (its time limit too)

    @property
    def request(self) -> StopRequest | None:
        """The merged request, or None."""
        with self._lock:
            return self._request

    def ask(self, request: StopRequest) -> StopRequest:
        """Record a request; returns the merged one."""
        with self._lock:
            self._request = request if self._request is None else self._request.merged(request)
            if request.scope == Scope.STUDY:
                self._study = request if self._study is None else self._study.merged(request)
            merged = self._request
        if merged.now:
            self.now.set()
            with self._lock:
                linked = list(self._linked)
            for event in linked:
                event.set()
        self.changed.set()
        return merged

    @contextlib.contextmanager
    def linked(self, event: threading.Event) -> Iterator[threading.Event]:
        """While the block runs, a stop now also sets `event` (a trial's stop, which its time limit sets too)."""
        with self._lock:
            self._linked.add(event)
        if self.now.is_set():
            event.set()
        try:
            yield event
        finally:
            with self._lock:
                self._linked.discard(event)

    def unwritten(self) -> StopRequest | None:
        """The study-wide request still to write to the storage (new, or escalated to now since it was written)."""
        with self._lock:
            request, written = self._study, self._written
        if request is None:
            return None
        if written is not None and (written.now or not request.now):
            return None
        return request

    def mark_written(self, request: StopRequest) -> None:
        """`request` is in the storage: every worker will see it."""
        with self._lock:
            if self._written is None or request.now:
                self._written = request

    def seen_in_storage(self, request: StopRequest) -> None:
        """Another worker's study-wide request, read from the storage: honoured here, not written again."""
        self.mark_written(request)
        self.ask(request)



AFTER_TRIAL = StopRequest()  # the usual request (`s`): every worker of the study, after its running trial
