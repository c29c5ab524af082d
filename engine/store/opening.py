"""Optuna storages opened from URLs: RDB (SQLite, PostgreSQL, MySQL) with heartbeats, or a journal (a file, or
Redis); each rides out outages for `retry` seconds (engine.store.retrying); studies created, loaded and read.
Errors name the storage, masked."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import optuna

from engine.errors import StorageError, first_line
from engine.store.retrying import Outage, OutageReport, RetryingStorage, StorageUnreachable, retry_call
from engine.store.urls import (
    DRIVERS,
    check_storage_files,
    dialect,
    grpc_address,
    journal_path,
    mask_secrets,
    mask_url,
    redis_url,
    sqlite_path,
    with_driver,
)

CONNECT_TIMEOUT = 10  # seconds before an unreachable server is reported
SCHEMA_ATTEMPTS = 8  # workers creating the schema at the same moment race; the losers retry
# A journal file's lock is held only while one append is written and synced (milliseconds); one left by a worker
# killed in that moment is broken after this long (Optuna's default, 30 s, stalls every other worker and view).
JOURNAL_LOCK_GRACE_SECONDS = 5


def open_storage(url: str, heartbeat: int | None = None, retry: float = 0, report: OutageReport | None = None,
                 interrupt: threading.Event | None = None) -> optuna.storages.BaseStorage:
    """Optuna's storage for a URL. RDB storages get heartbeats every `heartbeat` seconds (a trial whose worker
    stops beating for twice that becomes FAIL and is retried once). With `retry` > 0, opening and every later call
    ride out an outage of up to `retry` seconds, told to `report` (`interrupt` set: give up at once). Errors name
    the storage (masked) and, for a missing driver, the extra."""
    check_storage_files(url)
    outage = Outage(url, retry, report, interrupt)
    try:
        storage = retry_call(outage, lambda: _open(url, heartbeat))
    except StorageError:
        raise
    except Exception as exc:  # SQLAlchemy, driver and Redis errors
        raise StorageError(f"storage: cannot open {mask_url(url)}: {mask_secrets(first_line(exc), url)}") from None
    return RetryingStorage(storage, outage) if retry > 0 else storage


def _open(url: str, heartbeat: int | None) -> optuna.storages.BaseStorage:
    kind = dialect(url)
    if kind == "journal":
        path = journal_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = optuna.storages.journal.JournalFileSymlinkLock(str(path), grace_period=JOURNAL_LOCK_GRACE_SECONDS)
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path), lock))
        except OSError as exc:
            raise StorageError(f"storage: cannot open journal {str(path)!r}: {exc.strerror or exc}") from None
    if kind == "redis":
        address, prefix = redis_url(url)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                backend = optuna.storages.journal.JournalRedisBackend(address, prefix=prefix)
        except ImportError:
            raise StorageError("storage: the redis driver is not installed; install it with "
                               "pip install 'tunedeck[redis]'") from None
        return optuna.storages.JournalStorage(backend)
    if kind == "grpc":  # a `tunedeck proxy`: Optuna's gRPC client, no heartbeat (its trials carry a lease)
        host, port = grpc_address(url)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                proxy = optuna.storages.GrpcStorageProxy(host=host, port=port)
        except ImportError:
            raise StorageError("storage: grpc:// needs grpcio and protobuf; install them with "
                               "pip install 'tunedeck[grpc]'") from None
        try:
            proxy.wait_server_ready(timeout=CONNECT_TIMEOUT)  # ConnectionError: retried like a server's
        except ConnectionError:
            proxy.close()
            raise ConnectionError(f"no tunedeck proxy answers at {host}:{port} "
                                  f"(within {CONNECT_TIMEOUT} s)") from None
        return proxy
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.get_storage(_rdb_storage(url, heartbeat))  # with Optuna's trial cache
        except ImportError:  # Optuna wraps the driver's ModuleNotFoundError in an ImportError of its own
            driver, extra = DRIVERS[kind]
            scheme_driver = with_driver(url).split("://", 1)[0].partition("+")[2] or driver
            raise StorageError(f"storage: the {kind} driver ({scheme_driver}) is not installed; install it "
                               f"with pip install 'tunedeck[{extra}]'") from None
        except Exception as exc:  # SQLAlchemy and driver errors
            if attempt + 1 < SCHEMA_ATTEMPTS and _schema_race(exc):
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
            raise
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


def _schema_race(exc: Exception) -> bool:
    """Whether opening failed because another worker was creating the same schema at that moment."""
    text = str(exc).lower()
    return any(sign in text for sign in ("already exists", "unique constraint", "duplicate key", "duplicate entry",
                                         "database is locked"))  # SQLite, PostgreSQL, MySQL


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release an RDB storage's connection pool (a process that opens many studies would keep them all)."""
    storage = getattr(storage, "inner", storage)  # a RetryingStorage
    if type(storage).__name__ == "GrpcStorageProxy":  # (grpcio may not be installed: no import here)
        storage.close()  # its channel to the proxy
        return
    backend = getattr(storage, "_backend", storage)  # Optuna's cache over an RDBStorage
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def open_existing_storage(url: str, **retry: Any) -> optuna.storages.BaseStorage:
    """Open a storage to read a study from; a SQLite file that does not exist is an error, not a new file. `retry`:
    as open_storage's."""
    path = journal_path(url) if dialect(url) == "journal" else sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(f"storage: no {dialect(url)} file {str(path)!r}")
    return open_storage(url, **retry)


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


@contextlib.contextmanager
def creating_study(url: str, name: str, direction: str, sampler: optuna.samplers.BaseSampler,
                   pruner: optuna.pruners.BasePruner, heartbeat: int | None = None, retry: float = 0,
                   report: OutageReport | None = None) -> Iterator[tuple[optuna.Study, bool]]:
    """Create the study or load it (so the same command resumes, and every worker joins the same study), and
    whether this call created it (of workers creating one study at the same moment, exactly one did: the storage
    decides). Errors name the storage, masked. With `retry`, every call rides out outages (open_storage). The
    storage's connections are released at the end."""
    storage = open_storage(url, heartbeat=heartbeat, retry=retry, report=report)
    try:
        try:
            storage.create_new_study([optuna.study.StudyDirection[direction.upper()]], name)
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            created = False
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except StorageUnreachable:
        close_storage(storage)
        raise
    except Exception as exc:
        close_storage(storage)
        raise StorageError(f"storage: cannot open study {name!r} in {mask_url(url)}: "
                           f"{mask_secrets(first_line(exc), url)}") from None
    try:
        yield study, created
    finally:
        close_storage(storage)
