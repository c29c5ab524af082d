"""`tunedeck compare` and the app's compare screen: studies side by side, their best-so-far curves as PNGs."""

from __future__ import annotations

import datetime

import optuna
import pytest
from fakes import FakeTrainer, fake_config
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from test_tui import wait_for

from engine import StudyRunner
from engine.report import compare_text, read_columns, render_compare, write_compare
from engine.store import schema
from tui.app import TunedeckApp
from tui.cli import main
from tui.screens.compare import BestSoFarPlot, CompareScreen, CompareTable
from tui.screens.picker import StudyPickerScreen

PNG = b"\x89PNG\r\n\x1a\n"
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)
# the plain study: (state, value, seconds its trial started, seconds it ended), from T0
PLAIN = [(TrialState.COMPLETE, 5.0, 0, 10), (TrialState.COMPLETE, 3.0, 10, 30), (TrialState.PRUNED, None, 30, 40),
         (TrialState.FAIL, None, 40, 45), (TrialState.COMPLETE, 3.0, 45, 60), (TrialState.COMPLETE, 4.0, 60, 80)]


def plain_trial(state, value, start, end, **attrs):
    trial = create_trial(state=state, value=value, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                         user_attrs=attrs)
    trial.datetime_start = T0 + datetime.timedelta(seconds=start)
    trial.datetime_complete = T0 + datetime.timedelta(seconds=end)
    return trial


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """One SQLite storage: `tuned` (tunedeck's StudyRunner with the fake trainer, 2 trials: too few for importances,
    so no scikit-learn to import; then an out-of-memory trial and a prior trial copied in) and `plain` (plain Optuna,
    minimized, trials at known times)."""
    tmp_path = tmp_path_factory.mktemp("compare")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    config = fake_config(tmp_path, url, n_trials=2, sampler="random", seed=3)
    config.study_name = "tuned"
    StudyRunner(config, trainer=FakeTrainer()).run()
    tuned = optuna.load_study(study_name="tuned", storage=url)
    tuned.add_trial(plain_trial(TrialState.PRUNED, None, 0, 1, **{schema.OUT_OF_MEMORY: True}))
    tuned.add_trial(plain_trial(TrialState.COMPLETE, 0.99999, 0, 1, **{schema.PRIOR: {"study": "x", "trial": 0}}))
    tuned.set_user_attr(schema.WARM_START, {"from": "plain", "storage": url, "top": 2, "prior": True})
    plain = optuna.create_study(study_name="plain", storage=url, direction="minimize")
    for row in PLAIN:
        plain.add_trial(plain_trial(*row))
    return tmp_path, url


def test_each_study_s_column(storage):
    _, url = storage
    tuned, plain = read_columns([(url, "tuned"), (url, "plain")])
    study = optuna.load_study(study_name="tuned", storage=url)
    run = [t for t in study.trials if schema.PRIOR not in t.user_attrs and t.state == TrialState.COMPLETE]
    best = max(run, key=lambda t: t.value)
    assert (tuned.best_value, tuned.best_trial) == (best.value, best.number)
    assert tuned.test_accuracy == best.user_attrs[schema.TEST_ACCURACY]
    assert (tuned.complete, tuned.pruned, tuned.failed) == (2, 0, 1)  # out of memory: FAIL; the prior: not counted
    assert tuned.best_params == best.params and tuned.by_trial[-1] == (best.number, best.value)
    assert (tuned.model, tuned.data, tuned.sampler, tuned.pruner) == ("mlp", "fake 100 train 20 test",
                                                                      "random seed 3", "none")
    assert tuned.warm_start == "from plain top 2 prior"
    assert tuned.goal.maximize and tuned.goal.label == "val accuracy"

    assert plain.best_value == optuna.load_study(study_name="plain", storage=url).best_value == 3.0
    assert plain.best_trial == 1 and not plain.goal.maximize  # a later equal value does not take over
    assert (plain.complete, plain.pruned, plain.failed, plain.running) == (4, 1, 1, 0)
    assert plain.total_seconds == 80 and plain.to_best_seconds == 30
    assert plain.by_time == ((10, 5.0), (30, 3.0)) and plain.by_trial == ((0, 5.0), (1, 3.0))
    assert plain.steps("trial") == ([0, 1, 1, 5], [5.0, 5.0, 3.0, 3.0])  # the staircase runs on to the last trial
    assert (plain.model, plain.data, plain.sampler, plain.warm_start) == ("-", "-", "-", "-")


