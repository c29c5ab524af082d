"""A real peer: KerasTuner (Hyperband, BayesianOptimization) against tunedeck's defaults, same wall budget.

Same model (engine.models), search space, data (the same fit / validation / test split) and wall budget T: the
reference protocol's total time (TPE, 10 trials, sampled epochs), run once here. Each tool's chosen model at
any moment is its best-by-validation trial so far (KerasTuner keeps a trial's best val epoch, tunedeck its last
epoch); the figure is that model's test accuracy over time. Test evaluations made only to draw this curve are
not charged to KerasTuner's clock. The best peer is the one whose median final quality is highest;
`ratio_vs_best_peer` = tunedeck's median time to reach that quality / the best peer's median time to reach it
(lower medians over the runs; 0 when only tunedeck got there).
Needs the bench extra (pip install -e '.[bench]').
Usage: python bench/peer.py [--quick] [--model mlp|cnn] [--seeds N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
from replay import Point, bench_space, chosen, time_to_quality  # noqa: E402
from time_to_quality import SETTINGS, real_reference, real_tunedeck  # noqa: E402

from engine.keras import load_dataset  # noqa: E402
from engine.keras.builders import BUILDERS  # noqa: E402
from engine.keras.training import EVAL_BATCH, PreparedData  # noqa: E402

QUICK = {"mlp": {"dataset": "mnist-5k", "subset": 1000, "epochs": (2, 8, 2)},
         "cnn": {"dataset": "mnist-5k", "subset": 500, "epochs": (1, 3, 1)}}


class OutOfTime(Exception):
    """The wall budget is spent: no new trial."""


def keras_tuner_run(kind: str, model: str, data: PreparedData, epochs: tuple[int, int, int], seed: int,
                    budget: float) -> list[Point]:
    """One KerasTuner search for `budget` seconds; a Point per finished trial (its best val epoch)."""
    import keras_tuner as kt

    space = bench_space(model, epochs, SETTINGS[model].get("narrower"))
    points: list[Point] = []
    start, uncharged = time.perf_counter(), 0.0

    def clock() -> float:
        return time.perf_counter() - start - uncharged

    class EpochTests(keras.callbacks.Callback):
        """Each epoch's val and test accuracy (the test not charged to the clock)."""

        def on_train_begin(self, logs=None):
            self.rows = []

        def on_epoch_end(self, epoch, logs=None):
            nonlocal uncharged
            began = time.perf_counter()
            test = self.model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0,
                                       return_dict=True)["accuracy"]
            uncharged += time.perf_counter() - began
            self.rows.append((logs["val_accuracy"], test))

    class HyperModel(kt.HyperModel):
        def build(self, hp):
            params = {}
            for spec in space:
                if spec.name == "epochs":
                    continue
                if spec.kind == "int":
                    params[spec.name] = hp.Int(spec.name, int(spec.low), int(spec.high), step=int(spec.step or 1))
                elif spec.kind == "categorical":
                    params[spec.name] = hp.Choice(spec.name, list(spec.choices))
                else:
                    params[spec.name] = spec.value
            return BUILDERS[model](params, data.input_shape, data.num_classes)

        def fit(self, hp, built, *args, callbacks=(), **kwargs):
            tests = EpochTests()
            batch = next((s.value for s in space if s.name == "batch_size" and s.kind == "fixed"), None)
            batch = batch or hp.Choice("batch_size", [s for s in space if s.name == "batch_size"][0].choices)
            if kind == "bayesian":
                kwargs["epochs"] = hp.Int("epochs", *epochs[:2], step=epochs[2])
            history = built.fit(*args, batch_size=batch, callbacks=[*callbacks, tests], **kwargs)
            best = max(range(len(tests.rows)), key=lambda i: tests.rows[i][0])
            points.append(Point(clock(), *tests.rows[best], len(tests.rows)))
            return history

    class Tuner(kt.Hyperband if kind == "hyperband" else kt.BayesianOptimization):
        def pre_create_trial(self):
            if clock() >= budget:
                raise OutOfTime()
            super().pre_create_trial()

    with tempfile.TemporaryDirectory() as folder:
        options = ({"max_epochs": epochs[1], "factor": 3} if kind == "hyperband" else {"max_trials": 10_000})
        tuner = Tuner(HyperModel(), objective="val_accuracy", seed=seed, directory=folder, project_name=kind,
                      overwrite=True, **options)
        try:
            tuner.search(data.x_fit, data.y_fit, validation_data=(data.x_val, data.y_val), verbose=0)
        except OutOfTime:
            pass
    return points


def final_quality(points: list[Point], budget: float) -> float:
    pick = chosen(points, budget)
    return pick.test if pick else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 examples, at most 8 epochs: about 3 minutes")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per tool (default 3)")
    args = parser.parse_args()
    setting = dict(QUICK[args.model] if args.quick else SETTINGS[args.model])
    SETTINGS[args.model] = setting  # real_reference / real_tunedeck read the model's setting
    data = PreparedData.from_dataset(load_dataset(setting["dataset"], setting["subset"]))
    budget = real_reference(args.model, 42)[-1].seconds
    print(f"budget T = {budget:.1f} s (the reference protocol, seed 42)", flush=True)
    runs: dict[str, list[list[Point]]] = {"hyperband": [], "bayesian": [], "tunedeck": []}
    for seed in range(args.seeds):
        for kind in ("hyperband", "bayesian"):
            runs[kind].append(keras_tuner_run(kind, args.model, data, setting["epochs"], seed, budget))
        runs["tunedeck"].append(real_tunedeck(args.model, seed, budget))
        for tool, points in runs.items():
            print(f"seed {seed} {tool:10s} {len(points[-1]):3d} trials, chosen test accuracy at T "
                  f"{final_quality(points[-1], budget):.4f}", flush=True)
    finals = {tool: statistics.median(final_quality(p, budget) for p in points) for tool, points in runs.items()}
    best_peer = max(("hyperband", "bayesian"), key=finals.get)
    target = finals[best_peer]

    def median_time(tool: str) -> float:
        """The lower median over the tool's runs (a run that never got there counts as infinite): with an even
        number of runs, half of which never reached the target, the plain median would be infinite."""
        times = [time_to_quality(points, target) for points in runs[tool]]
        return statistics.median_low(math.inf if t is None else t for t in times)

    peer_time, ours = median_time(best_peer), median_time("tunedeck")
    ratio = (ours / peer_time if peer_time < math.inf else 0.0) if ours < math.inf else None
    print(json.dumps({"bench": "peer", "model": args.model, "dataset": f"{setting['dataset']}[{setting['subset']}]",
                      "budget_s": round(budget, 1), "seeds": args.seeds,
                      "final_quality": {tool: round(q, 4) for tool, q in finals.items()}, "best_peer": best_peer,
                      "peer_time_s": round(peer_time, 1) if peer_time < math.inf else None,
                      "tunedeck_time_s": round(ours, 1) if ours < math.inf else None,
                      "ratio_vs_best_peer": round(ratio, 3) if ratio is not None else None}))


if __name__ == "__main__":
    main()
