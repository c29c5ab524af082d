"""Studies side by side (`tunedeck compare`, the app's compare screen): one column per study (objective, best
value and its test accuracy, trial counts, total time, time to reach the final best, best parameters, model, data,
sampler, pruner, warm start), and the comparison as text fitted to a terminal's width. Its Markdown and the
overlaid best-so-far curves are in compare_export.py.

A column is computed once from the stored study and holds plain data, so the Markdown, the terminal's text table,
the PNGs and the app's chart all read the same values. A plain Optuna study (no tunedeck attributes) shows "-".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from engine.contract import Objective
from engine.errors import ConfigError
from engine.report.formatting import number_text, params_text, seconds_text
from engine.store import mask_url, reading_study, schema, study_objective

GAP = 2  # spaces between two columns of the text table
MIN_COLUMN = 8  # the narrowest a study's column gets in the text table
LABEL_WIDTH = (12, 17)  # the measures' column of the text table at a narrow width: its narrowest, and its widest


@dataclass(frozen=True)
class StudyColumn:
    """One study as the comparison shows it. The series hold only the points where the best improved."""

    name: str
    storage: str  # masked
    goal: Objective
    best_value: float | None = None
    best_trial: int | None = None
    test_accuracy: float | None = None
    complete: int = 0
    pruned: int = 0
    failed: int = 0  # as tunedeck shows them: an out-of-memory trial (stored PRUNED) is failed
    running: int = 0
    total_seconds: float | None = None  # the first trial's start to the last trial's end
    last_trial: int | None = None  # the highest finished trial's number
    best_params: dict[str, Any] = field(default_factory=dict)
    model: str = "-"
    data: str = "-"
    sampler: str = "-"
    pruner: str = "-"
    warm_start: str = "-"
    by_time: tuple[tuple[float, float], ...] = ()  # (seconds since the first trial started, best so far)
    by_trial: tuple[tuple[int, float], ...] = ()  # (trial number, best so far)

    @property
    def to_best_seconds(self) -> float | None:
        """When the final best was first reached, in seconds since the study's first trial started."""
        return self.by_time[-1][0] if self.by_time else None

    def steps(self, by: str) -> tuple[list[float], list[float]]:
        """The best-so-far line as a staircase (`by` "time" or "trial"): the best holds until a trial beats it, and
        the line runs on to the study's end (its total time, or its last finished trial)."""
        points = self.by_time if by == "time" else self.by_trial
        end = self.total_seconds if by == "time" else self.last_trial
        xs: list[float] = []
        ys: list[float] = []
        for x, y in points:
            if ys:
                xs.append(x)
                ys.append(ys[-1])
            xs.append(x)
            ys.append(y)
        if ys and end is not None and end > xs[-1]:
            xs.append(end)
            ys.append(ys[-1])
        return xs, ys


def _improvements(points: Iterable[tuple[Any, Any]], goal: Objective) -> tuple:
    """The points (x, value), in order, at which the value beat every earlier one."""
    kept: list[tuple[Any, float]] = []
    for x, value in points:
        if goal.better(value, kept[-1][1] if kept else None):
            kept.append((x, value))
    return tuple(kept)


