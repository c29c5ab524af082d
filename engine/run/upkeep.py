"""What a worker does beside training, on a side thread: it writes its study-wide stop request, honours other
workers' (within poll_seconds, even in the middle of a long epoch), and on a journal storage renews its running
trial's lease (every heartbeat seconds: the journal has no heartbeat of its own)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import optuna

from engine.contract import StopLatch
from engine.errors import first_line
from engine.store import read_stop_request, renew_lease, stop_request_id, write_stop_request

log = logging.getLogger("tunedeck")


class Upkeep:
    """The side thread of one worker on one study; `with Upkeep(...)` runs it for the block."""

    def __init__(self, study: optuna.Study, latch: StopLatch, worker_id: str, poll_seconds: float,
                 lease_seconds: float | None) -> None:
        self.study, self.latch, self.worker_id = study, latch, worker_id
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds  # None: the storage has heartbeats, no lease to renew
        self.seen_stop = stop_request_id(study.user_attrs)  # a request made before this worker joined is past
        self._leased: int | None = None
        self._renewed = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="upkeep", daemon=True)

    def __enter__(self) -> Upkeep:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()
        if self.latch.unwritten():  # asked for just before this worker ended: still tell the others
            try:
                self.sync_stop_requests()
            except Exception as exc:  # the storage is gone: the worker's own ending says so
                log.warning("could not write the stop request: %s", first_line(exc))

    def lease(self, trial_id: int | None) -> None:
        """The trial this worker now trains (None: none): its lease is renewed from now on."""
        if self.lease_seconds is not None and trial_id is not None:
            renew_lease(self.study, trial_id)
            self._renewed = time.monotonic()
        self._leased = trial_id

    def _loop(self) -> None:
        while True:
            try:
                self.sync_stop_requests()
                self._renew_lease()
            except Exception as exc:  # a storage hiccup: the next round tries again
                log.warning("could not read the stop request or renew the lease: %s", first_line(exc))
            if self._done.wait(self.poll_seconds):
                return

    def _renew_lease(self) -> None:
        leased = self._leased
        if leased is not None and self.lease_seconds is not None \
                and time.monotonic() - self._renewed >= self.lease_seconds:
            renew_lease(self.study, leased)
            self._renewed = time.monotonic()

    def sync_stop_requests(self) -> None:
        pending = self.latch.unwritten()
        if pending is not None:
            self.seen_stop = write_stop_request(self.study, replace(pending, by=pending.by or self.worker_id))
            self.latch.mark_written(pending)
            log.info("asked every worker of the study to stop%s", " now" if pending.now else "")
        found = read_stop_request(self.study.user_attrs)
        if found is not None and found[0] != self.seen_stop:
            self.seen_stop = found[0]
            self.latch.seen_in_storage(found[1])
