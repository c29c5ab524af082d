"""What every part of the engine and every view agree on: events, the source protocol, stopping, the objective,
and the trainer seam. Plain data and protocols; no storage, no Keras."""

from engine.contract.events import (
    BestChanged,
    EngineError,
    EpochEnded,
    Event,
    Finished,
    ImportancesUpdated,
    RetrainEpoch,
    RetrainFinished,
    StorageOutage,
    StudyFinished,
    StudyStarted,
    TrialFinished,
    TrialStarted,
    Waiting,
)
from engine.contract.objective import Objective
from engine.contract.source import Source
from engine.contract.stop import AFTER_TRIAL, Cause, Scope, StopLatch, StopReason, StopRequest
from engine.contract.trainer import DataInfo, Trainer, TrialResult

__all__ = [
    "AFTER_TRIAL", "BestChanged", "Cause", "DataInfo", "EngineError", "EpochEnded", "Event", "Finished",
    "ImportancesUpdated", "Objective", "RetrainEpoch", "RetrainFinished", "Scope", "Source", "StopLatch", "StopReason",
    "StopRequest", "StorageOutage", "StudyFinished", "StudyStarted", "Trainer", "TrialFinished", "TrialResult",
    "TrialStarted", "Waiting",
]
