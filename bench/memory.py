"""RSS after each of 50 small trials in one process, MLP and CNN alternating, through StudyRunner.

Each StudyRunner.run() resumes its model's study with one more trial, as a long session of reruns
would. Prints the RSS series and, as a final JSON line, the growth per trial after the first five
(least-squares slope). Usage: python bench/memory.py [--quick] [--trials N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from engine import StudyConfig, StudyRunner  # noqa: E402

WARM_UP = 5


def rss_mb() -> float:
    """Resident set size of this process now (not the peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def tiny_config(model: str, n_trials: int, out_dir: str) -> StudyConfig:
    config = StudyConfig(model=model, dataset="mnist-5k", subset=500, n_trials=n_trials, pruner="none",
                         out_dir=out_dir, study_name=f"memory-{model}", keep_best=1)
    epochs = config.param("epochs")
    epochs.kind, epochs.value = "fixed", 1
    config.param("first_layer_unit").choices = [8, 16] if model == "mlp" else [4, 8]
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same 50 trials (they are small already)")
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    series: list[float] = []
    with tempfile.TemporaryDirectory() as out_dir:
        for i in range(args.trials):
            model = "mlp" if i % 2 == 0 else "cnn"
            StudyRunner(tiny_config(model, i // 2 + 1, out_dir)).run()
            series.append(rss_mb())
            print(f"trial {i + 1:2d} ({model}): RSS {series[-1]:.1f} MB", flush=True)
    tail = np.array(series[WARM_UP:])
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0])
    print(json.dumps({"bench": "memory", "trials": args.trials, "rss_first_mb": round(series[0], 1),
                      "rss_after_warmup_mb": round(series[WARM_UP], 1), "rss_last_mb": round(series[-1], 1),
                      "slope_mb_per_trial": round(slope, 3), "goal_mb_per_trial": 1.0}))


if __name__ == "__main__":
    main()
