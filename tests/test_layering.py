"""The layering as it runs (import-linter checks it statically in CI): what each entry point loads."""

import subprocess
import sys

import pytest

LOADED = "import sys; print(*(name in sys.modules for name in ('tensorflow', 'keras', 'textual', 'rich')))"


@pytest.mark.parametrize("entry, loaded", [
    ("import engine, engine.report, engine.keras, engine.store", "False False False False"),
    ("import tui.app", "False False True True"),
    ("from tui.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass", "False False False False"),
    ("from tui.cli import main\ntry:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass", "False False False False"),
])
def test_entry_points_load_no_tensorflow(entry, loaded):
    out = subprocess.run([sys.executable, "-c", f"{entry}\n{LOADED}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == loaded


def test_a_stored_config_of_a_model_file_runs_none_of_its_code(tmp_path):
    """A config names a model file without importing it (reports and `watch` read stored configs)."""
    model = tmp_path / "model.py"
    model.write_text("raise SystemExit('imported')\n")
    code = (f"from engine import StudyConfig\nfrom engine.study import stored_config\n"
            f"c = StudyConfig(model={str(model)!r})\ns = stored_config({{'model': {str(model)!r}}})\n"
            f"print(c.space, s.space, c.model_label)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["[]", "[]", "model"], out.stderr
