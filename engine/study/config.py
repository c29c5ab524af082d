"""StudyConfig: everything that defines a study, typed, with its defaults, and its validation."""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract import Objective
from engine.errors import ConfigError, plain, shown
from engine.gpus import GPU_ENTRY, Gpu, WorkerPlan, plan_workers
from engine.models import BUILTIN_SPECS, check_space, spec_for
from engine.space import Param, epochs_ceiling
from engine.store import check_artifacts_url, check_url, url_from_env

SAMPLERS = ("tpe", "random")
PRUNERS = ("asha", "median", "hyperband", "none")  # asha: successive halving (SuccessiveHalvingPruner)
OBJECTIVES = ("val_accuracy", "test_accuracy", "val_loss")  # val_loss is minimized, the others maximized
JIT_COMPILE = ("off", "auto", "on")  # XLA: never, Keras' choice (on whenever a GPU is visible), always


# Documented fields of StudyConfig, in file order; `init-config` writes these as comments.
FIELD_HELP = {
    "model": "mlp | cnn | a model file (path/to/model.py, relative to this config's folder) that defines SPACE "
             "and build_model(params, input_shape, num_classes)",
    "dataset": "auto | mnist | fashion-mnist | cifar10 | cifar100 | mnist-5k | a .npz file (x_train, y_train, x_test, "
               "y_test, optionally x_val, y_val) | a directory of IDX files",
    "subset": "use only this many stratified training examples (0 = all)",
    "n_trials": "total finished (complete or pruned) trials in the study; a rerun resumes up to it",
    "timeout": "stop starting new trials after this many seconds (0 = no limit)",
    "sampler": "tpe | random",
    "seed": "sampler seed; also seeds each trial's weights (seed + trial number)",
    "pruner": "median | hyperband | none (prunes on per-epoch validation accuracy)",
    "objective": "val_accuracy | val_loss (minimized) | test_accuracy (test_accuracy reproduces the seed protocol)",
    "study_name": "Optuna study name (empty = '<model>-<dataset>')",
    "storage": "Optuna storage URL: sqlite:///PATH, postgresql://USER@HOST/DB, mysql://USER@HOST/DB, "
               "redis://HOST:PORT/DB, grpc://HOST:PORT (tunedeck proxy) or journal:///PATH (empty = "
               "$TUNEDECK_STORAGE, $OPTUNA_STORAGE, else "
               "sqlite:///<out_dir>/<study_name>/study.db)",
    "out_dir": "where logs, saved models and summaries are written",
    "keep_best": "how many best models to keep as .keras files",
    "patience": "early stopping: end a trial after this many epochs without a better val accuracy (its last "
                "epoch's weights are kept); while it is on, a range of epochs is a ceiling (its high), not searched "
                "(0 = off; always off in the seed protocol: test_accuracy with pruner none)",
    "lr_patience": "learning-rate schedule: halve the learning rate after this many epochs without a better val "
                   "accuracy, down to 1e-5 (0 = off; always off in the seed protocol)",
    "mixed_precision": "train in float16 with float32 outputs (GPUs with tensor cores)",
    "jit_compile": "XLA compilation of each trial's model: off | auto (Keras: on whenever a GPU is visible) | on; a "
                   "model file that compiles its model itself keeps its own compile (Keras' default there: auto)",
    "trial_timeout": "seconds a trial may train; past it the trial stops at its next batch as FAIL (0 = no limit)",
    "warm_start": "another study (NAME, or NAME@URL in another storage) whose best parameter sets a new study runs "
                  "first (enqueued; then the sampler goes on); empty = start from nothing",
    "warm_start_top": "how many of warm_start's best parameter sets to run first",
    "warm_start_prior": "give warm_start's finished trials to the sampler as prior knowledge instead, without "
                        "running them (the same model, data and objective only); they do not count in n_trials",
    "artifacts": "where the study's kept models, final model and figures are uploaded, for any machine to get: "
                 "file:///PATH or s3://BUCKET/PREFIX (empty = a folder beside a SQLite or journal file, else the run "
                 "folder: set it when workers run on several hosts)",
    "max_failures": "end the study after this many failed trials in a row (0 = never); out-of-memory trials and "
                    "stopped ones do not count",
    "workers": "worker processes to start on this machine, one training each, spread over the visible GPUs "
               "(0 = one per entry of gpus, else 1; \"auto\" = one per visible GPU, else 1); more workers on other "
               "machines join with the same storage and study_name",
    "gpus": "GPUs to spread the workers over, as CUDA_VISIBLE_DEVICES takes them, e.g. \"0,1\" or \"0,0,1,1\" (a GPU "
            "listed twice runs two workers on it) or UUID/MIG entries (each worker sees one)",
    "heartbeat": "seconds between a worker's heartbeats (an RDB storage's, or a journal trial's lease); a trial "
                 "whose worker stays silent for twice that becomes FAIL and is retried once by another worker",
    "storage_retry": "seconds a worker or a view rides out a storage that stops answering (a database restart, a "
                     "network blip), retrying with backoff; past that a worker stops (exit status 1) (0 = no retry)",
}


