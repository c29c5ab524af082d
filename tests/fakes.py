"""A trainer without TensorFlow for runner logic: each epoch waits a little and reports a value from the params."""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import threading
import time

import optuna

from engine import EpochEnded, Param, Source, StudyConfig, StudyFinished
from engine.contract import DataInfo, TrialResult
from engine.errors import TrialStopped


def score(params: dict) -> float:
    """A deterministic val accuracy in 0.5..1 from the parameters: distinct parameters, (almost) distinct values."""
    text = repr(sorted(params.items()))
    return 0.5 + (sum(ord(c) * (i + 1) for i, c in enumerate(text)) % 4999) / 10000


class FakeTrainer:
    """Trains nothing. Each of `params["epochs"]` epochs waits `epoch_seconds` (a stop request ends the wait at
    once), reports its value to the trial and the pruner, and emits EpochEnded."""

    def __init__(self, epoch_seconds: float = 0.0) -> None:
        self.epoch_seconds = epoch_seconds

    def prepare(self, config) -> DataInfo:
        env = {"python": platform.python_version(), "device": "CPU", "host": platform.node()}
        return DataInfo("fake", "", 100, 20, "CPU", env)

    def train(self, trial: optuna.Trial, params: dict, emit, stop_now: threading.Event) -> TrialResult:
        final = score(params)
        epochs = int(params.get("epochs", 1))
        curve: list[float] = []
        for epoch in range(epochs):
            if stop_now.wait(self.epoch_seconds) if self.epoch_seconds else stop_now.is_set():
                raise TrialStopped(f"at epoch {epoch + 1}")
            value = final * (epoch + 1) / epochs
            curve.append(value)
            trial.report(value, epoch)
            emit(EpochEnded(trial.number, epoch, math.nan, math.nan, math.nan, value, tuple(curve)))
            if trial.should_prune():
                trial.set_user_attr("epochs_trained", len(curve))
                raise optuna.TrialPruned()
        trial.set_user_attr("epochs_trained", len(curve))
        return TrialResult(None, final, final - 0.01)


def worker_main(config, epoch_seconds: float, barrier=None, poll_seconds: float = 0.2) -> None:
    """A worker process for multiprocessing: a StudyRunner with the fake trainer (exit code 0 when ok). With a
    barrier, every worker starts at the same moment (after its imports)."""
    from engine import StudyRunner

    runner = StudyRunner(config, trainer=FakeTrainer(epoch_seconds), poll_seconds=poll_seconds)
    if barrier is not None:
        barrier.wait(120)
    finished = runner.run()
    os._exit(0 if finished.ok else 1)


class Running:
    """A source's run() in a thread, with its result."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.result: StudyFinished | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.source.run()

    def join(self, seconds: float = 60) -> StudyFinished:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the source did not end"
        return self.result


def trials_of(url: str, name: str = "shared") -> list:
    """The stored trials of study `name` ([] before it exists), read through a storage that is released after."""
    from engine.store import close_storage, open_storage

    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []
    finally:
        close_storage(storage)


def wait_until(predicate, seconds: float = 60.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(step)


def fake_config(tmp_path, storage: str, n_trials: int, epochs: int = 2, **changes) -> StudyConfig:
    """An MLP study whose learning rate is a log range: two workers drawing alike would show at once."""
    config = StudyConfig(model="mlp", dataset="fake", n_trials=n_trials, storage=storage, study_name="shared",
                         out_dir=str(tmp_path / "runs"), pruner="none", patience=0, heartbeat=1, keep_best=0,
                         **changes)
    config.space = [spec for spec in config.space if spec.name not in ("epochs", "learning_rate")]
    config.space += [Param("epochs", "fixed", value=epochs),
                     Param("learning_rate", "float", low=1e-4, high=1e-1, log=True)]
    return config


def start_workers(config: StudyConfig, n: int, epoch_seconds: float) -> list:
    """n worker processes that open the study at the same moment."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(n)
    processes = [context.Process(target=worker_main, args=(config, epoch_seconds, barrier)) for _ in range(n)]
    for process in processes:
        process.start()
        process.barrier = barrier  # the children unpickle it after start(): keep it alive until they have
    return processes


def join(processes, seconds: float = 120) -> list[int]:
    for process in processes:
        process.join(seconds)
    return [process.exitcode for process in processes]
