"""A password in a storage URL never shows: not on screen, in logs, errors, summaries, exports or the study."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import optuna
import pytest

from engine import StudyConfig
from engine.run import WorkerPool
from engine.store import mask_secrets, mask_url

SECRET = "s3cret-Pw"


@pytest.mark.parametrize("url, masked", [
    (f"postgresql://tuner:{SECRET}@db.lab:5432/studies", "postgresql://tuner:***@db.lab:5432/studies"),
    (f"postgresql+psycopg://tuner:{SECRET}@db/studies?sslmode=require",
     "postgresql+psycopg://tuner:***@db/studies?sslmode=require"),
    (f"mysql://root:{SECRET}@127.0.0.1/optuna", "mysql://root:***@127.0.0.1/optuna"),
    (f"postgresql://db/studies?user=tuner&password={SECRET}", "postgresql://db/studies?user=tuner&password=***"),
    ("postgresql://tuner@db/studies", "postgresql://tuner@db/studies"),
    ("sqlite:///runs/a/study.db", "sqlite:///runs/a/study.db"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked
    if SECRET in url:  # a driver error that quotes the password is masked too
        assert SECRET not in mask_secrets(f"could not connect to {url} as tuner/{SECRET}", url)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_an_unreachable_server_is_one_masked_line(tmp_path):
    """A server that does not answer is retried for --storage-retry seconds (it may be restarting), then one line,
    password masked, exit 1."""
    url = f"postgresql://tuner:{SECRET}@127.0.0.1:1/studies"
    result = run_cli("run", "--storage", url, "--storage-retry", "1", "--dataset", "mnist-5k", "--subset", "300",
                     "--fix", "epochs=1", cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("tunedeck: storage: postgresql://tuner:***@127.0.0.1:1/studies unreachable for 1 s: ")
    assert line.endswith("Connection refused; the finished trials are kept: the same command resumes")
    assert SECRET not in result.stdout + result.stderr


def test_two_workers_with_a_password_in_the_url(postgres_url, tmp_path):
    """`tunedeck run --workers 2` on the CPU, real training: both workers join, and the password is nowhere."""
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    url = f"postgresql://{user}:{SECRET}@{rest}"  # the server trusts local users: any password will do
    result = run_cli("run", "--workers", "2", "--storage", url, "--dataset", "mnist-5k", "--subset", "300",
                     "--trials", "4", "--fix", "epochs=1", "--fix", "first_layer_unit=8", "--study-name", "pw",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "pw"
    summary = (run_dir / "summary.md").read_text()
    workers = summary.split("## Workers")[1].split("##")[0]
    assert sum(line.startswith(f"| {platform.node()}:") for line in workers.splitlines()) == 2
    exported = run_cli("export", "--storage", url, "--study-name", "pw", cwd=tmp_path)
    assert exported.returncode == 0 and f"postgresql://{user}:***@" in exported.stdout  # the config, masked
    study = optuna.load_study(study_name="pw", storage=postgres_url)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4
    stored = json.dumps([study.user_attrs, [(t.user_attrs, t.system_attrs) for t in study.trials]], default=str)
    texts = [result.stdout, result.stderr, exported.stdout, exported.stderr, summary, stored]
    texts += [path.read_text(errors="replace") for path in run_dir.iterdir() if path.is_file()]
    assert all(SECRET not in text for text in texts)
    assert "s3cret" not in (run_dir / "workers.toml").read_text()


def test_workers_get_the_url_in_their_environment_not_their_command_line(tmp_path, monkeypatch):
    started = []

    class Popen:
        def __init__(self, args, env, **options):
            started.append((args, env))

    monkeypatch.setattr("engine.run.pool.subprocess.Popen", Popen)
    url = f"postgresql://tuner:{SECRET}@db/studies"
    config = StudyConfig(storage=url, out_dir=str(tmp_path), study_name="s", gpus="0,1", workers=3)
    plan = config.worker_plan([])
    WorkerPool(config, n_workers=plan.workers, gpus=plan.gpus).start()
    assert len(started) == 3
    assert all(SECRET not in " ".join(args) for args, _ in started)
    assert [env["TUNEDECK_STORAGE"] for _, env in started] == [url] * 3
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["0", "1", "0"]
    assert config.storage == url and "storage = \"\"" in (tmp_path / "s" / "workers.toml").read_text()
