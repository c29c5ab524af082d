"""Storage URLs: which are allowed, their files, their drivers, and masking.

Every URL shown, logged or stored goes through `mask_url` first: a password never leaves this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import urllib.parse
from pathlib import Path

from engine.errors import ConfigError, StorageError

JOURNAL_PREFIX = "journal:///"  # like sqlite:///: journal:///study.log is relative, journal:////abs/study.log absolute
ENV_VARS = ("TUNEDECK_STORAGE", "OPTUNA_STORAGE")  # where a URL (and its password) can come from instead of argv
# dialect -> (the driver tunedeck installs for it, the pip extra that brings it)
DRIVERS = {"postgresql": ("psycopg", "postgres"), "mysql": ("pymysql", "mysql"), "sqlite": ("pysqlite", "")}
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
    """`journal`, `redis` (also rediss://: TLS), `grpc` (a `tunedeck proxy`), `sqlite`, `postgresql`, `mysql`, or
    the unknown scheme as written."""
    scheme = url.split("://", 1)[0].lower().split("+", 1)[0]
    return "redis" if scheme == "rediss" else scheme


def has_heartbeat(url: str) -> bool:
    """RDB storages have Optuna's heartbeat; journals (a file, Redis) and a gRPC proxy's clients have none: their
    trials carry a lease."""
    return dialect(url) not in ("journal", "redis", "grpc")


def redis_url(url: str) -> tuple[str, str]:
    """`redis://host:6379/0?prefix=mine` -> ("redis://host:6379/0", "mine"): Optuna's journal on Redis, its keys
    under `prefix` (several studies' journals can share one Redis database)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    prefix = next((value for key, value in query if key == "prefix"), "")
    rest = urllib.parse.urlencode([(key, value) for key, value in query if key != "prefix"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), prefix


def grpc_address(url: str) -> tuple[str, int]:
    """`grpc://host:13000` -> ("host", 13000): a `tunedeck proxy` serving a storage over Optuna's gRPC proxy.
    ValueError unless the URL has a host and a port in 1..65535, and nothing else."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port  # ValueError when it is not a number or out of range
    if not parts.hostname or port is None or port == 0 or parts.path.strip("/") or parts.query or parts.username:
        raise ValueError(url)
    return parts.hostname, port


def check_url(url: str) -> None:
    """Refuse, as a ConfigError naming the storage, a URL tunedeck cannot keep a study in."""
    allowed = ("sqlite:///PATH, postgresql://USER@HOST/DB, mysql://USER@HOST/DB, redis://HOST:PORT/DB, "
               "grpc://HOST:PORT (tunedeck proxy) or journal:///PATH")
    if "://" not in url:
        raise ConfigError(f"storage: {mask_url(url)!r} is not a storage URL; expected {allowed}")
    kind = dialect(url)
    if kind not in ("journal", "redis", "grpc", *DRIVERS):
        raise ConfigError(f"storage: {kind!r} storages are not supported; use {allowed}")
    if kind == "journal" and (not url.startswith(JOURNAL_PREFIX) or len(url) == len(JOURNAL_PREFIX)):
        raise ConfigError(f"storage: a journal storage is written journal:///PATH (a file), got {mask_url(url)!r}")
    if kind == "grpc":
        try:
            grpc_address(url)
        except ValueError:
            raise ConfigError(f"storage: a gRPC proxy storage is written grpc://HOST:PORT (where tunedeck proxy "
                              f"serves), got {mask_url(url)!r}") from None
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
