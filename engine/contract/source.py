"""The source protocol: whatever a view follows (a runner, a watcher, a pool, a retrainer) is driven alike."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from engine.contract.events import Finished
from engine.contract.stop import StopRequest


@runtime_checkable
class Source(Protocol):
    """Emits events while `run()` blocks (call it from a thread). `stop` is thread-safe and acts on the study
    as the request says; `close` ends only this view: the study's workers go on."""

    trains_here: bool  # this process trains (a second training here must wait: one per process)
    owns_workers: bool  # this source started worker processes that may outlive it
    can_retrain: bool  # a trial of its study can be trained again on all the data

    def run(self) -> Finished: ...

    def stop(self, request: StopRequest) -> None: ...

    def close(self) -> None: ...
