"""The Markdown summary of a real study."""

import re

from engine.keras.device import device_name
from engine.report import render_report, table
from engine.store import reading_study


def tables(markdown: str) -> list[list[str]]:
    blocks, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def test_report_sections_and_valid_tables(finished_study):
    config, recorder, _ = finished_study
    with reading_study(config.storage_url, config.name) as study:
        text = render_report(study)
    for heading in ("# tunedeck study `tiny`", "## Configuration", "## Search space", "## Environment", "## Workers",
                    "## Trials",
                    "## Best trial", "## Top 4 trials", "## Parameter importances", "## Optimization history",
                    "## Time"):
        assert heading in text
    for block in tables(text):
        widths = {line.count("|") - line.count("\\|") for line in block}
        assert len(widths) == 1, block  # every row has the header's number of cells
        assert re.fullmatch(r"\|(---\|)+", block[1])
    assert "| COMPLETE | 4 |" in text and f"| device | {device_name()} |" in text
    top = next(block for block in tables(text) if block[0].startswith("| trial | value |"))
    column = [cell.strip() for cell in top[0].split("|")].index("epochs trained")
    assert {row.split("|")[column].strip() for row in top[2:]} == {"1"}  # epochs is fixed at 1
    assert "was a ceiling" not in text  # a fixed epochs is not a ceiling
    assert "\x1b[" not in text  # the text chart carries no terminal colours
    chart = text.split("```text\n")[1].split("```")[0]
    assert "best so far" in chart and len(chart.splitlines()) >= 10


def test_table_escapes_pipes():
    assert table(["a"], [["x|y"]]).splitlines()[2] == "| x\\|y |"


def test_the_curves_figure_names_each_curve_by_its_own_trial_and_the_axes_by_what_they_are(finished_study):
    """curves.png: a curve labelled "trial 2" is trial 2's, drawn over epochs 1..n of the metric a trial reports
    (before: Optuna's plot of a renumbered copy said "Trial0" for the best trial, "Step", "Intermediate Value")."""
    import matplotlib

    matplotlib.use("Agg")
    from engine.report.figures import plot_curves

    config, _, _ = finished_study
    with reading_study(config.storage_url, config.name) as study:
        axes = plot_curves(study)
        trials = {t.number: t for t in study.trials if t.state.name == "COMPLETE"}
    best_first = sorted(trials.values(), key=lambda t: -t.value)
    labels = axes.get_legend_handles_labels()[1]
    assert labels == [f"trial {t.number} (val accuracy {t.value:.4f})" for t in best_first]
    for line, trial in zip(axes.lines, best_first, strict=True):
        steps = sorted(trial.intermediate_values)
        assert list(line.get_xdata()) == [step + 1 for step in steps]
        assert list(line.get_ydata()) == [trial.intermediate_values[step] for step in steps]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("epoch", "val accuracy")
    matplotlib.pyplot.close(axes.figure)
