"""The `tunedeck` command: exit codes, one-line errors, headless run, export, init-config."""

import subprocess
import sys

import pytest

from engine import load_config
from tui.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["run", "--trials", "many"], "argument --trials: invalid int value: 'many'"),
    (["run", "--model", "rnn"], "model: 'rnn' is not allowed; choose mlp, cnn or a model file"),
    (["run", "--dataset", "/no/such/file.npz"], "dataset: '/no/such/file.npz' is neither a built-in"),
    (["run", "--fix", "epochs"], "--fix: expected NAME=VALUE"),
    (["run", "--fix", "k=3"], "space.k: unknown parameter for mlp"),
    (["run", "--storage", "nowhere"], "storage: 'nowhere' is not a storage URL"),
    (["export", "--storage", "sqlite:///missing.db", "--study-name", "x"], "storage: no sqlite file 'missing.db'"),
    (["watch", "--storage", "journal:///missing.log", "--study-name", "x"], "storage: no journal file 'missing.log'"),
    (["stop", "--storage", "sqlite:///missing.db", "--study-name", "x"], "storage: no sqlite file 'missing.db'"),
    (["export", "--study-name", "x"], "storage: give --storage URL (or set TUNEDECK_STORAGE)"),
    (["run", "--storage", "mongodb://localhost"], "storage: 'mongodb' storages are not supported"),
    (["run", "--storage", "sqlite:///:memory:"], "storage: an in-memory SQLite database vanishes"),
    (["run", "--gpus", "0,x"], "gpus: expected GPU indexes like 0,1 or 0,0,1,1 (or GPU-/MIG- UUIDs), got '0,x'"),
    (["run", "--workers", "-1"], "workers: must be in 0..256"),
    (["run", "--heartbeat", "0"], "heartbeat: must be in 1..3600"),
])
def test_user_errors_exit_2_with_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing created: no empty storage file, no run folder


def test_init_config_then_run_and_export(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init-config", "study.toml", "--model", "mlp"]) == 0
    assert load_config(tmp_path / "study.toml").model == "mlp"
    assert main(["init-config", "study.toml"]) == 2  # refuses to overwrite
    args = ["run", "study.toml", "--dataset", "mnist-5k", "--subset", "300", "--trials", "2", "--fix", "epochs=1",
            "--fix", "first_layer_unit=8", "--study-name", "cli", "--export", "out/summary.md"]
    assert main(args) == 0
    assert (tmp_path / "runs" / "cli" / "summary.md").is_file()
    assert "## Best trial" in (tmp_path / "out" / "summary.md").read_text()
    capsys.readouterr()
    assert main(["export", "--storage", "sqlite:///runs/cli/study.db", "--study-name", "cli"]) == 0
    assert "# tunedeck study `cli`" in capsys.readouterr().out


def test_failed_study_exits_1(tmp_path, monkeypatch, capsys):
    """Every trial fails in Keras (here: a broken fit): three in a row end the study with status 1."""
    from engine.keras import training

    def broken_fit(*args, **kwargs):
        raise ValueError("Input 0 of layer is incompatible")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training, "fit_and_evaluate", broken_fit)
    assert main(["run", "--dataset", "mnist-5k", "--subset", "300", "--fix", "epochs=1", "--trials", "5"]) == 1
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "3 trials failed in a row; last error: ValueError: Input 0 of layer is incompatible" in out


def test_import_engine_loads_no_ui():
    code = "import sys, engine, engine.report; print('textual' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["False", "False"]
