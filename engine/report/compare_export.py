"""The comparison of studies (compare.py's columns) as Markdown, and their best-so-far curves overlaid, against
time and against trial number: the PNGs beside the Markdown (matplotlib, Agg), and the points the app's plotext
chart draws."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from engine.contract import Objective
from engine.files import write_bytes_atomically, write_text_atomically
from engine.report.compare import StudyColumn, compare_rows, titles
from engine.report.formatting import number_text, table

FIGURES = {"time": "compare-by-time.png", "trial": "compare-by-trial.png"}  # beside the Markdown file


def _axis(by: str, columns: list[StudyColumn]) -> tuple[float, str]:
    """The time axis' unit (seconds per unit, name) for the longest study; trial numbers are as they are."""
    if by == "trial":
        return 1.0, "trial number"
    longest = max((c.total_seconds or 0 for c in columns), default=0)
    scale, unit = (3600.0, "hours") if longest > 3 * 3600 else (60.0, "minutes") if longest > 180 else (1.0, "seconds")
    return scale, f"{unit} since the study's first trial started"


@dataclass(frozen=True)
class Curve:
    """One study's best-so-far staircase as drawn, x in the axis' unit; `best`: where its final best was reached."""

    title: str
    index: int  # its study's place among the columns compared (its colour, in every panel)
    xs: list[float]
    ys: list[float]
    best: tuple[float, float]


def objective_label(goal: Objective) -> str:
    return f"best {goal.label} so far ({'higher' if goal.maximize else 'lower'} is better)"


def best_so_far_curves(columns: list[StudyColumn], by: str) -> tuple[str, list[tuple[str, list[Curve]]]]:
    """The x axis' label, and one panel (its y axis' label, its curves) per objective: studies of one objective
    share a panel, and one of another objective (a loss against an accuracy) is drawn on a panel of its own. `by`:
    "time" or "trial"; studies without a complete trial are left out."""
    scale, xlabel = _axis(by, columns)
    panels: dict[tuple[str, bool], list[Curve]] = {}
    for index, (column, title) in enumerate(zip(columns, titles(columns), strict=True)):
        xs, ys = column.steps(by)
        if not xs or column.best_value is None:
            continue
        final_x = column.to_best_seconds if by == "time" else column.best_trial
        curve = Curve(title, index, [x / scale for x in xs], ys, ((final_x or 0) / scale, column.best_value))
        panels.setdefault((column.goal.label, column.goal.maximize), []).append(curve)
    return xlabel, [(objective_label(Objective(label, maximize)), curves)
                    for (label, maximize), curves in panels.items()]


def plot_png(columns: list[StudyColumn], by: str) -> bytes | None:
    """The overlaid best-so-far staircases against time or trial number as a PNG, one panel per objective; None
    when no study has a complete trial."""
    xlabel, panels = best_so_far_curves(columns, by)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, grid = plt.subplots(len(panels), 1, figsize=(9, 3 + 2.5 * len(panels)), sharex=True, squeeze=False)
    try:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # one per study, in every panel
        for axes, (ylabel, curves) in zip(grid[:, 0], panels, strict=True):
            for curve in curves:
                colour = colours[curve.index % len(colours)]
                axes.plot(curve.xs, curve.ys, color=colour, label=f"{curve.title} (best {number_text(curve.best[1])})")
                axes.plot(*curve.best, marker="o", color=colour)
            axes.set_ylabel(ylabel)
            axes.legend(fontsize="small", loc="best")
            axes.grid(alpha=0.3)
        grid[0, 0].set_title(f"Best so far against {'time' if by == 'time' else 'trial number'} (a dot: where each "
                             f"study reached its final best)")
        grid[-1, 0].set_xlabel(xlabel)
        if by == "trial":
            grid[-1, 0].xaxis.get_major_locator().set_params(integer=True)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def render_compare(columns: list[StudyColumn], figures: dict[str, str] | None = None) -> str:
    """The comparison as Markdown; `figures` maps "time" and "trial" to the PNGs' relative paths (a missing one
    is said to be left out)."""
    names = ", ".join(f"`{name}`" for name in titles(columns))
    storages = {c.storage for c in columns}
    out = [f"# tunedeck: comparing {names}", ""]
    if len(storages) == 1 and (storage := storages.pop()):
        out += [f"All in storage `{storage}`.", ""]
    out += [table(["measure", *titles(columns)], [[label, *texts] for label, texts in compare_rows(columns)]), ""]
    note = "Times count from each study's first trial start (a study run in parts, its pauses included)"
    if any(c.warm_start != "-" for c in columns):
        note += "; trials copied in as prior knowledge by a warm start are not counted"
    out += [note + ".", ""]
    if figures is not None:
        for by, what in (("time", "time"), ("trial", "trial number")):
            heading = f"Best so far against {what}"
            out += [f"## {heading}", "", f"![{heading}]({figures[by]})" if figures.get(by) else
                    "Left out: no study has a complete trial.", ""]
    return "\n".join(out)


def write_compare(columns: list[StudyColumn], path: str | Path, plots: bool = True) -> list[Path]:
    """Write the Markdown comparison to `path` and (unless plots=False) compare-by-time.png and
    compare-by-trial.png beside it, linked by relative path; every file atomic. The paths written, Markdown first."""
    path = Path(path)
    written, figures = [], None
    if plots:
        figures = {}
        for by, file in FIGURES.items():
            data = plot_png(columns, by)
            if data is not None:
                written.append(write_bytes_atomically(path.parent / file, data))
                figures[by] = file
    return [write_text_atomically(path, render_compare(columns, figures)), *written]
