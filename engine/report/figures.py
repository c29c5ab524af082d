"""The pictures and the table beside a summary: Optuna's matplotlib figures as PNGs, and trials.csv.

Figures are drawn with the Agg backend (no display on a GPU box) and written atomically. One that cannot be
drawn (a study of one trial, no importances yet) is left out with the reason, never an error.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from engine.files import write_bytes_atomically, write_text_atomically
from engine.store import schema, study_objective
from engine.store.follower import MIN_TRIALS_FOR_IMPORTANCE

log = logging.getLogger("tunedeck")
TOP_CURVES = 10  # learning curves drawn: the best trials'


@dataclass(frozen=True)
class Figure:
    file: str  # the PNG's name in plots/
    title: str
    path: Path | None  # where it was written, None when it was left out
    reason: str = ""  # why it was left out


def _complete(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _top_trials(study: optuna.Study) -> list:
    """The study's best complete trials that reported curves, best first: their curves alone stay readable."""
    goal = study_objective(study)
    curved = [t for t in _complete(study) if t.intermediate_values]
    return sorted(curved, key=lambda t: goal.sort_key(t.value))[:TOP_CURVES]


def plot_curves(study: optuna.Study):
    """The per-epoch curves of the best trials, each labelled with its own trial number and value, on axes named
    as tunedeck names them (epoch, and the metric a trial reports: val accuracy or val loss)."""
    import matplotlib.pyplot as plt

    goal = study_objective(study)
    tunedeck_study = schema.CONFIG in study.user_attrs
    metric = goal.monitored.label if tunedeck_study else "intermediate value"
    figure, axes = plt.subplots()
    for trial in _top_trials(study):
        steps = sorted(trial.intermediate_values)
        epochs = [step + 1 for step in steps] if tunedeck_study else steps  # tunedeck reports epoch 0 as step 0
        axes.plot(epochs, [trial.intermediate_values[step] for step in steps], marker=".",
                  label=f"trial {trial.number} ({goal.label} {trial.value:.4f})")
    axes.set_xlabel("epoch" if tunedeck_study else "step")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric.capitalize()} per {'epoch' if tunedeck_study else 'step'}: the best "
                   f"{len(axes.lines)} trials by {goal.label}")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(fontsize="small", loc="best")
    axes.grid(alpha=0.3)
    return axes


def _important(study: optuna.Study) -> list[str]:
    importances = optuna.importance.get_param_importances(study)
    return list(importances)[:2]


def figures(study: optuna.Study) -> list[tuple[str, str, Callable[[], object], str]]:
    """(file, title, draw, why it cannot be drawn or "") of each figure, in the order the summary shows them."""
    from optuna.visualization import matplotlib as vis

    n_complete = len(_complete(study))
    has_curves = any(t.intermediate_values for t in _complete(study))
    few = f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} complete trials, the study has {n_complete}"
    return [
        ("history.png", "Optimization history", lambda: vis.plot_optimization_history(study),
         "" if n_complete else "no complete trial yet"),
        ("importances.png", "Parameter importances", lambda: vis.plot_param_importances(study),
         "" if n_complete >= MIN_TRIALS_FOR_IMPORTANCE else few),
        ("curves.png", f"Learning curves of the best {TOP_CURVES} trials",
         lambda: plot_curves(study),
         "" if has_curves else "no trial reported a per-epoch value"),
        ("parallel.png", "Parallel coordinates", lambda: vis.plot_parallel_coordinate(study),
         "" if n_complete >= 2 else "needs at least 2 complete trials"),
        ("slice.png", "Slice of the two most important parameters",
         lambda: vis.plot_slice(study, params=_important(study)),
         "" if n_complete >= MIN_TRIALS_FOR_IMPORTANCE else few),
    ]


def write_figures(study: optuna.Study, folder: Path) -> list[Figure]:
    """Draw each figure into folder/NAME.png (atomically); a figure that fails says why and is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for file, title, draw, reason in figures(study):
        if reason:
            written.append(Figure(file, title, None, reason))
            continue
        try:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore")
                axes = draw()
            figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
            figure.set_size_inches(9, 5.5)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(Figure(file, title, write_bytes_atomically(folder / file, buffer.getvalue())))
        except OSError:
            plt.close("all")
            raise  # a full disk or a size limit: the export fails as a whole, with the old files kept
        except Exception as exc:  # an Optuna plot that cannot handle this study: say so, keep the rest
            log.info("figure %s not drawn: %s", file, exc)
            plt.close("all")
            written.append(Figure(file, title, None, f"not drawn: {exc}"))
    return written


def trials_table(study: optuna.Study):
    """One row per trial (Optuna's trials dataframe): number, state (as tunedeck shows it: an out-of-memory trial
    is FAIL), value, val and test accuracy, epochs trained, peak GPU memory, XLA, error, duration, worker, every
    parameter."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    frame["state"] = [schema.state_name(trial) for trial in study.get_trials(deepcopy=False)]  # as tunedeck shows it
    renamed = {f"user_attrs_{key}": key for key in (schema.VAL_ACCURACY, schema.TEST_ACCURACY, schema.VAL_LOSS,
                                                     schema.EPOCHS_TRAINED, schema.GPU_PEAK_MB, schema.XLA,
                                                     schema.ERROR)}
    frame = frame.rename(columns=renamed)
    if f"user_attrs_{schema.WORKER}" in frame:
        frame["worker"] = frame[f"user_attrs_{schema.WORKER}"].map(lambda w: schema.worker_label(w) if
                                                                    isinstance(w, dict) else "")
    if "duration" in frame:
        frame["duration"] = frame["duration"].map(lambda d: round(d.total_seconds(), 2) if hasattr(d, "total_seconds")
                                                  else None)
    keep = ["number", "state", "value", *renamed.values(), "duration", "worker"]
    params = [column for column in frame.columns if column.startswith("params_")]
    return frame[[column for column in keep if column in frame] + params]


def write_trials_csv(study: optuna.Study, path: Path) -> Path:
    return write_text_atomically(path, trials_table(study).to_csv(index=False))
