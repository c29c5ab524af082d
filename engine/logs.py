"""Logging: Optuna's, TensorFlow's and the engine's own records go to a file, not the terminal."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOGGER_NAMES = ("tunedeck", "optuna", "tensorflow", "absl", "keras", "py.warnings")
log = logging.getLogger("tunedeck")
log.addHandler(logging.NullHandler())  # never Python's last-resort stderr: it would write over a live screen


@contextlib.contextmanager
def log_to_file(path: Path) -> Iterator[Path]:
    """Send the known loggers (and Python warnings) to `path` while the block runs. Each line names the worker
    (host:pid): several workers of a study may write to the same file."""
    import optuna

    optuna.logging.disable_default_handler()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    worker = f"{platform.node()}:{os.getpid()}"
    handler.setFormatter(logging.Formatter(f"%(asctime)s [{worker}] %(levelname)s %(name)s: %(message)s"))
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
    """Point file descriptor 2 at a temporary file while the block runs, then append what it caught to `path`
    (if its folder exists by then): TensorFlow's C++ logs bypass Python and would corrupt a live screen, and a
    run refused for a bad input must leave no folder behind."""
    held: list[bytes] = []
    try:
        with native_stderr_held() as held:
            yield
    finally:
        keep_native_log(path, held)


@contextlib.contextmanager
def native_stderr_held() -> Iterator[list[bytes]]:
    """Catch file descriptor 2 while the block runs (a user's model file imported to check a config, before the
    run's folder exists: its TensorFlow import prints C++ logs); the yielded list then holds what was caught, for
    `keep_native_log` once the run has a folder."""
    held: list[bytes] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            held.append(caught.read())


def keep_native_log(path: Path, held: list[bytes]) -> None:
    """Append what `native_stderr_held` caught to the run's native log, if the run made its folder."""
    data = b"".join(held)
    if data and path.parent.is_dir():
        with open(path, "ab") as target:
            target.write(data)