def test_markdown_and_both_pngs(storage, tmp_path):
    _, url = storage
    columns = read_columns([(url, "tuned"), (url, "plain")])
    written = write_compare(columns, tmp_path / "out" / "compare.md")
    assert [p.name for p in written] == ["compare.md", "compare-by-time.png", "compare-by-trial.png"]
    for png in written[1:]:
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5000
    text = written[0].read_text()
    assert "| measure | tuned | plain |" in text
    assert "| best value | " + f"{columns[0].best_value:.4f} | 3.0000 |" in text
    assert "| time to best | " in text and "| 30.0s |" in text and "| total time | " in text and "| 1m 20.0s |" in text
    assert "| trials failed | 1 | 1 |" in text and "| warm start | from plain top 2 prior | - |" in text
    assert "![Best so far against time](compare-by-time.png)" in text
    assert "![Best so far against trial number](compare-by-trial.png)" in text
    assert not list(tmp_path.glob("*.tmp")) and "png" not in render_compare(columns)
    alone = write_compare(columns, tmp_path / "flat" / "c.md", plots=False)
    assert [p.name for p in alone] == ["c.md"] and "![" not in alone[0].read_text()


def test_the_text_table_fits_the_width(storage):
    _, url = storage
    columns = read_columns([(url, "tuned"), (url, "plain"), (url, "tuned")])
    for width in (60, 80, 120):
        lines = compare_text(columns, width).splitlines()
        assert max(map(len, lines)) <= width
        assert lines[0].split() == ["tuned", "(1)", "plain", "tuned", "(2)"]  # the same name twice: numbered
    text = compare_text(columns, 80)
    assert "learning_rate=" in text or "learning_ra…=" in text  # a parameter too long is cut after its name


def test_the_command_prints_at_80_columns_and_exports(storage, monkeypatch, capsys):
    tmp_path, url = storage
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["compare", "tuned", "plain", "--storage", url]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["tuned", "plain"] and max(map(len, lines)) <= 80
    assert "best value" in out and "time to best" in out
    monkeypatch.delenv("TUNEDECK_STORAGE", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    target = tmp_path / "export" / "vs.md"
    assert main(["compare", f"tuned@{url}", f"plain@{url}", "--export", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"comparison written to {target}" in out
    assert target.is_file() and (target.parent / "compare-by-time.png").read_bytes().startswith(PNG)
    assert (target.parent / "compare-by-trial.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("args, said", [
    (["tuned"], "at least two studies"),
    ([], "at least two studies"),
    (["tuned", "nope"], "no study 'nope'"),
    (["tuned", "other@sqlite:///{tmp}/none.db"], "none.db"),
    (["tuned", "tuned"], "a study is named twice"),
    (["tuned", "plain", "--export", "{tmp}"], "is a folder; name a new FILE.md, or pass --force"),
])
def test_mistakes_are_one_line_and_exit_2(storage, capsys, args, said):
    tmp_path, url = storage
    assert main(["compare", *[a.format(tmp=tmp_path) for a in args], "--storage", url]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and err.startswith("tunedeck: error: ")


def test_no_storage_is_one_line(monkeypatch, capsys):
    monkeypatch.delenv("TUNEDECK_STORAGE", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    assert main(["compare", "a", "b"]) == 2
    assert "give --storage URL" in capsys.readouterr().err


async def test_the_picker_marks_two_studies_and_c_compares_them(storage):
    _, url = storage
    app = TunedeckApp(watch=(url, None))
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.screen
        assert isinstance(picker, StudyPickerScreen)
        table = picker.query_one("#studies")
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("c")  # nothing marked: it says so and stays
        assert app.screen is picker
        await pilot.press("space", "space")  # marks a study and goes to the next
        assert {table.get_cell(str(key.value), "mark") for key in table.rows} == {"●"}
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.columns)
        screen = app.screen
        assert {column.name for column in screen.columns} == {"tuned", "plain"}
        shown = screen.query_one(CompareTable).text(96).splitlines()
        assert set(shown[0].split()) == {"tuned", "plain"} and any(line.startswith("best value") for line in shown)
        plots = list(screen.query(BestSoFarPlot))
        assert len(plots) == 2  # val accuracy (max) and a minimized value: a chart each
        await wait_for(pilot, lambda: all(plot.idle for plot in plots))
        await pilot.press("t")
        assert all(plot.by == "trial" for plot in plots)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is picker)
