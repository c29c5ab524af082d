"""Shared fixtures: tiny real studies on the embedded MNIST digits."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from engine import Param, StudyConfig, StudyRunner  # noqa: E402


def tiny_config(tmp_path, **changes) -> StudyConfig:
    """An MLP study on 600 stratified mnist-5k digits, 1 epoch, small layers."""
    settings = dict(model="mlp", dataset="mnist-5k", subset=600, n_trials=3, out_dir=str(tmp_path / "runs"),
                    study_name="tiny")
    config = StudyConfig(**{**settings, **changes})
    config.param("epochs").kind = "fixed"
    config.param("epochs").value = 1
    config.param("first_layer_unit").choices = [8, 16] if config.model == "mlp" else [4, 8]
    return config


def fix(config: StudyConfig, **values) -> StudyConfig:
    """Pin parameters of a config in place."""
    for name, value in values.items():
        spec = config.param(name)
        spec.kind, spec.value = "fixed", value
    return config


class Recorder:
    """An emit callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, event) -> None:
        self.events.append(event)

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def names(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory):
    """One real 4-trial study, shared by tests that only read its results."""
    tmp_path = tmp_path_factory.mktemp("study")
    config = tiny_config(tmp_path, n_trials=4, keep_best=2, pruner="none")
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder).run()
    return config, recorder, result


__all__ = ["Param", "Recorder", "fix", "tiny_config"]


def require_servers() -> bool:
    """CI sets $TUNEDECK_REQUIRE_SERVERS (or the older $TUNEDECK_REQUIRE_POSTGRES): a missing server fails there."""
    return bool(os.environ.get("TUNEDECK_REQUIRE_SERVERS") or os.environ.get("TUNEDECK_REQUIRE_POSTGRES"))


def server_missing(kind: str, address: str, exc: Exception):
    if require_servers():
        pytest.fail(f"{kind} is required here but unreachable at {address}: {exc}")
    pytest.skip(f"no {kind} server at {address}: {exc}")


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped after it (PGHOST, PGPORT, PGUSER; default 127.0.0.1:5432).
    Without a server the test is skipped, unless $TUNEDECK_REQUIRE_SERVERS is set (CI): then it fails."""
    import getpass
    import uuid

    import psycopg

    host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
    user = os.environ.get("PGUSER") or getpass.getuser()
    admin = f"postgresql://{user}@{host}:{port}/postgres"
    name = f"tunedeck_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        server_missing("PostgreSQL", f"{host}:{port}", exc)
    yield f"postgresql://{user}@{host}:{port}/{name}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mysql_url():
    """A fresh MySQL/MariaDB database for one test, dropped after it (MYSQL_HOST, MYSQL_PORT, MYSQL_USER; default
    root@127.0.0.1:3306, empty password)."""
    import uuid

    import pymysql

    host, port = os.environ.get("MYSQL_HOST", "127.0.0.1"), int(os.environ.get("MYSQL_PORT", "3306"))
    user = os.environ.get("MYSQL_USER", "root")
    name = f"tunedeck_test_{uuid.uuid4().hex[:12]}"
    try:
        with pymysql.connect(host=host, port=port, user=user, connect_timeout=5) as connection:
            connection.cursor().execute(f"CREATE DATABASE `{name}`")
    except pymysql.err.OperationalError as exc:
        server_missing("MySQL", f"{host}:{port}", exc)
    yield f"mysql://{user}@{host}:{port}/{name}"
    with pymysql.connect(host=host, port=port, user=user, connect_timeout=5) as connection:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def redis_url():
    """Optuna's journal on Redis under a key prefix of its own, deleted after the test (REDIS_HOST, REDIS_PORT;
    default 127.0.0.1:6379, database 0)."""
    import uuid

    import redis

    host, port = os.environ.get("REDIS_HOST", "127.0.0.1"), int(os.environ.get("REDIS_PORT", "6379"))
    prefix = f"tunedeck_test_{uuid.uuid4().hex[:12]}"
    client = redis.Redis(host=host, port=port, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        server_missing("Redis", f"{host}:{port}", exc)
    yield f"redis://{host}:{port}/0?prefix={prefix}"
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["sqlite", "journal", "redis", "postgres", "mysql"])
def storage_url(request, tmp_path):
    """Every kind of storage tunedeck keeps a study in, one test each."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    if request.param == "journal":
        return f"journal:///{tmp_path}/study.log"
    return request.getfixturevalue(f"{request.param}_url")
