"""`tunedeck proxy`: one process serves a storage to many workers over Optuna's gRPC storage proxy, so that a
study's database connections no longer grow with its workers (each worker holds up to three of its own; the
proxy holds its pool's, however many workers call it). Workers give `grpc://HOST:PORT` as their storage."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import warnings
from collections.abc import Callable

import optuna

from engine.errors import ConfigError, StorageError
from engine.store.opening import close_storage, open_storage
from engine.store.urls import check_url, dialect, mask_url

_SERVER_LOG = logging.getLogger("optuna.storages._grpc.server")
SERVED = ("sqlite", "postgresql", "mysql")  # Optuna's gRPC proxy serves RDB storages only (optuna/optuna#6084)


class _Stopped(Exception):
    """SIGTERM, raised in the main thread to end the server's wait."""


def serve_proxy(url: str, port: int, host: str = "127.0.0.1", announce: Callable[[str], None] | None = None) -> None:
    """Serve the storage at `url` on host:port (Optuna's run_grpc_proxy_server) until Ctrl-C or SIGTERM, then
    return. `announce` is told, once, the grpc:// URL workers give, as serving begins. Bad input (a storage that is
    not an RDB one, a port taken, grpcio missing) is a one-line UserError before anything serves."""
    check_url(url)
    if dialect(url) not in SERVED:
        raise ConfigError(f"storage: tunedeck proxy serves a SQLite, PostgreSQL or MySQL storage (Optuna's gRPC "
                          f"proxy does not serve journals or another proxy), got {mask_url(url)!r}")
    if not 0 < port < 65536:
        raise ConfigError(f"port: expected a port in 1..65535, got {port}")
    try:
        import google.protobuf  # noqa: F401
        import grpc  # noqa: F401  (Optuna imports both lazily: a missing one would only show once serving)
    except ImportError:
        raise StorageError("proxy: needs grpcio and protobuf; install them with pip install 'tunedeck[grpc]'") from None
    _check_port_free(host, port)
    storage = open_storage(url)
    previous = None
    try:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_stopped)
        if announce is not None:
            announce(f"grpc://{host}:{port}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            _SERVER_LOG.setLevel(logging.WARNING)  # its "Server started", "Listening...": `announce` says it
            optuna.storages.run_grpc_proxy_server(storage, host=host, port=port)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        close_storage(storage)


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped()


def _check_port_free(host: str, port: int) -> None:
    """A one-line UserError for a host that does not resolve or a port another process listens on (gRPC would
    say it in a C-level log line first)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"host: cannot resolve {host!r}: {exc.strerror}") from None
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            probe.bind(address)
    except OSError as exc:
        raise StorageError(f"proxy: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
