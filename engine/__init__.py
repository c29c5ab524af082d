"""tunedeck's study engine: config, data, models, the Optuna runner, watcher and report. No UI imports.

The packages, as the data flows: `study` (what a study is) -> `run` (runner, pool, watcher) -> `store` (the
storage every worker shares) -> `report`; beside them `contract` (events, sources, stopping, the objective),
`space` (parameters), `models`, `data` and `keras` (the only package that imports TensorFlow, lazily).
"""

import os

# Before anything imports TensorFlow: its C++ info logs would otherwise spill onto the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # GPUs shared by workers: each maps what it uses
os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # GPU numbers as nvidia-smi and NVML count them

from engine.signals import interrupts_held  # noqa: E402

with interrupts_held():  # NumPy, SQLAlchemy and Optuna import C extensions: Ctrl-C waits until they are done
    from engine.contract import (
        BestChanged,
        Cause,
        EngineError,
        EpochEnded,
        ImportancesUpdated,
        Objective,
        RetrainEpoch,
        RetrainFinished,
        Scope,
        Source,
        StopReason,
        StopRequest,
        StorageOutage,
        StudyFinished,
        StudyStarted,
        TrialFinished,
        TrialStarted,
        Waiting,
    )
    from engine.errors import ConfigError, DatasetError, StorageError, TrialFailed, TrialStopped, UserError
    from engine.run import StudyRunner, StudyWatcher, WorkerPool
    from engine.space import Param
    from engine.study import StudyConfig, dump_config, load_config, save_config, validate

__all__ = [
    "BestChanged", "Cause", "ConfigError", "DatasetError", "EngineError", "EpochEnded", "ImportancesUpdated",
    "Objective", "Param", "RetrainEpoch", "RetrainFinished", "Scope", "Source", "StopReason", "StopRequest",
    "StorageError", "StorageOutage", "StudyConfig", "StudyFinished", "StudyRunner", "StudyStarted", "StudyWatcher",
    "TrialFailed", "TrialFinished", "TrialStarted", "TrialStopped", "UserError", "Waiting", "WorkerPool", "dump_config",
    "load_config", "save_config", "validate",
]
