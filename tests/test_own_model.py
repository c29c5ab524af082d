"""Your own model and your own data: model files, any labelled arrays, val_loss; real (small) Keras training."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import Recorder
from sklearn.datasets import load_digits, load_wine

from engine import StudyConfig, StudyRunner, TrialFinished
from engine.keras import load_dataset
from engine.keras.training import PreparedData
from engine.store import schema
from engine.study import config_from_dict
from tui.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

DENSE_MODEL = '''
import keras

SPACE = {
    "units": {"kind": "int", "low": 32, "high": 128, "log": True},
    "activation": {"kind": "categorical", "choices": ["relu", "tanh"]},
    "epochs": 5,
    "batch_size": {"kind": "categorical", "choices": [16, 32]},
}


def build_model(params, input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(params["units"], activation=params["activation"])(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
'''


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def save_npz(path: Path, x, y, test_share: float = 0.25, **extra) -> str:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    cut = int(len(y) * (1 - test_share))
    np.savez(path, x_train=x[order[:cut]], y_train=y[order[:cut]], x_test=x[order[cut:]], y_test=y[order[cut:]],
             **extra)
    return str(path)


def study(tmp_path, model: str, dataset: str, n_trials: int = 2, **changes) -> tuple[StudyConfig, Recorder, object]:
    config = config_from_dict({"model": model, "dataset": dataset, "n_trials": n_trials,
                               "out_dir": str(tmp_path / "runs"), "study_name": "own", **changes})
    recorder = Recorder()
    return config, recorder, StudyRunner(config, emit=recorder).run()


def test_a_model_file_on_8x8_digits(tmp_path):
    digits = load_digits()  # 1,797 real 8x8 digits with 16 grey levels, shipped in scikit-learn
    dataset = save_npz(tmp_path / "digits.npz", (digits.images * 15).astype(np.uint8), digits.target)
    config, recorder, result = study(tmp_path, write(tmp_path, "dense.py", DENSE_MODEL), dataset)
    assert (result.ok, result.n_complete) == (True, 2)
    started = recorder.events[0]
    assert (started.num_classes, started.input_shape) == (10, (8, 8, 1))
    assert set(recorder.of(TrialFinished)[0].params) == {"units", "activation", "batch_size"}
    assert all(t.test_accuracy > 0.5 for t in recorder.of(TrialFinished))  # far above chance (0.1)
    attrs = optuna.load_study(study_name="own", storage=config.storage_url).user_attrs
    assert attrs[schema.MODEL]["name"] == "dense" and len(attrs[schema.MODEL]["sha256"]) == 64
    assert config.name == "own" and StudyConfig(model=config.model, dataset=dataset).name == "dense-digits.npz"


def test_a_model_file_on_a_three_class_table_with_a_validation_set(tmp_path):
    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    rng = np.random.default_rng(1)
    val = rng.choice(len(y), 30, replace=False)
    rest = np.setdiff1d(np.arange(len(y)), val)
    dataset = save_npz(tmp_path / "wine.npz", x[rest], y[rest], x_val=x[val], y_val=y[val])
    data = load_dataset(dataset)
    assert (data.num_classes, data.input_shape, len(data.y_val)) == (3, (13,), 30)
    prepared = PreparedData.from_dataset(data)
    assert len(prepared.y_val) == 30 and len(prepared.y_fit) == len(data.y_train)  # x_val, not a tenth of train
    config, recorder, result = study(tmp_path, write(tmp_path, "dense.py", DENSE_MODEL), dataset)
    assert result.ok and recorder.events[0].num_classes == 3
    attrs = optuna.load_study(study_name="own", storage=config.storage_url).user_attrs
    assert attrs[schema.DATA]["validation"] == "x_val" and attrs[schema.DATA]["n_val"] == 30


def test_the_built_in_cnn_on_colour_images_with_four_classes(tmp_path):
    rng = np.random.default_rng(2)
    y = np.arange(160) % 4
    x = rng.integers(0, 60, (160, 16, 16, 3)).astype(np.uint8)
    x[np.arange(160), :, :, y % 3] += 150  # the class shows in the colour
    dataset = save_npz(tmp_path / "colour.npz", x, y)
    config, recorder, result = study(tmp_path, "cnn", dataset, space={"epochs": 2, "first_layer_unit": 4})
    assert result.ok and recorder.events[0].input_shape == (16, 16, 3) and recorder.events[0].num_classes == 4


def test_val_loss_is_minimized_end_to_end(tmp_path):
    config, recorder, result = study(tmp_path, "mlp", "mnist-5k", n_trials=3, subset=300, objective="val_loss",
                                     pruner="none", space={"epochs": 2, "first_layer_unit": {"choices": [8, 16, 32]}})
    finished = recorder.of(TrialFinished)
    assert result.ok and recorder.events[0].maximize is False
    stored = optuna.load_study(study_name="own", storage=config.storage_url)
    assert stored.direction == optuna.study.StudyDirection.MINIMIZE
    assert stored.best_value == min(t.value for t in finished)
    assert all(t.value == stored.trials[t.number].user_attrs[schema.VAL_LOSS] for t in finished)
    best_events = [e.value for e in recorder.events if type(e).__name__ == "BestChanged"]
    assert best_events == sorted(best_events, reverse=True)  # each new best is lower
    from engine.report import render_report

    text = render_report(stored)
    assert f"Trial {stored.best_trial.number}: val loss" in text


def test_a_changed_model_file_cannot_join_the_study(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = write(tmp_path, "dense.py", DENSE_MODEL)
    args = ["run", "--model", "dense.py", "--dataset", "mnist-5k", "--subset", "300", "--trials", "1",
            "--study-name", "own"]
    assert main(args) == 0
    Path(model).write_text(DENSE_MODEL + "# edited\n")
    args[args.index("--trials") + 1] = "2"
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert "this run would change the model file dense (sha256" in error and len(error.splitlines()) == 1


BAD_FILES = [
    ("missing.py", None, "model: file "),
    ("syntax.py", "SPACE = {\n  'a': 1,\n", "model: syntax.py line 1: syntax error"),
    ("raises.py", "import keras\nraise RuntimeError('no GPU here')\n", "model: raises.py line 2 raised RuntimeError: no GPU here"),
    ("no_build.py", "SPACE = {'epochs': 1, 'batch_size': 8}\n", "model: no_build.py defines no build_model"),
    ("no_space.py", "def build_model(p, s, k):\n    pass\n", "model: no_space.py defines no SPACE"),
    ("bad_space.py", "SPACE = {'epochs': 1, 'batch_size': 8, 'units': {'kind': 'int', 'low': 9, 'high': 2}}\n"
     "def build_model(p, s, k):\n    pass\n", "model: bad_space.py SPACE: space.units: low must be <= high (got 9 > 2)"),
    ("no_epochs.py", "SPACE = {'batch_size': 8}\ndef build_model(p, s, k):\n    pass\n",
     "model: no_epochs.py SPACE must give epochs (fixed or searched)"),
    ("not_a_model.py", "SPACE = {'epochs': 1, 'batch_size': 8}\ndef build_model(p, s, k):\n    return 'a model'\n",
     "model: not_a_model.py build_model returned str, not a keras.Model"),
    ("build_raises.py", "SPACE = {'epochs': 1, 'batch_size': 8}\ndef build_model(p, s, k):\n    return 1 / 0\n",
     "build_model({'epochs': 1, 'batch_size': 8}) raised ZeroDivisionError: division by zero"),
    ("wrong_units.py", "import keras\nSPACE = {'epochs': 1, 'batch_size': 8}\ndef build_model(p, s, k):\n"
     "    return keras.Sequential([keras.Input(s), keras.layers.Flatten(), keras.layers.Dense(7)])\n",
     "model: wrong_units.py build_model's output has 7 units; the data has 10 classes"),
    ("no_accuracy.py", "import keras\nSPACE = {'epochs': 1, 'batch_size': 8}\ndef build_model(p, s, k):\n"
     "    m = keras.Sequential([keras.Input(s), keras.layers.Flatten(), keras.layers.Dense(k)])\n"
     "    m.compile(loss='sparse_categorical_crossentropy')\n    return m\n",
     "compiled without an \"accuracy\" metric"),
]


@pytest.mark.parametrize("name, text, message", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_model_file_is_one_line_before_any_training(name, text, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if text is not None:
        write(tmp_path, name, text)
    status = main(["run", "--model", name, "--dataset", "mnist-5k", "--subset", "300", "--trials", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()  # refused before anything was created or trained


def test_the_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, str(EXAMPLES / "make_wine_npz.py"), "wine.npz"], check=True, capture_output=True)
    assert main(["run", "--model", str(EXAMPLES / "tabular_mlp.py"), "--dataset", "wine.npz", "--trials", "2",
                 "--fix", "epochs=3", "--study-name", "wine"]) == 0
    rng = np.random.default_rng(3)
    save_npz(tmp_path / "tiny32.npz", rng.integers(0, 256, (48, 32, 32, 3)).astype(np.uint8), np.arange(48) % 3)
    # In a fresh process, as users run it: the file imports keras at its top, and TensorFlow's C++ banner goes to
    # the run's tensorflow.log, not the terminal (it printed twice there, before the run's own redirect).
    run = subprocess.run([sys.executable, "-m", "tui.cli", "run", "--model", str(EXAMPLES / "residual_cnn.py"),
                          "--dataset", "tiny32.npz", "--trials", "1", "--fix", "epochs=1", "--fix", "filters=16",
                          "--fix", "stages=1", "--study-name", "resnet"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "finished 1 trials" in run.stdout and (tmp_path / "runs" / "resnet" / "tensorflow.log").exists()


def test_reading_a_study_never_imports_the_model_file_or_tensorflow(tmp_path):
    dataset = save_npz(tmp_path / "digits.npz", (load_digits().images * 15).astype(np.uint8), load_digits().target)
    config, _, _ = study(tmp_path, write(tmp_path, "dense.py", DENSE_MODEL), dataset, n_trials=1)
    code = ("import sys\nfrom engine.store import reading_study\nfrom engine.report import render_report\n"
            f"with reading_study({config.storage_url!r}, 'own') as s: text = render_report(s)\n"
            "print('tensorflow' in sys.modules, any(m.startswith('tunedeck_model') for m in sys.modules), "
            "'Model file `dense.py`' in text)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False", "True"], out.stderr


async def test_the_app_takes_a_model_file_and_string_choices(tmp_path):
    from test_tui import SIZE, rows, wait_for
    from textual.widgets import Input, Select
    from tui_fakes import factory

    from tui.app import TunedeckApp
    from tui.screens.run import RunScreen

    model = write(tmp_path, "dense.py", DENSE_MODEL)
    make = factory()
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path), dataset="mnist-5k"), runner_factory=make)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#model", Select).value = "file"
        await pilot.pause()
        assert app.screen.query_one("#field-model_path").display
        app.screen.query_one("#model_path", Input).value = model
        await wait_for(pilot, lambda: list(rows(app)) == ["units", "activation", "epochs", "batch_size"], 90)
        assert rows(app)["activation"]["choices"] == "relu, tanh"
        app.screen.query_one("#activation-choices", Input).value = "relu, tanh, gelu"
        await wait_for(pilot, lambda: not app.screen.errors, 60)
        await wait_for(pilot, lambda: "10 classes" in str(app.screen.query_one("#data-info").render()), 60)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
    assert make.last.config.model == model
    assert make.last.config.param("activation").choices == ["relu", "tanh", "gelu"]
