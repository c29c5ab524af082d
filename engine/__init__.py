"""tunedeck's study engine: config, data, models, the Optuna runner and the report. No UI imports."""

import os

# Before anything imports TensorFlow: its C++ info logs would otherwise spill onto the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from engine.config import ParamSpec, StudyConfig, dump_config, load_config, save_config, validate  # noqa: E402
from engine.errors import ConfigError, DatasetError, TrialFailed  # noqa: E402
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
from engine.runner import StudyRunner  # noqa: E402

__all__ = [
    "BestChanged", "ConfigError", "DatasetError", "EngineError", "EpochEnded", "ImportancesUpdated",
    "ParamSpec", "StudyConfig", "StudyFinished", "StudyRunner", "StudyStarted", "TrialFailed",
    "TrialFinished", "TrialStarted", "dump_config", "load_config", "save_config", "validate",
]
