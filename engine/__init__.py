"""tunedeck's study engine: config, data, models, the Optuna runner, watcher and report. No UI imports."""

import os

# Before anything imports TensorFlow: its C++ info logs would otherwise spill onto the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from engine.config import ParamSpec, StudyConfig, dump_config, load_config, save_config, validate  # noqa: E402
from engine.errors import ConfigError, DatasetError, StorageError, TrialFailed, UserError  # noqa: E402
from engine.events import (  # noqa: E402
    BestChanged,
    EngineError,
    EpochEnded,
    ImportancesUpdated,
    StudyFinished,
    StudyStarted,
    TrialFinished,
    TrialStarted,
)
from engine.pool import WorkerPool  # noqa: E402
from engine.runner import StudyRunner  # noqa: E402
from engine.watcher import StudyWatcher  # noqa: E402

__all__ = [
    "BestChanged", "ConfigError", "DatasetError", "EngineError", "EpochEnded", "ImportancesUpdated",
    "ParamSpec", "StorageError", "StudyConfig", "StudyFinished", "StudyRunner", "StudyStarted", "StudyWatcher",
    "TrialFailed", "TrialFinished", "TrialStarted", "UserError", "WorkerPool", "dump_config", "load_config",
    "save_config", "validate",
]
