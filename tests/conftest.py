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


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped after it. Without a server the test is skipped, unless
    $TUNEDECK_REQUIRE_POSTGRES is set (CI sets it): then a missing server fails the test."""
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
        if os.environ.get("TUNEDECK_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here but unreachable at {host}:{port}: {exc}")
        pytest.skip(f"no PostgreSQL server at {host}:{port} (set PGHOST/PGPORT/PGUSER): {exc}")
    yield f"postgresql://{user}@{host}:{port}/{name}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
