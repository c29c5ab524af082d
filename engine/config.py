"""Study configuration: typed dataclasses, TOML load/save and validation."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from engine.errors import ConfigError

SAMPLERS = ("tpe", "random")
PRUNERS = ("asha", "median", "hyperband", "none")  # asha: successive halving (SuccessiveHalvingPruner)
OBJECTIVES = ("val_accuracy", "test_accuracy", "val_loss")  # val_loss is minimized, the others maximized
KINDS = ("int", "float", "categorical", "fixed")


@dataclass
class ParamSpec:
    """One hyperparameter: an int or float range, a list of choices, or a fixed value."""

    name: str
    kind: str  # one of KINDS
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list[Any] = field(default_factory=list)
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The TOML table for this parameter (name excluded, empty fields dropped)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high)
            if self.step is not None:
                out["step"] = self.step
            if self.log:
                out["log"] = True
        elif self.kind == "categorical":
            out["choices"] = list(self.choices)
        else:
            out["value"] = self.value
        return out

    def describe(self) -> str:
        """A short human description: `int 2..4 step 1`, `[64, 128]`, `= 0.001`."""
        if self.kind == "categorical":
            return "[" + ", ".join(map(str, self.choices)) + "]"
        if self.kind == "fixed":
            return f"= {self.value}"
        text = f"{self.kind} {self.low}..{self.high}"
        if self.step not in (None, 1):
            text += f" step {self.step}"
        return text + (" log" if self.log else "")


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
    "storage": "Optuna storage URL: sqlite:///PATH, postgresql://USER@HOST/DB, mysql://USER@HOST/DB or "
               "journal:///PATH (empty = $TUNEDECK_STORAGE, $OPTUNA_STORAGE, else "
               "sqlite:///<out_dir>/<study_name>/study.db)",
    "out_dir": "where logs, saved models and summaries are written",
    "keep_best": "how many best models to keep as .keras files",
    "patience": "early stopping: end a trial after this many epochs without a better val accuracy (its last "
                "epoch's weights are kept); while it is on, a range of epochs is a ceiling (its high), not searched "
                "(0 = off; always off in the seed protocol: test_accuracy with pruner none)",
    "lr_patience": "learning-rate schedule: halve the learning rate after this many epochs without a better val "
                   "accuracy, down to 1e-5 (0 = off; always off in the seed protocol)",
    "mixed_precision": "train in float16 with float32 outputs (GPUs with tensor cores)",
    "workers": "worker processes to start on this machine, one training each (0 = one per GPU in gpus, else 1); "
               "more workers on other machines join with the same storage and study_name",
    "gpus": "GPU indexes to spread the workers over, e.g. \"0,1\" (each worker sees one: CUDA_VISIBLE_DEVICES)",
    "heartbeat": "seconds between a worker's heartbeats on an RDB storage; a trial whose worker stays silent for "
                 "twice that becomes FAIL and is retried once by another worker",
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
    workers: int = 0
    gpus: str = ""
    heartbeat: int = 30
    space: list[ParamSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.space:
            from engine.specs import spec_for

            try:
                self.space = spec_for(self.model).default_space()
            except ConfigError:
                self.space = []  # validate() names the model's problem

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
    def maximize(self) -> bool:
        """Accuracies are maximized, val_loss minimized."""
        return self.objective != "val_loss"

    @property
    def monitor(self) -> str:
        """The per-epoch metric a trial reports, prunes and stops early on."""
        return "val_loss" if self.objective == "val_loss" else "val_accuracy"

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
    def trial_space(self) -> list[ParamSpec]:
        """The space trials draw from. With early stopping in force, `epochs` is a ceiling, not a search
        dimension: each trial trains up to the largest epochs allowed and stops when val accuracy stops
        improving (sampling it would only cut some trials short)."""
        if not self.early_stopping_patience:
            return self.space
        return [ParamSpec("epochs", "fixed", value=epochs_ceiling(spec)) if spec.name == "epochs" else spec
                for spec in self.space]

    @property
    def run_dir(self) -> Path:
        """Folder of this study's logs, models and summary."""
        return Path(self.out_dir) / self.name

    def make_run_dir(self) -> Path:
        """Create run_dir (and its parents); a folder that cannot be made is a ConfigError naming out_dir."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / f".write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"out_dir: cannot write to {str(self.run_dir)!r}: {exc.strerror or exc}") from None
        return self.run_dir

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL: `storage`, else $TUNEDECK_STORAGE or $OPTUNA_STORAGE (a password need not be
        on a command line or in a file), else a SQLite file in run_dir."""
        from engine.storage import url_from_env

        return self.storage or url_from_env() or f"sqlite:///{(self.run_dir / 'study.db').as_posix()}"

    @property
    def gpu_list(self) -> list[str]:
        """The GPU indexes of `gpus`."""
        return [gpu.strip() for gpu in self.gpus.split(",") if gpu.strip()]

    @property
    def n_workers(self) -> int:
        """How many worker processes to start: `workers`, else one per GPU, else 1."""
        return self.workers or len(self.gpu_list) or 1

    def param(self, name: str) -> ParamSpec:
        """The spec for one parameter (KeyError if absent)."""
        for spec in self.space:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for TOML and for the study's user attributes."""
        data = {f: getattr(self, f) for f in FIELD_HELP}
        data["space"] = {spec.name: spec.to_dict() for spec in self.space}
        return data


