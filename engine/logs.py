"""Logging: Optuna's, TensorFlow's and the engine's own records go to a file, not the terminal."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

LOGGER_NAMES = ("tunedeck", "optuna", "tensorflow", "absl", "keras", "py.warnings")
log = logging.getLogger("tunedeck")


@contextlib.contextmanager
def log_to_file(path: Path) -> Iterator[Path]:
    """Send the known loggers (and Python warnings) to `path` while the block runs."""
    import optuna

    optuna.logging.disable_default_handler()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # keep them off the root logger's stderr handler
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at `path`: TensorFlow's C++ logs bypass Python and would corrupt a live screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    with open(path, "ab") as target:
        os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
