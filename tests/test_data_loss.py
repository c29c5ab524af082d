"""Nothing lost: the user's files, the trials, the summary, and the run itself when signals and closed pipes
come. Each test here fails on the code before the fix it covers."""

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import optuna
import pytest
from conftest import Recorder, tiny_config
from fakes import wait_until
from optuna.trial import TrialState

from engine import StorageError, StudyRunner, TrialFinished
from engine.data import datasets as data_module
from engine.files import write_text_atomically
from engine.keras import load_dataset
from engine.store import opening as storage_module
from engine.store import schema


def cli(*args: str, cwd, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **options)


def test_a_users_cached_mnist_npz_is_read_and_kept(tmp_path, monkeypatch):
    """Keras' downloader deletes a cached file whose hash it does not know; tunedeck reads it itself."""
    (tmp_path / "datasets").mkdir()
    cached = tmp_path / "datasets" / "mnist.npz"
    rng = np.random.default_rng(0)
    np.savez(cached, x_train=rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), y_train=np.arange(60) % 10,
             x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), y_test=np.arange(20) % 10)
    before = cached.read_bytes()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    data_module._load_full.cache_clear()
    try:
        for name in ("mnist", "auto"):
            data = load_dataset(name)
            assert len(data.y_train) == 60 and cached.read_bytes() == before
        assert "auto: using MNIST" in load_dataset("auto").note
    finally:
        data_module._load_full.cache_clear()


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("the summary of yesterday's study")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomically(summary, "a new summary " * 1000)
    assert summary.read_text() == "the summary of yesterday's study"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_export_under_a_file_size_limit_keeps_the_old_summary(finished_study, tmp_path):
    """A real limit (RLIMIT_FSIZE, as on a full quota): one line, exit 1, the old summary byte for byte."""
    config, _, _ = finished_study
    summary = tmp_path / "summary.md"
    summary.write_text("old")

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

    process = cli("export", "--storage", config.storage_url, "--study-name", config.name, "-o", str(summary),
                  cwd=tmp_path, preexec_fn=limited)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1 and err.strip().startswith("tunedeck: error: cannot write")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert summary.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_a_model_that_cannot_be_saved_leaves_a_warning_on_a_complete_trial(tmp_path, monkeypatch):
    import keras

    def full_disk_save(model, path, *args, **kwargs):
        with open(path, "wb") as file:
            file.write(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk_save)
    config = tiny_config(tmp_path, n_trials=2)
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder).run()
    assert result.ok and [t.state for t in recorder.of(TrialFinished)] == ["COMPLETE", "COMPLETE"]
    trials = optuna.load_study(study_name=config.name, storage=config.storage_url).trials
    assert all(t.user_attrs[schema.MODEL_WARNING] == "model not saved: [Errno 28] No space left on device"
               for t in trials)
    assert all(t.user_attrs[schema.VAL_ACCURACY] == t.value for t in trials)
    assert not list((config.run_dir / "models").iterdir())  # neither a model nor half of one


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_stops_the_running_trial_and_keeps_the_study(tmp_path, signum, status):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    process = cli("run", "--dataset", "mnist-5k", "--subset", "1000", "--fix", "epochs=300", "--trials", "3",
                  "--patience", "0", "--pruner", "none", "--storage", url, "--study-name", "sig", cwd=tmp_path)

    def training() -> bool:
        try:
            study = optuna.load_study(study_name="sig", storage=url)
        except (KeyError, Exception):
            return False
        return any(t.state == TrialState.RUNNING and t.intermediate_values for t in study.trials)

    wait_until(training, 120, step=0.2)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == status
    assert err.strip().splitlines()[-1] == (f"tunedeck: stopped by {signal.Signals(signum).name}; the study is "
                                            f"resumable with the same command")
    trials = optuna.load_study(study_name="sig", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert trials[0].user_attrs[schema.ERROR].startswith("stopped by signal at epoch")
    assert (tmp_path / "runs" / "sig" / "summary.md").is_file()


def test_a_closed_stdout_does_not_stop_the_study(tmp_path):
    """`tunedeck run ... | head -1`: the reader leaves at once; the study, the summary and status 0 remain."""
    process = cli("run", "--dataset", "mnist-5k", "--subset", "300", "--fix", "epochs=1", "--trials", "2",
                  "--study-name", "piped", cwd=tmp_path)
    process.stdout.close()
    process.wait(180)
    assert process.returncode == 0, process.stderr.read()
    assert "Traceback" not in process.stderr.read()
    assert (tmp_path / "runs" / "piped" / "summary.md").is_file()


def test_ctrl_c_during_startup_is_one_line(tmp_path):
    process = cli("run", "--dataset", "mnist-5k", "--subset", "300", "--fix", "epochs=1", cwd=tmp_path)
    time.sleep(1.5)  # importing TensorFlow and loading the data
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip() == "tunedeck: interrupted"


def test_a_storage_that_never_answers_is_named_within_the_timeout(monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    port = silent.getsockname()[1]
    monkeypatch.setattr(storage_module, "CONNECT_TIMEOUT", 2)
    started = time.monotonic()
    with pytest.raises(StorageError, match=rf"storage: cannot open postgresql://tuner:\*\*\*@127.0.0.1:{port}/db"):
        storage_module.open_storage(f"postgresql://tuner:pw@127.0.0.1:{port}/db")
    assert time.monotonic() - started < 10
    silent.close()


def test_the_largest_seed_runs(tmp_path):
    """Per-trial seeds derived from the study seed wrap around instead of overflowing NumPy's 32 bits."""
    config = tiny_config(tmp_path, n_trials=2, seed=2**32 - 1)
    result = StudyRunner(config).run()
    assert (result.ok, result.n_complete) == (True, 2)
