"""A study as a Markdown summary: config, environment, counts, best, top 10, importances, history."""

from __future__ import annotations

import contextlib
import itertools
import statistics
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.contract import Objective
from engine.files import write_text_atomically
from engine.report.figures import write_figures, write_trials_csv
from engine.report.formatting import number_text, seconds_text, table
from engine.space import Param, epochs_ceiling
from engine.store import mask_url, reading_study, schema, study_objective, upload_to_study
from engine.store.follower import MIN_TRIALS_FOR_IMPORTANCE
from engine.study import stored_config

TOP_N = 10


def write_report(study: optuna.Study, path: str | Path, plots: bool = True) -> Path:
    """Write the summary to `path`, with trials.csv and (unless plots=False) the PNG figures in plots/ beside
    it, linked by relative paths so the folder renders as it is (on GitHub, say). Every file is atomic."""
    path = Path(path)
    try:
        figures = write_figures(study, path.parent / "plots") if plots else None
        write_trials_csv(study, path.parent / "trials.csv")
        written = write_text_atomically(path, render_report(study, figures, csv="trials.csv"))
    except OSError:
        with contextlib.suppress(OSError):
            (path.parent / "plots").rmdir()  # only if it is empty: nothing of a failed export is left
        raise
    upload_to_study(study, [figure.path for figure in figures or [] if figure.path is not None])
    return written



def export_report(storage_url: str, study_name: str, path: str | Path, plots: bool = True) -> Path:
    """Read a stored study and write its summary (and figures, and trials.csv) to `path`."""
    with reading_study(storage_url, study_name) as study:
        return write_report(study, path, plots)


def history_chart(trials: list[FrozenTrial], goal: Objective, width: int = 72, height: int = 16) -> str:
    """Each complete trial's value and the best-so-far line, as plain text (plotext, no colours)."""
    import plotext as plt

    numbers = [t.number for t in trials]
    values = [t.value for t in trials]
    best = list(itertools.accumulate(values, lambda best, value: value if goal.better(value, best) else best))
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    plt.scatter(numbers, values, marker="*", label="trial value")
    plt.plot(numbers, best, marker="braille", label="best so far")
    plt.xlabel("trial")
    if len(numbers) <= 12:
        plt.xticks(numbers)
    text = plt.uncolorize(plt.build())
    plt.clf()
    return "\n".join(line.rstrip() for line in text.splitlines())


def render_report(study: optuna.Study, figures: list | None = None, csv: str = "") -> str:
    """The whole Markdown summary of a study; `figures` (engine.report.figures.Figure) and `csv` are linked when
    given."""
    attrs = study.user_attrs
    config: dict[str, Any] = attrs.get("config", {})
    env: dict[str, str] = attrs.get("environment", {})
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if schema.state_name(t) == "COMPLETE"]  # prior knowledge was not run here
    out = [f"# tunedeck study `{study.study_name}`", ""]

    settings = {k: mask_url(v) if k == "storage" else v for k, v in config.items() if k != "space"}
    if "artifacts" in settings and attrs.get(schema.ARTIFACT_STORE):
        settings["artifacts"] = attrs[schema.ARTIFACT_STORE]  # the store the study records (the default, resolved)
    if settings:
        out += ["## Configuration", "", table(["setting", "value"], [[k, v] for k, v in settings.items()]), ""]
    space = config.get("space", {})
    if space:
        rows = [[name, table.get("kind"), Param(name, **table).describe()] for name, table in space.items()]
        out += ["## Search space", "", table(["parameter", "kind", "values"], rows), ""]
        out += _epochs_note(config)
    out += _warm_start(attrs.get(schema.WARM_START))
    out += _model_and_data(attrs)
    if env:
        out += ["## Environment", "", table(["item", "value"], [[k, v] for k, v in env.items()]), ""]
    out += _workers(attrs, trials)

    counts = {name: sum(schema.state_name(t) == name for t in trials) for name in [*TrialState.__members__, "PRIOR"]}
    rows = [[k, v] for k, v in counts.items() if v] + [["total", len(trials)]]
    out += ["## Trials", "", table(["state", "count"], rows), ""]
    out += _failures(trials)
    out += _xla(trials)

    if not complete:
        return "\n".join(out + ["No trial has completed yet.", ""] + _figures(figures, csv))
    goal = study_objective(study)
    best = goal.best(complete, lambda t: t.value)
    out += ["## Best trial", "", f"Trial {best.number}: {goal.label} {number_text(best.value)}, "
            f"val accuracy {number_text(best.user_attrs.get('val_accuracy'))}, "
            f"test accuracy {number_text(best.user_attrs.get('test_accuracy'))}, "
            f"{best.user_attrs.get('epochs_trained', '-')} epochs trained.", "",
            table(["parameter", "value"], [[k, v] for k, v in {**best.user_attrs.get("fixed_params", {}),
                                                               **best.params}.items()]), ""]
    out += _top_table(complete, goal)
    out += _importances(study, len(complete))
    ordered = sorted(complete, key=lambda t: t.number)
    out += ["## Optimization history", "", "```text", history_chart(ordered, goal), "```", ""]
    out += _figures(figures, csv)
    out += _timing(trials)
    return "\n".join(out)


