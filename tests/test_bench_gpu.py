"""bench/gpu.py --quick, the device check's CPU smoke test: it runs through the engine and prints one JSON line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_epoch_times(figures: dict, epochs: int, gpu: bool) -> None:
    """One model's float32, mixed and XLA studies: epoch times, the XLA setting that applied, memory, accuracy."""
    for precision, xla in (("float32", "off"), ("mixed", "off"), ("xla", "on")):
        run = figures[precision]
        assert len(run["epoch_s"]) == epochs and all(positive(s) for s in run["epoch_s"]), run
        assert run["first_epoch_s"] == run["epoch_s"][0] and positive(run["steady_epoch_s"]), run
        assert positive(run["images_per_s"]) and run["xla"] == xla, run
        assert positive(run["peak_gpu_mb"]) if gpu else run["peak_gpu_mb"] is None, run
        assert 0 <= run["test_accuracy"] <= 1, run
    assert positive(figures["mixed_speedup"]) and positive(figures["xla_speedup"])


def test_quick_bench_runs_through_the_engine():
    done = subprocess.run([sys.executable, "bench/gpu.py", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "gpu" and result["quick"] is True and isinstance(result["device"], str)
    for model in ("cnn", "mlp"):
        check_epoch_times(result["epoch_time"][model], result["epochs"], gpu=result["device"] != "CPU")
    workers = result["workers"]
    for n in ("1", "2"):
        assert workers[n]["trials"] >= 1 and positive(workers[n]["trials_per_min"]), workers[n]
        assert positive(workers[n]["training_trials_per_min"]) and workers[n]["wall_s"] >= workers[n]["training_s"]
    assert positive(workers["speedup"]["2"])
    retrain = result["retrain"]
    assert isinstance(retrain["test_accuracy"], float) and 0 <= retrain["test_accuracy"] <= 1, retrain
    assert positive(retrain["wall_s"]) and retrain["epochs"] == result["epochs"]
    assert positive(result["wall_s"])