def study_column(study: optuna.Study, storage_url: str = "") -> StudyColumn:
    """The comparison's column of one stored study. Trials copied in as prior knowledge were not run here: they are
    left out of the counts, the best and the curves."""
    try:
        goal = study_objective(study)
    except RuntimeError:  # Optuna: a study of several objectives has no single direction
        raise ConfigError(f"compare: study {study.study_name!r} has {len(study.directions)} objectives; compare "
                          "takes studies of one objective") from None
    trials = [t for t in study.get_trials(deepcopy=False) if schema.PRIOR not in t.user_attrs]
    states = [schema.state_name(t) for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = goal.best(complete, lambda t: t.value)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    first = min(starts) if starts else None
    done = sorted((t for t in complete if first and t.datetime_complete), key=lambda t: t.datetime_complete)
    attrs = study.user_attrs
    config = attrs.get(schema.CONFIG) or {}
    return StudyColumn(
        name=study.study_name, storage=mask_url(storage_url) if storage_url else "", goal=goal,
        best_value=None if best is None else best.value, best_trial=None if best is None else best.number,
        test_accuracy=None if best is None else best.user_attrs.get(schema.TEST_ACCURACY),
        complete=states.count("COMPLETE"), pruned=states.count("PRUNED"), failed=states.count("FAIL"),
        running=states.count("RUNNING") + states.count("WAITING"),
        total_seconds=(max(ends) - first).total_seconds() if first and ends else None,
        last_trial=max((t.number for t in trials if t.state.is_finished()), default=None),
        best_params={} if best is None else dict(best.params),
        model=_model_text(config, attrs.get(schema.MODEL) or {}), data=_data_text(attrs.get(schema.DATA) or {}),
        sampler=_sampler_text(config), pruner=str(config.get("pruner", "-")),
        warm_start=_warm_start_text(attrs.get(schema.WARM_START)),
        by_time=_improvements((((t.datetime_complete - first).total_seconds(), t.value) for t in done), goal),
        by_trial=_improvements(((t.number, t.value) for t in complete), goal),
    )


def read_columns(addresses: Iterable[tuple[str, str]]) -> list[StudyColumn]:
    """The column of each (storage URL, study name), each study opened to read only. An unknown study or storage
    is a StorageError naming it."""
    columns = []
    for url, name in addresses:
        with reading_study(url, name) as study:
            columns.append(study_column(study, url))
    return columns


def _model_text(config: dict[str, Any], model: dict[str, Any]) -> str:
    """`mlp`, or a model file by name and the start of its contents' hash."""
    if model.get("sha256"):
        return f"{Path(model.get('path') or model.get('name') or '?').name} sha256 {model['sha256'][:8]}"
    name = model.get("name") or config.get("model")
    return Path(str(name)).name if name else "-"


def _data_text(data: dict[str, Any]) -> str:
    """`mnist 48000 train 12000 val 10000 test`: the dataset and what each part held."""
    if not data.get("name"):
        return "-"
    parts = [f"{data[key]} {word}" for key, word in (("n_train", "train"), ("n_val", "val"), ("n_test", "test"))
             if data.get(key) is not None]
    return " ".join([str(data["name"]), *parts])


def _sampler_text(config: dict[str, Any]) -> str:
    if not config.get("sampler"):
        return "-"
    return f"{config['sampler']} seed {config['seed']}" if config.get("seed") is not None else str(config["sampler"])


def _warm_start_text(warm: Any) -> str:
    """`from mlp-a top 5 prior 40`: the study it was started from and how; "-" for none."""
    if not isinstance(warm, dict) or not warm.get("from"):
        return "-"
    parts = []
    for key in ("top", "prior", "enqueued", "skipped", "clipped"):
        value = warm.get(key)
        if isinstance(value, list | tuple | set | dict):
            value = len(value)
        if value is True:
            parts.append(key)
        elif value not in (None, False, 0, ""):
            parts.append(f"{key} {value}")
    return " ".join([f"from {warm['from']}", *parts])


def titles(columns: list[StudyColumn]) -> list[str]:
    """Each column's heading: its study's name, numbered where two storages hold studies of the same name."""
    counts = {name: sum(c.name == name for c in columns) for name in {c.name for c in columns}}
    seen: dict[str, int] = {}
    out = []
    for column in columns:
        seen[column.name] = seen.get(column.name, 0) + 1
        out.append(column.name if counts[column.name] == 1 else f"{column.name} ({seen[column.name]})")
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else seconds_text(value)


def compare_rows(columns: list[StudyColumn]) -> list[tuple[str, list[str]]]:
    """(measure, each study's text) of every row of the comparison, in the order it shows them; the storage row only
    when the studies are in more than one storage."""
    def row(label: str, text) -> tuple[str, list[str]]:
        return label, [text(column) for column in columns]

    rows = [row("storage", lambda c: c.storage or "-")] if len({c.storage for c in columns}) > 1 else []
    return rows + [
        row("objective", lambda c: f"{c.goal.label} ({'max' if c.goal.maximize else 'min'})"),
        row("best value", lambda c: number_text(c.best_value)),
        row("best trial", lambda c: "-" if c.best_trial is None else str(c.best_trial)),
        row("its test accuracy", lambda c: number_text(c.test_accuracy)),
        row("trials complete", lambda c: str(c.complete)),
        row("trials pruned", lambda c: str(c.pruned)),
        row("trials failed", lambda c: str(c.failed)),
        *([row("trials running", lambda c: str(c.running))] if any(c.running for c in columns) else []),
        row("total time", lambda c: _seconds(c.total_seconds)),
        row("time to best", lambda c: _seconds(c.to_best_seconds)),
        row("best parameters", lambda c: params_text(c.best_params) or "-"),
        row("model", lambda c: c.model),
        row("data", lambda c: c.data),
        row("sampler", lambda c: c.sampler),
        row("pruner", lambda c: c.pruner),
        row("warm start", lambda c: c.warm_start),
    ]


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width`, broken between words; a word too long is broken after its `=` (a
    parameter's name, then its value), else cut."""
    words = []
    for word in text.split():
        word_parts = [word]
        if len(word) > width and "=" in word[:-1]:
            name, value = word.split("=", 1)
            keep = width - len(value) - 2  # the name's first letters, "…=", the value
            if keep >= 3:
                word_parts = [f"{name[:keep]}…={value}"]
            else:  # the name on a line of its own, the value on the next
                word_parts = [name + "=" if len(name) < width else f"{name[:width - 2]}…=", value]
        for part in word_parts:
            words += [part[i:i + width] for i in range(0, len(part), width)] or [""]
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _widths(natural: list[int], room: int) -> list[int]:
    """Each column's width in `room`: its natural width when all fit, else fair shares, a column that needs less
    than its share giving the rest to the others."""
    if sum(natural) <= room:
        return natural
    widths = [0] * len(natural)
    left, open_columns = room, list(range(len(natural)))
    while open_columns:
        share = max(MIN_COLUMN, left // len(open_columns))
        narrow = [i for i in open_columns if natural[i] <= share]
        if not narrow:
            for i in open_columns:
                widths[i] = share
            break
        for i in narrow:
            widths[i] = natural[i]
            left -= natural[i]
            open_columns.remove(i)
    return widths


def compare_text(columns: list[StudyColumn], width: int = 80) -> str:
    """The comparison as plain text in `width` columns: the measures down the left, one column per study, long
    cells (the best parameters) wrapped in their column."""
    rows = [("", titles(columns)), *compare_rows(columns)]
    natural = [max(len(texts[i]) for _, texts in rows) for i in range(len(columns))]
    longest = max(len(label) for label, _ in rows)  # the measures get what the studies leave, at least a quarter
    spare = width - GAP * len(columns) - sum(natural)
    label_width = min(longest, max(spare, LABEL_WIDTH[0], min(LABEL_WIDTH[1], width // 4)))
    room = width - label_width - GAP * len(columns)
    widths = _widths(natural, room)
    lines = []
    for index, (label, texts) in enumerate(rows):
        cells = [_wrap(label, label_width), *(_wrap(text, w) for text, w in zip(texts, widths, strict=True))]
        for parts in itertools.zip_longest(*cells, fillvalue=""):
            line = parts[0].ljust(label_width) + "".join(" " * GAP + part.ljust(w)
                                                         for part, w in zip(parts[1:], widths, strict=True))
            lines.append(line.rstrip())
        if index == 0:
            lines.append("-" * min(width, label_width + sum(widths) + GAP * len(columns)))
    return "\n".join(lines)
