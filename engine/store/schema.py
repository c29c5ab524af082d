"""The storage schema: every user attribute tunedeck writes on a study or a trial, in one place.

The storage is the source of truth shared by every worker and every view, so these keys are the real
contract between processes (and between versions): read and write them only through these names.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import FrozenTrial, TrialState

from engine.contract import Cause

# --- study attributes ---------------------------------------------------------------------------
CONFIG = "config"  # the StudyConfig as plain data, recorded when the study is created (storage masked)
CONFIG_CHANGES = "config_changes"  # [{"at", "by", "changes"}]: compatible changes later runs made (before 0.2)
CONFIG_CHANGE_PREFIX = "config_change:"  # + time and worker id: {"at", "by", "changes"}, one attribute per change
DATA = "data"  # the dataset: name, kind, input_shape, num_classes, n_train/n_val/n_test, note; with the config
MODEL = "model"  # {"name", "path", "sha256"}: a model file is recorded by its contents' hash
PARAM_NAMES = "param_names"  # the searched parameters, in suggest order
ENVIRONMENT = "environment"  # versions and device of the worker that created the study
WORKER_ENV_PREFIX = "worker:"  # + worker id: that worker's environment, one entry per worker
N_TRIALS = "n_trials"  # the study's target of finished trials; a run that raises it updates it
STOP_REQUEST = "stop_request"  # {"id", "now", "cause", "by", "at"}: every worker stops when it sees a new id
WARM_START = "warm_start"  # {"from", "storage" (masked), "top", "prior", "enqueued", "skipped", "clipped"}: what the
# study was started from (another study's best parameter sets, run first; or its trials as prior knowledge)
FORKED_FROM = "forked_from"  # {"study", "storage" (masked), "at", "trials", "running", "previous"?}: the study this
# one was copied from by `tunedeck fork` (how many trials; those running then, copied as FAIL; a fork of a fork's line)
ARTIFACT_STORE = "artifact_store"  # "file:///PATH" or "s3://BUCKET/PREFIX": where the study's models and figures are

# --- trial attributes ---------------------------------------------------------------------------
VAL_ACCURACY = "val_accuracy"
VAL_LOSS = "val_loss"
TEST_ACCURACY = "test_accuracy"
EPOCHS_TRAINED = "epochs_trained"
FIXED_PARAMS = "fixed_params"  # the parameters pinned to one value (not drawn, not in trial.params)
WORKER = "worker"  # {"id", "host", "pid", "device"} of the worker that ran the trial
ERROR = "error"  # why a trial failed, one line
STOPPED_BY = "stopped_by"  # on a FAIL trial that was stopped rather than broken: a Cause's value
MODEL_WARNING = "model_warning"  # the trial finished but its model file could not be written
GPU_PEAK_MB = "gpu_peak_mb"
PRIOR = "prior"  # {"study", "trial"}: a trial copied from another study as prior knowledge (not run, not counted)
OUT_OF_MEMORY = "out_of_memory"  # a trial that did not fit in GPU memory: told PRUNED (for TPE), shown FAIL
MIXED_PRECISION = "mixed_precision"  # whether the trial trained in float16 (retrain trains as it did)
XLA = "xla"  # the jit_compile that applied to the trial's model: "off", "on", "auto: on", "model file: on"
LEARNING_RATES = "learning_rates"  # the learning rate of each epoch the trial trained, when a schedule changed it
LEASE = "lease"  # journal storages: unix time of the worker's last renewal, every heartbeat seconds while it trains
LEGACY_CURVE = "curve"  # studies written before curves became intermediate values

STOP_CAUSES = tuple(cause.value for cause in Cause)  # stopped by a person, a signal, or not needed any more
NO_HEARTBEAT = "the worker stopped sending heartbeats (killed, crashed or cut off from the storage)"


def config_changes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every recorded change to a study's config, oldest first. Each is an attribute of its own, so that workers
    recording changes at the same moment never overwrite each other's."""
    changes = list(attrs.get(CONFIG_CHANGES, []))
    changes += [value for key, value in attrs.items() if key.startswith(CONFIG_CHANGE_PREFIX)]
    return sorted(changes, key=lambda change: change.get("at", ""))


def prior(trial: FrozenTrial) -> bool:
    """A trial copied from another study as prior knowledge (a warm start with --prior): the sampler learns from
    it; it was not run here and does not count toward n_trials."""
    return PRIOR in trial.user_attrs


def out_of_memory(trial: FrozenTrial) -> bool:
    """A trial whose model did not fit in GPU memory. It is told PRUNED with no intermediate value, so that TPE
    ranks it below every other trial and draws less from its region (it ignores FAIL trials); tunedeck shows it
    as FAIL and does not count it toward n_trials."""
    return trial.state == TrialState.PRUNED and bool(trial.user_attrs.get(OUT_OF_MEMORY))


def state_name(trial: FrozenTrial) -> str:
    """The trial's state as tunedeck shows and counts it: Optuna's, but FAIL for an out-of-memory trial and PRIOR
    for prior knowledge."""
    if PRIOR in trial.user_attrs:
        return "PRIOR"
    return "FAIL" if out_of_memory(trial) else trial.state.name


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts toward n_trials: complete or pruned (an out-of-memory or prior trial does not)."""
    return state_name(trial) in ("COMPLETE", "PRUNED")


def trial_error(trial: FrozenTrial) -> str:
    """Why a trial failed. A FAIL trial without a recorded error was failed by Optuna's heartbeat check."""
    error = trial.user_attrs.get(ERROR, "")
    if trial.state == TrialState.FAIL and not error:
        return NO_HEARTBEAT
    return error if state_name(trial) == "FAIL" else ""


def trial_curve(trial: FrozenTrial) -> tuple[float, ...]:
    """The per-epoch monitored metric: the trial's intermediate values, in epoch order."""
    if trial.intermediate_values:
        return tuple(trial.intermediate_values[step] for step in sorted(trial.intermediate_values))
    return tuple(trial.user_attrs.get(LEGACY_CURVE, ()))


def worker_label(worker: dict[str, Any] | None) -> str:
    """`host:pid/gpu0` for a worker record; "" when the trial has none."""
    return worker.get("id", "") if worker else ""


def stopped_by(trial: FrozenTrial) -> str:
    """Why a FAIL trial was stopped on purpose (a Cause's value: it does not count as a failure), or ""."""
    cause = trial.user_attrs.get(STOPPED_BY, "")
    return cause if trial.state == TrialState.FAIL and cause in STOP_CAUSES else ""


def stopped(trial: FrozenTrial) -> bool:
    """Whether a FAIL trial was stopped on purpose (it does not count as a failure)."""
    return bool(stopped_by(trial))
