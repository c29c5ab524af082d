"""Worker identity: who runs a trial (host, pid, device), whether that process still lives, and dead owners'
trials."""

from __future__ import annotations

import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.gpus import device_label, visible_entries
from engine.store import schema


def process_start(pid: int) -> str:
    """When a process started (Linux: clock ticks since boot), "" where unknown: tells a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def pid_alive(pid: int, started: str = "") -> bool:
    """Whether process `pid` (started at `started`, when known) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return not started or process_start(pid) in ("", started)


@dataclass(frozen=True)
class WorkerInfo:
    """One worker: one process training one model at a time."""

    host: str
    pid: int
    device: str  # "cpu", or the GPU it was given: "gpu0", "gpu-8f3a1b2c" (a UUID), "mig-8f3a1b2c/1/0"
    started: str = ""

    @property
    def id(self) -> str:
        return f"{self.host}:{self.pid}/{self.device}"

    def record(self) -> dict[str, Any]:
        """The trial attribute naming this worker."""
        return {"id": self.id, "host": self.host, "pid": self.pid, "device": self.device, "started": self.started}


def this_worker(device_name: str) -> WorkerInfo:
    """This process as a worker; `device_name` is TensorFlow's ("CPU" or a GPU's name)."""
    device = "cpu"
    if device_name != "CPU":
        device = device_label((visible_entries() or ["0"])[0])  # gpu0, gpu-8f3a1b2c, mig-8f3a1b2c/1/0
    return WorkerInfo(platform.node(), os.getpid(), device, process_start(os.getpid()))


def renew_lease(study: optuna.Study, trial_id: int) -> None:
    """A journal storage has no heartbeat: a worker renews its running trial's lease instead (every heartbeat
    seconds), so that any process reading the journal can tell a trial whose worker is gone."""
    study._storage.set_trial_user_attr(trial_id, schema.LEASE, time.time())


def reap_expired_leases(study: optuna.Study, grace_seconds: float) -> list[int]:
    """Journal storages: a RUNNING trial whose lease was not renewed for `grace_seconds` (its worker was killed,
    crashed or cut off, on any host) becomes FAIL with the reason and is retried once, as a heartbeat-stale trial
    is on an RDB storage. Compares this host's clock with the worker's: keep the clocks in sync (NTP)."""
    now, failed = time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        renewed = trial.user_attrs.get(schema.LEASE)
        if renewed is None and trial.datetime_start is not None:
            renewed = trial.datetime_start.timestamp()  # a trial that died before its first renewal
        if renewed is not None and now - renewed > grace_seconds:
            worker = schema.worker_label(trial.user_attrs.get(schema.WORKER)) or "its worker"
            if _fail_and_retry(study, trial, f"{worker} stopped renewing the trial's lease for {grace_seconds:g} s "
                                             f"(killed, crashed or cut off from the storage)"):
                failed.append(trial.number)
    return failed


def fail_dead_local_trials(study: optuna.Study, host: str) -> list[int]:
    """For journal storages, at once: a RUNNING trial whose worker was a process on this host that no longer runs
    becomes FAIL with the reason and is retried once (a dead worker elsewhere is found by its expired lease).
    Returns the failed trials' numbers."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(schema.WORKER)
        if not worker or worker.get("host") != host or pid_alive(worker["pid"], worker.get("started", "")):
            continue
        if _fail_and_retry(study, trial, f"worker {worker['id']} died while the trial ran"):
            failed.append(trial.number)
    return failed


def _fail_and_retry(study: optuna.Study, trial: FrozenTrial, error: str) -> bool:
    """Mark a running trial FAIL with `error` and queue its parameters once more; False if it finished first."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, schema.ERROR, error)
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:  # its worker finished it in the meantime: alive after all
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    retry(study, storage.get_trial(trial._trial_id))
    return True
