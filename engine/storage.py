"""Optuna storages from URLs: RDB (SQLite, PostgreSQL, MySQL) with heartbeats, or a journal file.

Every URL shown, logged or stored goes through `mask_url` first: a password never leaves this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna

from engine.errors import ConfigError, StorageError, first_line

JOURNAL_PREFIX = "journal:///"  # like sqlite:///: journal:///study.log is relative, journal:////abs/study.log absolute
ENV_VARS = ("TUNEDECK_STORAGE", "OPTUNA_STORAGE")  # where a URL (and its password) can come from instead of argv
# dialect -> (the driver tunedeck installs for it, the pip extra that brings it)
DRIVERS = {"postgresql": ("psycopg", "postgres"), "mysql": ("pymysql", "mysql"), "sqlite": ("pysqlite", "")}
CONNECT_TIMEOUT = 10  # seconds before an unreachable server is reported
SCHEMA_ATTEMPTS = 8  # workers creating the schema at the same moment race; the losers retry
_PASSWORD = re.compile(r"(?P<head>://[^:/@?#]*):(?P<secret>[^@]*)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<secret>[^&]*)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db` (also `?password=`)."""
    url = _PASSWORD.sub(r"\g<head>:***@", url)
    return _QUERY_PASSWORD.sub(r"\g<head>***", url)


def mask_secrets(text: str, url: str) -> str:
    """`text` with any password of `url` replaced by ***: driver errors sometimes quote it."""
    for pattern in (_PASSWORD, _QUERY_PASSWORD):
        for match in pattern.finditer(url):
            if match["secret"]:
                text = text.replace(match["secret"], "***")
    return mask_url(text)


def url_from_env() -> str:
    """The storage URL from $TUNEDECK_STORAGE or $OPTUNA_STORAGE, or ""."""
    return next((os.environ[name] for name in ENV_VARS if os.environ.get(name)), "")


def dialect(url: str) -> str:
    """`journal`, `sqlite`, `postgresql`, `mysql`, or the unknown scheme as written."""
    scheme = url.split("://", 1)[0].lower()
    return scheme.split("+", 1)[0]


def check_url(url: str) -> None:
    """Refuse, as a ConfigError naming the storage, a URL tunedeck cannot keep a study in."""
    allowed = "sqlite:///PATH, postgresql://USER@HOST/DB, mysql://USER@HOST/DB or journal:///PATH"
    if "://" not in url:
        raise ConfigError(f"storage: {mask_url(url)!r} is not a storage URL; expected {allowed}")
    kind = dialect(url)
    if kind not in ("journal", *DRIVERS):
        raise ConfigError(f"storage: {kind!r} storages are not supported; use {allowed}")
    if kind == "journal" and (not url.startswith(JOURNAL_PREFIX) or len(url) == len(JOURNAL_PREFIX)):
        raise ConfigError(f"storage: a journal storage is written journal:///PATH (a file), got {mask_url(url)!r}")
    if kind == "sqlite" and (url.rstrip("/") == "sqlite:" or ":memory:" in url or "mode=memory" in url):
        raise ConfigError("storage: an in-memory SQLite database vanishes when the process ends; "
                          "give a file, e.g. sqlite:///study.db")


def with_driver(url: str) -> str:
    """`postgresql://` -> `postgresql+psycopg://`, `mysql://` -> `mysql+pymysql://`: the drivers tunedeck's
    extras install, whatever SQLAlchemy's default for the dialect is. An explicit `+driver` is kept."""
    scheme, rest = url.split("://", 1)
    if "+" in scheme or dialect(url) not in ("postgresql", "mysql"):
        return url
    return f"{scheme}+{DRIVERS[dialect(url)][0]}://{rest}"