def epochs_ceiling(spec: ParamSpec) -> int:
    """The most epochs a spec of `epochs` allows."""
    if spec.kind == "fixed":
        return int(spec.value)
    return int(max(spec.choices) if spec.kind == "categorical" else spec.high)


def config_from_dict(data: dict[str, Any], base: Path | None = None) -> StudyConfig:
    """Build and validate a StudyConfig from plain data (a parsed TOML file). A model file's path is relative
    to `base` (the config file's folder), and kept absolute."""
    from engine.specs import spec_for

    data = dict(data)
    unknown = set(data) - set(FIELD_HELP) - {"space"}
    if unknown:
        raise ConfigError(f"unknown setting {sorted(unknown)[0]!r}; allowed: {', '.join(FIELD_HELP)}, space")
    space_data = data.pop("space", None)
    model = data.get("model", "mlp")
    if not isinstance(model, str):
        raise ConfigError(f"model: expected a string, got {shown(model)}")
    if model.endswith(".py"):
        data["model"] = model = str((base or Path.cwd()) / Path(model).expanduser())
    spec_for(model)
    for key, value in data.items():
        default = getattr(StudyConfig, key)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, (int, float)):
            continue
        if type(value) is not type(default):
            raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
    config = StudyConfig(**data)
    if space_data is not None:
        if not isinstance(space_data, dict):
            raise ConfigError("space: must be a table of parameters, e.g. [space.epochs]")
        specs = {spec.name: spec for spec in spec_for(model).default_space()}
        for name, table in space_data.items():
            specs[name] = spec_from_table(name, table)
        config.space = list(specs.values())
    validate(config)
    return config


def spec_from_table(name: str, table: Any) -> ParamSpec:
    """One parameter from its TOML table (or a bare value, which fixes it)."""
    where = f"space.{name}"
    if not isinstance(table, dict):  # `epochs = 3` is shorthand for a fixed value
        return ParamSpec(name, "fixed", value=table)
    table = dict(table)
    kind = table.pop("kind", None)
    if kind is None:
        kind = "categorical" if "choices" in table else "fixed" if "value" in table else "int"
    _check_choice(f"{where}.kind", kind, KINDS)
    allowed = {"int": {"low", "high", "step", "log"}, "float": {"low", "high", "step", "log"},
               "categorical": {"choices"}, "fixed": {"value"}}[kind]
    extra = set(table) - allowed
    if extra:
        raise ConfigError(f"{where}.{sorted(extra)[0]}: not a field of a {kind} parameter; "
                          f"allowed: {', '.join(sorted(allowed))}")
    return ParamSpec(name, kind, **table)


