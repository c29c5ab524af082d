"""A StudyConfig as TOML: read, checked and written (atomically)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from engine.errors import ConfigError, shown
from engine.files import write_text_atomically
from engine.models import spec_for
from engine.space import Param
from engine.study.config import FIELD_HELP, StudyConfig, validate

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
              "# categorical (choices) or fixed (value). `name = value` also fixes a parameter; `name = [a, b]` is a "
              "categorical of a and b."]
    lines.append(tomli_w.dumps({"space": data["space"]}).rstrip())
    return "\n".join(lines) + "\n"


def save_config(config: StudyConfig, path: str | Path, comments: bool = False) -> None:
    """Write the config as TOML, atomically."""
    write_text_atomically(path, dump_config(config, comments))


def config_from_dict(data: dict[str, Any], base: Path | None = None) -> StudyConfig:
    """Build and validate a StudyConfig from plain data (a parsed TOML file). A model file's path is relative
    to `base` (the config file's folder), and kept absolute."""
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
        if key == "workers" and value == "auto":
            continue
        if type(value) is not type(default):
            raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
    config = StudyConfig(**data)
    if space_data is not None:
        if not isinstance(space_data, dict):
            raise ConfigError("space: must be a table of parameters, e.g. [space.epochs]")
        params = {param.name: param for param in spec_for(model).default_space()}
        for name, table in space_data.items():
            params[name] = Param.from_table(name, table)
        config.space = list(params.values())
    validate(config)
    return config