def _warm_start(record: dict[str, Any] | None) -> list[str]:
    """What the study was started from: another study's best parameter sets run first, or its trials as prior."""
    if not record:
        return []
    source = f"study `{record['from']}` ({record['storage']})"
    if record.get("prior"):
        text = (f"Warm-started from {source}: its {len(record['enqueued'])} finished trials were given to the sampler "
                f"as prior knowledge (state PRIOR: not run here, not counted in n_trials).")
    else:
        text = (f"Warm-started from {source}: its best {record['top']} parameter sets ran first (its trials "
                f"{', '.join(map(str, record['enqueued'])) or 'none'}), then the sampler went on.")
    lines = ["## Warm start", "", text]
    lines += [f"- its trial {number} skipped: {why}" for number, why in record.get("skipped", [])]
    lines += [f"- its trial {number} clipped to this space: {change}" for number, change in record.get("clipped", [])]
    return [*lines, ""]


def _failures(trials: list, most: int = 10) -> list[str]:
    """Why trials failed (timed out, out of GPU memory, a broken model...), the reasons counted, with an example."""
    reasons: dict[str, list[int]] = {}
    for trial in trials:
        if schema.state_name(trial) == "FAIL" and not schema.stopped(trial):
            reason = schema.trial_error(trial).split(":", 1)[0]
            reasons.setdefault(reason, []).append(trial.number)
    if not reasons:
        return []
    rows = [[reason, len(numbers), ", ".join(map(str, numbers[:most])) + (", …" if len(numbers) > most else "")]
            for reason, numbers in sorted(reasons.items(), key=lambda item: -len(item[1]))]
    return ["Why trials failed:", "", table(["reason", "trials", "which"], rows), ""]


def _xla(trials: list) -> list[str]:
    """Which XLA setting the trials trained with (the study's jit_compile, or a model file's own compile)."""
    applied: dict[str, int] = {}
    for trial in trials:
        if schema.XLA in trial.user_attrs:
            applied[trial.user_attrs[schema.XLA]] = applied.get(trial.user_attrs[schema.XLA], 0) + 1
    if not applied:
        return []
    parts = ", ".join(f"{setting} ({count} trial{'s' * (count != 1)})" for setting, count in applied.items())
    note = " (\"model file\": the file compiles its model itself and keeps its own setting)" if any(
        setting.startswith("model file") for setting in applied) else ""
    return [f"XLA (jit_compile) that applied: {parts}{note}.", ""]


def _figures(figures: list | None, csv: str) -> list[str]:
    """The PNGs beside the summary, each linked by its relative path; a figure left out says why."""
    out = []
    if figures is not None:
        out += ["## Figures", ""]
        for figure in figures:
            if figure.path is None:
                out += [f"- {figure.title}: left out ({figure.reason}).", ""]
            else:
                out += [f"### {figure.title}", "", f"![{figure.title}](plots/{figure.file})", ""]
    if csv:
        out += [f"Every trial, one row each: [{csv}]({csv}).", ""]
    return out


def _epochs_note(config: dict[str, Any]) -> list[str]:
    """Lines saying that epochs was a ceiling, when early stopping made it one, and that the learning rate was
    halved on plateaus (read from the stored config: a report never imports a model file to check it)."""
    out = []
    try:
        study_config = stored_config(config)
        if study_config.trial_space != study_config.space:
            out.append(f"Early stopping was on (patience {study_config.patience}): `epochs` was a ceiling, not "
                       f"searched; each trial trained up to {epochs_ceiling(study_config.param('epochs'))} epochs.")
        if "lr_patience" in config and study_config.lr_plateau_patience:
            out.append(f"The learning rate was halved after {study_config.lr_plateau_patience} epochs without a "
                       f"better value (down to 1e-5).")
    except (TypeError, KeyError, ValueError):  # a config from another version
        return []
    return [" ".join(out), ""] if out else []