@dataclass
class StudyConfig:
    """Everything that defines a study. Empty/zero fields mean 'use the default'."""

    model: str = "mlp"
    dataset: str = "auto"
    subset: int = 0
    n_trials: int = 10
    timeout: float = 0
    sampler: str = "tpe"
    seed: int = 42
    pruner: str = "median"
    objective: str = "val_accuracy"
    study_name: str = ""
    storage: str = ""
    out_dir: str = "runs"
    keep_best: int = 3
    patience: int = 8
    lr_patience: int = 3
    mixed_precision: bool = False
    jit_compile: str = "off"
    trial_timeout: float = 0
    max_failures: int = 3
    warm_start: str = ""
    artifacts: str = ""
    warm_start_top: int = 3
    warm_start_prior: bool = False
    workers: int | str = 0
    gpus: str = ""
    heartbeat: int = 30
    storage_retry: float = 120
    space: list[Param] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.space and self.model in BUILTIN_SPECS:  # a model file's space comes when it is validated:
            self.space = BUILTIN_SPECS[self.model].default_space()  # constructing a config runs no user code

    @property
    def model_label(self) -> str:
        """`mlp`, `cnn`, or a model file's stem."""
        return Path(self.model).stem if self.model.endswith(".py") else self.model

    @property
    def name(self) -> str:
        """The study name, derived from model and dataset when not set (made a valid name)."""
        if self.study_name:
            return self.study_name
        derived = re.sub(r"[^\w.+=@,-]+", "-", f"{self.model_label}-{Path(self.dataset).name or self.dataset}")
        return derived.lstrip(".-")[:STUDY_NAME_LIMIT] or self.model_label

    @property
    def goal(self) -> Objective:
        """The objective as a rule (val_loss is minimized, the accuracies maximized): which values are better."""
        return Objective.of(self.objective)

    @property
    def monitored(self) -> Objective:
        """The per-epoch metric a trial reports, prunes and stops early on (its curve): val loss or val accuracy."""
        return self.goal.monitored

    @property
    def seed_protocol(self) -> bool:
        """Tuning on the test set without pruning reproduces the seed: every trial trains all its epochs."""
        return self.objective == "test_accuracy" and self.pruner == "none"

    @property
    def early_stopping_patience(self) -> int:
        """The patience in force: 0 (off) in the seed protocol."""
        return 0 if self.seed_protocol else self.patience

    @property
    def lr_plateau_patience(self) -> int:
        """The learning-rate schedule's patience in force: 0 (off) in the seed protocol."""
        return 0 if self.seed_protocol else self.lr_patience

    @property
    def trial_space(self) -> list[Param]:
        """The space trials draw from. With early stopping in force, `epochs` is a ceiling, not a search
        dimension: each trial trains up to the largest epochs allowed and stops when val accuracy stops
        improving (sampling it would only cut some trials short)."""
        if not self.early_stopping_patience:
            return self.space
        return [Param("epochs", "fixed", value=epochs_ceiling(param)) if param.name == "epochs" else param
                for param in self.space]

    @property
    def run_dir(self) -> Path:
        """Folder of this study's logs, models and summary."""
        return Path(self.out_dir) / self.name

    def make_run_dir(self) -> Path:
        """Create run_dir (and its parents); a folder that cannot be made is a ConfigError naming out_dir."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / f".write-test-{os.getpid()}-{threading.get_ident()}"  # workers may be threads
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"out_dir: cannot write to {str(self.run_dir)!r}: {exc.strerror or exc}") from None
        return self.run_dir

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL: `storage`, else $TUNEDECK_STORAGE or $OPTUNA_STORAGE (a password need not be
        on a command line or in a file), else a SQLite file in run_dir."""
        return self.storage or url_from_env() or f"sqlite:///{(self.run_dir / 'study.db').as_posix()}"

    @property
    def gpu_list(self) -> list[str]:
        """The GPU entries of `gpus` (a repeated one runs two workers on its GPU)."""
        return [gpu.strip() for gpu in self.gpus.split(",") if gpu.strip()]

    def worker_plan(self, visible: list[Gpu]) -> WorkerPlan:
        """The worker processes to start here, and the GPU each one sees (`visible`: engine.gpus.visible_gpus())."""
        return plan_workers(self.workers, self.gpu_list, visible)

    def param(self, name: str) -> Param:
        """One parameter of the space (KeyError if absent)."""
        for param in self.space:
            if param.name == name:
                return param
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for TOML and for the study's user attributes."""
        data = {f: getattr(self, f) for f in FIELD_HELP}
        data["space"] = {param.name: param.to_dict() for param in self.space}
        return data