def journal_path(url: str) -> Path:
    """The file of a journal URL."""
    return Path(url[len(JOURNAL_PREFIX):])


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for other storages."""
    if dialect(url) != "sqlite":
        return None
    return Path(url.split(":///", 1)[1].split("?", 1)[0])


def open_storage(url: str, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """Optuna's storage for a URL. RDB storages get heartbeats every `heartbeat` seconds (a trial whose worker
    stops beating for twice that becomes FAIL and is retried once); a schema created by several workers at
    the same moment is retried; errors name the storage (masked) and, for a missing driver, the extra."""
    check_storage_files(url)
    if dialect(url) == "journal":
        path = journal_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"storage: cannot open journal {str(path)!r}: {exc.strerror or exc}") from None
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return _rdb_storage(url, heartbeat)
        except ImportError:  # Optuna wraps the driver's ModuleNotFoundError in an ImportError of its own
            driver, extra = DRIVERS[dialect(url)]
            scheme_driver = with_driver(url).split("://", 1)[0].partition("+")[2] or driver
            raise StorageError(f"storage: the {dialect(url)} driver ({scheme_driver}) is not installed; install it "
                               f"with pip install 'tunedeck[{extra}]'") from None
        except Exception as exc:  # SQLAlchemy and driver errors
            if attempt + 1 < SCHEMA_ATTEMPTS and _schema_race(exc):
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
            raise StorageError(f"storage: cannot open {mask_url(url)}: {mask_secrets(first_line(exc), url)}") from None
    raise AssertionError("unreachable")


def _rdb_storage(url: str, heartbeat: int | None) -> optuna.storages.RDBStorage:
    if dialect(url) == "sqlite":
        engine_kwargs = {"connect_args": {"timeout": 60}}  # wait for another worker's write instead of failing
    else:
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}, "pool_pre_ping": True}
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9; we rely on them knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        options = {}
        if heartbeat:
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
            options = {"heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat,
                       "heartbeat_stale_trial_callback": retry}
        return optuna.storages.RDBStorage(with_driver(url), engine_kwargs=engine_kwargs, **options)


def check_storage_files(url: str) -> None:
    """Refuse a URL tunedeck cannot keep a study in, or a file that is not tunedeck's (or Optuna's) to write
    to; run before anything is created."""
    check_url(url)
    if dialect(url) == "sqlite":
        _check_own_sqlite_file(sqlite_path(url))
    elif dialect(url) == "journal":
        _check_own_journal_file(journal_path(url))


def _check_own_sqlite_file(path: Path) -> None:
    """An existing SQLite file that is not an Optuna storage is never written to (Optuna would add its tables)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"storage: {str(path)!r} is not a SQLite database ({exc}); give a new file or an "
                           f"Optuna storage") from None
    if tables and "studies" not in tables:
        raise StorageError(f"storage: {str(path)!r} is a SQLite database but not an Optuna storage (it has "
                           f"{', '.join(sorted(tables)[:3])}); tunedeck leaves it alone: give another file")


def _check_own_journal_file(path: Path) -> None:
    """An existing file that is not an Optuna journal is never appended to."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as file:
        first = file.readline(100_000)
    try:
        ok = "op_code" in json.loads(first)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise StorageError(f"storage: {str(path)!r} is not an Optuna journal; tunedeck leaves it alone: give "
                           f"another file")


def _schema_race(exc: Exception) -> bool:
    """Whether opening failed because another worker was creating the same schema at that moment."""
    text = str(exc).lower()
    return any(sign in text for sign in ("already exists", "unique constraint", "duplicate key", "database is locked"))


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release an RDB storage's connection pool (a process that opens many studies would keep them all)."""
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def open_existing_storage(url: str) -> optuna.storages.BaseStorage:
    """Open a storage to read a study from; a SQLite file that does not exist is an error, not a new file."""
    path = journal_path(url) if dialect(url) == "journal" else sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(f"storage: no {dialect(url)} file {str(path)!r}")
    return open_storage(url)


def load_study(storage: optuna.storages.BaseStorage, url: str, name: str) -> optuna.Study:
    """An existing study; a missing one is an error listing the studies that are there."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        there = f"; studies there: {', '.join(names)}" if names else "; it holds no study"
        raise StorageError(f"study-name: no study {name!r} in {mask_url(url)}{there}") from None


def check_study(url: str, name: str | None) -> None:
    """Raise StorageError unless the storage exists and holds study `name` (when given)."""
    storage = open_existing_storage(url)
    try:
        if name:
            load_study(storage, url, name)
    finally:
        close_storage(storage)


@contextlib.contextmanager
def reading_study(url: str, name: str) -> Iterator[optuna.Study]:
    """An existing study, opened to read (a report, an export); its storage is released afterwards."""
    storage = open_existing_storage(url)
    try:
        yield load_study(storage, url, name)
    finally:
        close_storage(storage)
