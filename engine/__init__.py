"""tunedeck's study engine: config, data, models, the Optuna runner, watcher and report. No UI imports."""

import os

# Before anything imports TensorFlow: its C++ info logs would otherwise spill onto the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from engine.signals import interrupts_held  # noqa: E402

with interrupts_held():  # NumPy, SQLAlchemy and Optuna import C extensions: Ctrl-C waits until they are done
    from engine.config import ParamSpec, StudyConfig, dump_config, load_config, save_config, validate
    from engine.errors import ConfigError, DatasetError, StorageError, TrialFailed, UserError
    from engine.events import (
        BestChanged,
        EngineError,
        EpochEnded,
        ImportancesUpdated,
        StudyFinished,
        StudyStarted,
        TrialFinished,
        TrialStarted,
    )
    from engine.pool import WorkerPool
    from engine.runner import StudyRunner
    from engine.watcher import StudyWatcher

__all__ = [
    "BestChanged", "ConfigError", "DatasetError", "EngineError", "EpochEnded", "ImportancesUpdated",
    "ParamSpec", "StorageError", "StudyConfig", "StudyFinished", "StudyRunner", "StudyStarted", "StudyWatcher",
    "TrialFailed", "TrialFinished", "TrialStarted", "UserError", "WorkerPool", "dump_config", "load_config",
    "save_config", "validate",
]
