"""Storage URLs: what is accepted, drivers, the environment, and the model files a shared folder keeps."""

from __future__ import annotations

import os
import sys

import optuna
import pytest

from engine import ConfigError, Objective, StorageError, StudyConfig
from engine.run import ModelKeeper
from engine.store import check_url, open_storage, with_driver


@pytest.mark.parametrize("url", ["sqlite:///runs/study.db", "sqlite:////abs/study.db", "postgresql://u@h/db",
                                 "postgresql+psycopg://u:p@h:5432/db", "mysql://u@h/db", "mysql+pymysql://u@h/db",
                                 "journal:///runs/study.log"])
def test_supported_urls(url):
    check_url(url)


@pytest.mark.parametrize("url, message", [
    ("study.db", "is not a storage URL"),
    ("mongodb://localhost/0", "'mongodb' storages are not supported"),
    ("journal://study.log", "a journal storage is written journal:///PATH"),
    ("sqlite://", "an in-memory SQLite database vanishes"),
    ("sqlite:///:memory:", "an in-memory SQLite database vanishes"),
])
def test_refused_urls(url, message):
    with pytest.raises(ConfigError, match=message):
        check_url(url)


def test_drivers_are_the_ones_the_extras_install():
    assert with_driver("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert with_driver("mysql://u@h/db") == "mysql+pymysql://u@h/db"
    assert with_driver("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert with_driver("sqlite:///a.db") == "sqlite:///a.db"


def test_a_missing_driver_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymysql", None)  # as on a machine without the mysql extra
    with pytest.raises(StorageError, match=r"the mysql driver \(pymysql\) is not installed; install it with "
                                           r"pip install 'tunedeck\[mysql\]'"):
        open_storage("mysql://tuner@127.0.0.1/studies")


def test_the_storage_can_come_from_the_environment(monkeypatch, tmp_path):
    config = StudyConfig(study_name="s", out_dir=str(tmp_path))
    assert config.storage_url == f"sqlite:///{tmp_path}/s/study.db"
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://a@h/optuna")
    assert config.storage_url == "postgresql://a@h/optuna"
    monkeypatch.setenv("TUNEDECK_STORAGE", "postgresql://b@h/tunedeck")
    assert config.storage_url == "postgresql://b@h/tunedeck"
    assert StudyConfig(storage="sqlite:///x.db").storage_url == "sqlite:///x.db"  # --storage wins


class Model:
    def save(self, path):
        path.write_text("weights")


def test_keep_best_is_study_wide_and_spares_running_trials(tmp_path):
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.9):
        study.add_trial(optuna.trial.create_trial(value=value))
    running = study.ask()  # another worker's trial, about to save its model
    folder = tmp_path / "models"
    keeper = ModelKeeper(folder, keep=2, goal=Objective("val_accuracy"))
    for number in (0, 1, running.number):
        (folder / f"trial-{number:04d}.keras").parent.mkdir(exist_ok=True)
        (folder / f"trial-{number:04d}.keras").write_text("old")
    assert keeper.offer(study, 3, 0.7, Model()) == folder / "trial-0003.keras"
    # trial 0 (0.5) fell out of the best 2; trial 2 still runs on another worker: its file stays
    assert sorted(p.name for p in folder.iterdir()) == ["trial-0001.keras", "trial-0002.keras", "trial-0003.keras"]
    study.add_trial(optuna.trial.create_trial(value=0.7))  # trial 3 is told
    assert keeper.offer(study, 4, 0.6, Model()) is None  # below the study's best 2 (0.9, 0.7)


def test_a_half_written_model_of_a_dead_process_is_removed(tmp_path):
    import subprocess
    import sys

    from engine.run import remove_leftovers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    mine = tmp_path / f".trial-0003.{os.getpid()}.tmp.keras"  # this process is still writing it
    theirs = tmp_path / f".trial-0004.{pid}.tmp.keras"
    kept = tmp_path / "trial-0001.keras"
    for path in (mine, theirs, kept):
        path.write_text("x")
    assert remove_leftovers(tmp_path) == [theirs]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, kept.name])


def test_a_journal_lock_left_by_a_killed_worker_is_broken_within_seconds(tmp_path):
    """A worker killed while it appends leaves the journal's lock behind: the next writer breaks it after a few
    seconds (Optuna's default waits 30 s, stalling every worker and view of the study)."""
    import threading

    from fakes import wait_until

    from engine.store.opening import JOURNAL_LOCK_GRACE_SECONDS

    path = tmp_path / "study.log"
    path.touch()
    os.symlink(path, f"{path}.lock")  # what JournalFileSymlinkLock holds while a worker appends
    created = threading.Event()

    def create() -> None:
        storage = open_storage(f"journal:///{path}")
        optuna.create_study(study_name="s", storage=storage)
        created.set()

    threading.Thread(target=create, daemon=True).start()
    wait_until(created.is_set, JOURNAL_LOCK_GRACE_SECONDS + 10)
    assert not os.path.lexists(f"{path}.lock")