def _check_choice(where: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not allowed; choose one of {', '.join(allowed)}")


def shown(value: Any, limit: int = 40) -> str:
    """A value as an error message quotes it: its repr, cut short (a 400-digit number stays one line)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plain(number: float) -> str:
    """1000000 and 1e-07 as people write them in a config."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


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
    "heartbeat": (True, 1, 3600), "workers": (True, 0, 256),
}
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
    from engine.specs import spec_for

    spec_for(config.model)
    _check_choice("sampler", config.sampler, SAMPLERS)
    _check_choice("pruner", config.pruner, PRUNERS)
    _check_choice("objective", config.objective, OBJECTIVES)
    for key, (integer, minimum, maximum) in NUMBER_RANGES.items():
        check_number(key, getattr(config, key), integer, minimum, maximum)
    if not isinstance(config.mixed_precision, bool):
        raise ConfigError(f"mixed_precision: expected true or false, got {config.mixed_precision!r}")
    for key in ("dataset", "study_name", "storage", "out_dir", "gpus"):
        if not isinstance(getattr(config, key), str):
            raise ConfigError(f"{key}: expected a string, got {getattr(config, key)!r}")
    if any(not gpu.isdigit() for gpu in config.gpu_list):
        raise ConfigError(f"gpus: expected GPU indexes like 0,1,2, got {config.gpus!r}")
    if not config.dataset:
        raise ConfigError("dataset: must not be empty; use auto, mnist, fashion-mnist, mnist-5k or a path")
    if not config.out_dir:
        raise ConfigError("out_dir: must not be empty; e.g. runs")
    check_study_name(config.name)
    if config.storage:
        from engine.storage import check_url

        check_url(config.storage)
    from engine.space import check_space

    check_space(config.model, config.space)
    return config


CONFIG_SIZE_LIMIT = 1_000_000  # bytes; a real config is a few kB


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML config file into plain data (not yet validated). Only a regular text file of sane size is
    read (a directory, a device or a 10 GB file is refused before reading); a UTF-8 BOM is fine."""
    path = Path(path)
    try:
        if not path.exists():
            raise ConfigError(f"config: file {str(path)!r} not found")
        if path.is_dir():
            raise ConfigError(f"config: {str(path)!r} is a directory, not a TOML file")
        if not path.is_file():
            raise ConfigError(f"config: {str(path)!r} is not a regular file (a device or a pipe?)")
        if path.stat().st_size > CONFIG_SIZE_LIMIT:
            raise ConfigError(f"config: {str(path)!r} is {path.stat().st_size:,} bytes; a config is at most "
                              f"{CONFIG_SIZE_LIMIT:,}")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if b"\0" in raw:
        raise ConfigError(f"config: {str(path)!r} is a binary file, not TOML")
    try:
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a TOML config file (a model file in it is relative to the file's folder)."""
    return config_from_dict(read_toml(path), Path(path).absolute().parent)


def dump_config(config: StudyConfig, comments: bool = False) -> str:
    """The config as TOML text; with comments, each setting is preceded by its help."""
    data = config.to_dict()
    if not comments:
        return tomli_w.dumps(data)
    lines = ["# tunedeck study config. Every setting may be overridden by a `tunedeck run` flag.", ""]
    for key, help_text in FIELD_HELP.items():
        lines += [f"# {help_text}", tomli_w.dumps({key: data[key]}).rstrip()]
    lines += ["", "# Search space: one table per parameter. kind = int | float (low, high, step, log),",
              "# categorical (choices) or fixed (value). `name = value` also fixes a parameter."]
    lines.append(tomli_w.dumps({"space": data["space"]}).rstrip())
    return "\n".join(lines) + "\n"


def save_config(config: StudyConfig, path: str | Path, comments: bool = False) -> None:
    """Write the config as TOML, atomically."""
    from engine.files import write_text_atomically

    write_text_atomically(path, dump_config(config, comments))

