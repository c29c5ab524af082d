"""Form text <-> config data, and every field's error at once (using the engine's own validation)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from engine import ConfigError, Param, StudyConfig
from engine.errors import shown
from engine.study import config_from_dict

MAX_ERRORS = 30
# form fields holding numbers: field -> int or float
NUMBER_FIELDS = {"subset": int, "n_trials": int, "timeout": float, "seed": int, "patience": int, "lr_patience": int,
                 "workers": int, "heartbeat": int, "storage_retry": float, "trial_timeout": float, "max_failures": int}
OPTIONAL_NUMBERS = ("subset", "timeout", "workers", "trial_timeout")  # empty means none, or the default
TEXT_FIELDS = ("study_name", "storage", "out_dir", "gpus", "artifacts", "warm_start")
CHOICE_FIELDS = ("model", "sampler", "pruner", "objective", "jit_compile")


def parse_number(where: str, text: str, kind: type = float) -> int | float:
    """`"5"` -> 5; `"1e-3"` -> 0.001; bad text (400 digits included) is a ConfigError naming the field."""
    text = text.strip()
    expected = "a whole number" if kind is int else "a number"
    if re.fullmatch(r"[+-]?\d{1,30}", text):
        return int(text)  # exact, however large: the config's ranges say what is allowed
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: expected {expected}, got {shown(text)}") from None
    if not math.isfinite(value) or abs(value) >= 1e30:
        raise ConfigError(f"{where}: {shown(text)} is far too large")
    if kind is int and value != int(value):
        raise ConfigError(f"{where}: expected a whole number, got {shown(text)}")
    return int(value) if kind is int else value


def parse_value(where: str, text: str) -> Any:
    """A choice or fixed value as typed: a number (`64`, `1e-3`), true/false, else a string (`relu`, `"adam"`)."""
    text = text.strip()
    if not text:
        raise ConfigError(f"{where}: enter a value")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[-+0-9.eE]+", text):
        return parse_number(where, text)
    return text.strip("\"'")


def parse_choices(where: str, text: str) -> list[Any]:
    """`"64, 128, 256"` -> [64, 128, 256]; `"relu, tanh"` -> ["relu", "tanh"]."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"{where}: must be a non-empty list of values, e.g. 64, 128 (or relu, tanh)")
    return [parse_value(where, item) for item in items]


def param_fields(param: Param) -> dict[str, str]:
    """A param as the text of its row's inputs."""
    def text(value: Any) -> str:
        return "" if value is None else str(value)

    def shown(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else text(value)

    return {"kind": param.kind, "low": text(param.low), "high": text(param.high), "step": text(param.step),
            "log": param.log, "choices": ", ".join(map(shown, param.choices)), "value": shown(param.value)}


def param_data(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A row's text as a TOML-like table; bad numbers raise ConfigError naming the field."""
    where = f"space.{name}"
    kind = fields["kind"]
    if kind == "categorical":
        return {"kind": kind, "choices": parse_choices(f"{where}.choices", fields["choices"])}
    if kind == "fixed":
        return {"kind": kind, "value": parse_value(f"{where}.value", fields["value"])}
    data: dict[str, Any] = {"kind": kind, "log": bool(fields["log"])}
    for bound in ("low", "high"):
        data[bound] = parse_number(f"{where}.{bound}", fields[bound])
    if fields["step"].strip():
        data["step"] = parse_number(f"{where}.step", fields["step"])
    return data


def form_to_data(values: dict[str, Any], space: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Form text -> config data; fields whose text cannot be parsed come back as errors instead."""
    data: dict[str, Any] = {key: values[key] for key in CHOICE_FIELDS + TEXT_FIELDS}
    data["mixed_precision"] = bool(values["mixed_precision"])
    errors: dict[str, str] = {}
    data["dataset"] = values["path"].strip() if values["dataset"] == "path" else values["dataset"]
    if values["dataset"] == "path":
        if not data["dataset"]:
            errors["dataset"] = "dataset: enter the path of a .npz file or an IDX directory"
        elif not Path(data["dataset"]).expanduser().exists():
            errors["dataset"] = f"dataset: {data['dataset']!r} does not exist"
    for key, kind in NUMBER_FIELDS.items():
        text = values[key].strip()
        if key in OPTIONAL_NUMBERS and not text:
            continue
        if key == "workers" and text.lower() == "auto":
            data[key] = "auto"
            continue
        try:
            data[key] = parse_number(key, text, kind)
        except ConfigError as exc:
            errors[key] = str(exc) + (' or "auto"' if key == "workers" and "expected" in str(exc) else "")
    data["space"] = {}
    for name, fields in space.items():
        try:
            data["space"][name] = param_data(name, fields)
        except ConfigError as exc:
            errors[f"space.{name}"] = str(exc)
    return data, errors


def form_field(error: ConfigError) -> str:
    """The form field of the field an error names: `space.epochs.step` -> `space.epochs` (the parameter's row);
    `n_trials` -> `n_trials`."""
    parts = error.field.split(".")
    return ".".join(parts[:2]) if parts[0] == "space" else parts[0]


def check_form(values: dict[str, Any], space: dict[str, dict[str, Any]]) -> tuple[StudyConfig | None, dict[str, str]]:
    """The config the form describes, or None with every field's error (field -> message)."""
    data, errors = form_to_data(values, space)
    for name in [field for field in errors if field in data]:
        del data[name]  # validate the rest with that field's default
    for _ in range(MAX_ERRORS):
        try:
            config = config_from_dict(data)
        except ConfigError as exc:
            field = form_field(exc)
            if field in errors or not _drop(data, field):
                errors.setdefault(field, str(exc))
                break
            errors[field] = str(exc)
            continue
        return (config, errors) if not errors else (None, errors)
    return None, errors


def _drop(data: dict[str, Any], field: str) -> bool:
    """Remove a bad field so the next validation pass finds the next error; False if not removable."""
    if field.startswith("space."):
        return data.get("space", {}).pop(field.split(".")[1], None) is not None
    return data.pop(field, None) is not None