def _model_and_data(attrs: dict[str, Any]) -> list[str]:
    """The model (a model file by name and hash) and the data (shape, classes, counts)."""
    out = []
    model = attrs.get(schema.MODEL, {})
    if model.get("sha256"):
        out += ["## Model", "", f"Model file `{Path(model['path']).name}` (`{model['path']}`), sha256 "
                f"`{model['sha256']}`; its SPACE, with the config's overrides, is the search space above.", ""]
    data = attrs.get(schema.DATA, {})
    if data.get("num_classes"):
        rows = [["dataset", data.get("name")], ["kind", data.get("kind")], ["classes", data.get("num_classes")],
                ["train / validation / test", f"{data.get('n_train')} / {data.get('n_val')} / {data.get('n_test')}"],
                ["validation", data.get("validation")]] + ([["note", data["note"]]] if data.get("note") else [])
        out += ["## Data", "", table(["item", "value"], rows), ""]
    return out


def _workers(attrs: dict[str, Any], trials: list[FrozenTrial]) -> list[str]:
    """Each worker that joined the study: its device and versions, and the trials it ran."""
    workers = {key.removeprefix(schema.WORKER_ENV_PREFIX): env for key, env in attrs.items()
               if key.startswith(schema.WORKER_ENV_PREFIX)}
    if not workers:
        return []
    ran: dict[str, dict[str, int]] = {}
    for t in trials:
        worker = schema.worker_label(t.user_attrs.get(schema.WORKER))
        if worker:
            ran.setdefault(worker, {}).setdefault(schema.state_name(t), 0)
            ran[worker][schema.state_name(t)] += 1
    rows = [[worker, env.get("device", "-"), env.get("tensorflow", "-"),
             ", ".join(f"{n} {state.lower()}" for state, n in sorted(ran.get(worker, {}).items())) or "-"]
            for worker, env in sorted(workers.items())]
    return ["## Workers", "", table(["worker", "device", "tensorflow", "trials"], rows), ""]


def _top_table(complete: list[FrozenTrial], goal: Objective) -> list[str]:
    top = sorted(complete, key=lambda t: goal.sort_key(t.value))[:TOP_N]
    names = list(dict.fromkeys(name for t in top for name in t.params))
    rows = [[t.number, number_text(t.value), number_text(t.user_attrs.get("val_accuracy")),
             number_text(t.user_attrs.get("test_accuracy")),
             *[t.params.get(name, "-") for name in names], t.user_attrs.get("epochs_trained", "-"),
             seconds_text(t.duration.total_seconds()) if t.duration else "-",
             schema.worker_label(t.user_attrs.get(schema.WORKER)) or "-"] for t in top]
    header = ["trial", "value", "val acc", "test acc", *names, "epochs trained", "time", "worker"]
    return [f"## Top {len(top)} trials", "", table(header, rows), ""]


def _importances(study: optuna.Study, n_complete: int) -> list[str]:
    if n_complete < MIN_TRIALS_FOR_IMPORTANCE:
        return ["## Parameter importances", "", f"Not available: fewer than {MIN_TRIALS_FOR_IMPORTANCE} complete "
                "trials.", ""]
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        return ["## Parameter importances", "", f"Not available: {exc}", ""]
    if not importances:
        return []
    rows = [[name, f"{value:.3f}"] for name, value in importances.items()]
    return ["## Parameter importances", "", table(["parameter", "importance"], rows), ""]


def _timing(trials: list[FrozenTrial]) -> list[str]:
    durations = [t.duration.total_seconds() for t in trials if t.duration]
    if not durations:
        return []
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    rows = [["wall clock (first start to last end)", seconds_text((max(ends) - min(starts)).total_seconds())],
            ["sum of trial times", seconds_text(sum(durations))],
            ["median trial", seconds_text(statistics.median(durations))],
            ["mean trial", seconds_text(statistics.mean(durations))]]
    return ["## Time", "", table(["measure", "value"], rows), ""]