def check_choice(where: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not allowed; choose one of {', '.join(allowed)}")


def check_number(where: str, value: Any, integer: bool, minimum: float, maximum: float) -> None:
    """Raise ConfigError unless `value` is a finite number (an integer if asked) in minimum..maximum."""
    ok_type = int if integer else (int, float)
    not_finite = isinstance(value, float) and not math.isfinite(value)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not_finite:
        raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'}, got {shown(value)}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{where}: must be in {plain(minimum)}..{plain(maximum)}, got {shown(value)}")


# Every number of a study: (integer, minimum, maximum); the maxima are what NumPy, TensorFlow and Optuna accept
# (a seed is 32 bits; per-trial seeds derived from it wrap around) or more than any real study needs.
NUMBER_RANGES: dict[str, tuple[bool, float, float]] = {
    "n_trials": (True, 1, 1_000_000), "timeout": (False, 0, 365 * 24 * 3600), "seed": (True, 0, 2**32 - 1),
    "subset": (True, 0, 1_000_000_000), "keep_best": (True, 0, 1000), "patience": (True, 0, 100_000),
    "lr_patience": (True, 0, 100_000),
    "heartbeat": (True, 1, 3600), "storage_retry": (False, 0, 7 * 24 * 3600),
    "trial_timeout": (False, 0, 365 * 24 * 3600), "max_failures": (True, 0, 1_000_000),
    "warm_start_top": (True, 1, 10_000),
}
MAX_WORKERS = 256
STUDY_NAME_LIMIT = 100
STUDY_NAME = re.compile(r"[\w][\w .+=@,-]*")  # a name: no path separators, no leading dot


def check_study_name(name: str) -> None:
    """Study names are names, not paths: they become a folder under out_dir."""
    if len(name) > STUDY_NAME_LIMIT:
        raise ConfigError(f"study_name: at most {STUDY_NAME_LIMIT} characters, got {len(name)}")
    if not STUDY_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"study_name: {shown(name)} is not a name; use letters, digits, spaces and . _ - + = @ , "
                          f"(no / or \\, no leading dot, no ..)")


def validate(config: StudyConfig) -> StudyConfig:
    """Raise ConfigError naming the first invalid field; return the config when valid."""
    spec = spec_for(config.model)
    if not config.space:
        config.space = spec.default_space()  # empty means the model's default
    check_choice("sampler", config.sampler, SAMPLERS)
    check_choice("pruner", config.pruner, PRUNERS)
    check_choice("objective", config.objective, OBJECTIVES)
    check_choice("jit_compile", config.jit_compile, JIT_COMPILE)
    if config.workers != "auto":
        if isinstance(config.workers, str) and config.workers.strip().isdigit():
            config.workers = int(config.workers)
        if isinstance(config.workers, bool) or not isinstance(config.workers, int):
            raise ConfigError(f"workers: expected a whole number or \"auto\", got {shown(config.workers)}")
        check_number("workers", config.workers, True, 0, MAX_WORKERS)
    for key, (integer, minimum, maximum) in NUMBER_RANGES.items():
        check_number(key, getattr(config, key), integer, minimum, maximum)
    for key in ("mixed_precision", "warm_start_prior"):
        if not isinstance(getattr(config, key), bool):
            raise ConfigError(f"{key}: expected true or false, got {getattr(config, key)!r}")
    if config.warm_start_prior and not config.warm_start:
        raise ConfigError("warm_start_prior: needs warm_start, the study whose trials to give the sampler")
    for key in ("dataset", "study_name", "storage", "out_dir", "gpus", "warm_start", "artifacts"):
        if not isinstance(getattr(config, key), str):
            raise ConfigError(f"{key}: expected a string, got {getattr(config, key)!r}")
    if config.artifacts:
        check_artifacts_url(config.artifacts)
    bad = not config.gpu_list and config.gpus.strip()  # ",,": entries that are all empty
    if bad or any(not GPU_ENTRY.fullmatch(gpu) for gpu in config.gpu_list) or len(config.gpu_list) > MAX_WORKERS:
        raise ConfigError(f"gpus: expected GPU indexes like 0,1 or 0,0,1,1 (or GPU-/MIG- UUIDs), got {config.gpus!r}")
    if not config.dataset:
        raise ConfigError("dataset: must not be empty; use auto, mnist, fashion-mnist, mnist-5k or a path")
    if not config.out_dir:
        raise ConfigError("out_dir: must not be empty; e.g. runs")
    check_study_name(config.name)
    if config.storage:
        check_url(config.storage)
    check_space(spec, config.space)
    return config
