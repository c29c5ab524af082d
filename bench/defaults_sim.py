"""Choose the study defaults over many seeds: replay studies on recorded learning curves.

One real study per setting and seed would take hours here, and one seed says little (the seed's target is
a couple of test images). So: train every MLP of the default space once, recording per epoch its time, val
accuracy and test accuracy; then replay (a) the seed protocol and (b) candidate defaults with Optuna's own
samplers and pruners, reading the curves instead of training (time = the recorded build, epoch and
evaluation times). For each candidate and seed: the time-to-target ratio as bench/time_to_target.py
defines it, and (b)'s best test accuracy at (a)'s total time. Final JSON line with the summary per candidate.
Usage: python bench/defaults_sim.py [--quick] [--seeds N] [--curves FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import optuna  # noqa: E402

from engine import StudyConfig  # noqa: E402
from engine.sampling import make_pruner, make_sampler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
SPACE = {"layer_num": (2, 3, 4), "first_layer_unit": (64, 128, 256, 512), "batch_size": (32, 64, 128)}


def record_curves(dataset: str, subset: int, max_epochs: int, path: Path) -> None:
    """Train each MLP of the space for max_epochs; one JSON line per model with its per-epoch figures."""
    import keras

    from engine.data import load_dataset
    from engine.models import build_mlp
    from engine.training import EVAL_BATCH, PreparedData

    data = PreparedData.from_dataset(load_dataset(dataset, subset))

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.rows, self.since = [], time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.since
            test = self.model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0,
                                       return_dict=True)["accuracy"]
            self.rows.append((round(seconds, 4), round(logs["val_accuracy"], 4), round(test, 4)))
            self.since = time.perf_counter()

    with path.open("w") as out:
        for values in itertools.product(*SPACE.values()):
            params = dict(zip(SPACE, values, strict=True), epochs=max_epochs)
            keras.backend.clear_session()
            keras.utils.set_random_seed(42)
            started = time.perf_counter()
            model = build_mlp(params, data.input_shape, data.num_classes)
            recorder = Recorder()
            build_s = time.perf_counter() - started
            model.fit(data.x_fit, data.y_fit, batch_size=params["batch_size"], epochs=max_epochs,
                      validation_data=(data.x_val, data.y_val), verbose=0, callbacks=[recorder])
            started = time.perf_counter()
            model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0)
            out.write(json.dumps({**params, "build_s": round(build_s, 4),
                                  "eval_s": round(time.perf_counter() - started, 4), "rows": recorder.rows}) + "\n")
            print(f"recorded {params}", flush=True)


@dataclass(frozen=True)
class Candidate:
    """A way to run the study: a sampler and pruner from a StudyConfig, early stopping, epochs searched or not."""

    name: str
    config: StudyConfig
    search_epochs: bool

    @property
    def patience(self) -> int:
        return self.config.early_stopping_patience


def replay(curves: dict, candidate: Candidate, seed: int, epochs: tuple[int, int, int], n_trials: int,
           budget: float | None = None) -> list[tuple[float, float]]:
    """One study on recorded curves. (seconds since start, test accuracy) per complete trial."""
    config = dataclasses.replace(candidate.config, seed=seed)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(config), pruner=make_pruner(config))
    points: list[tuple[float, float]] = []
    clock = 0.0

    def objective(trial: optuna.Trial) -> float:
        nonlocal clock
        layer_num = trial.suggest_int("layer_num", 2, 4)
        n_epochs = trial.suggest_int("epochs", *epochs[:2], step=epochs[2]) if candidate.search_epochs else epochs[1]
        unit = trial.suggest_categorical("first_layer_unit", list(SPACE["first_layer_unit"]))
        batch = trial.suggest_categorical("batch_size", list(SPACE["batch_size"]))
        record = curves[(layer_num, unit, batch)]
        clock += record["build_s"]
        best, best_epoch, wait = -1.0, 0, 0
        for epoch, (seconds, val, _) in enumerate(record["rows"][:n_epochs]):
            clock += seconds
            trial.report(val, epoch)
            if config.pruner != "none" and trial.should_prune():
                raise optuna.TrialPruned()
            if val > best:
                best, best_epoch, wait = val, epoch, 0
            elif candidate.patience and (wait := wait + 1) >= candidate.patience:
                break
        last = best_epoch if candidate.patience else min(n_epochs, len(record["rows"])) - 1
        clock += record["eval_s"]
        points.append((clock, record["rows"][last][2]))
        if config.objective == "test_accuracy":
            return record["rows"][last][2]
        return best if candidate.patience else record["rows"][last][1]

    def stop_at_budget(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if budget is not None and clock >= budget:  # as a timeout: no new trial after it, pruned or not
            study.stop()

    study.optimize(objective, n_trials=n_trials if budget is None else 10_000, callbacks=[stop_at_budget])
    return points


def time_to(points: list[tuple[float, float]], target: float) -> float | None:
    """Seconds at which the best test accuracy so far first reaches the target."""
    return next((seconds for seconds, accuracy in points if accuracy >= target), None)


def candidates() -> list[Candidate]:
    """tunedeck's defaults as they are, and the alternatives measured against them."""
    def config(**changes) -> StudyConfig:
        return StudyConfig(model="mlp", **changes)

    out = [Candidate("defaults", config(), search_epochs=not config().early_stopping_patience)]
    for patience, (pruner, label) in itertools.product((3, 5, 8), (("none", "no pruner"), ("median", "median"))):
        for search_epochs in (True, False):
            name = f"patience {patience}, {label}, epochs {'searched' if search_epochs else 'a ceiling'}"
            out.append(Candidate(name, config(patience=patience, pruner=pruner), search_epochs))
    out.append(Candidate("random sampler, patience 5, median, epochs a ceiling",
                         config(sampler="random", patience=5), search_epochs=False))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 examples, epochs 2..8, 20 seeds: about two minutes")
    parser.add_argument("--seeds", type=int, default=None, help="sampler seeds to replay, 42 and 0..N-2 (default 50)")
    parser.add_argument("--curves", type=Path, default=None, help="recorded curves to reuse (written if missing)")
    parser.add_argument("--dataset", default="mnist-5k")
    args = parser.parse_args()
    subset, epochs = (1000, (2, 8, 2)) if args.quick else (0, (5, 50, 5))
    n_seeds = args.seeds or (20 if args.quick else 50)
    path = args.curves or Path("runs") / f"curves-{args.dataset}-{subset}-{epochs[1]}.jsonl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        record_curves(args.dataset, subset, epochs[1], path)
    print(f"curves: {path}")
    curves = {(r["layer_num"], r["first_layer_unit"], r["batch_size"]): r
              for r in map(json.loads, path.read_text().splitlines())}
    seed_protocol = Candidate("seed protocol", StudyConfig(objective="test_accuracy", pruner="none"), True)
    seeds = [42, *range(n_seeds - 1)]
    summary = {}
    for candidate in candidates():
        ratios, gains = [], []
        for seed in seeds:
            seed_points = replay(curves, seed_protocol, seed, epochs, n_trials=10)
            target = max(accuracy for _, accuracy in seed_points) - 0.002
            ours = replay(curves, candidate, seed, epochs, n_trials=10, budget=seed_points[-1][0])
            reached = time_to(ours, target)
            ratios.append(math.inf if reached is None else reached / time_to(seed_points, target))
            in_time = [accuracy for seconds, accuracy in ours if seconds <= seed_points[-1][0]]
            gains.append(max(in_time, default=0.0) - max(a for _, a in seed_points))
        summary[candidate.name] = {
            "median_ratio": median if (median := round(statistics.median(ratios), 2)) < math.inf else None,
            "met_0.33": sum(r <= 0.33 for r in ratios),
            "never": ratios.count(math.inf), "ratio_seed_42": round(ratios[0], 2) if ratios[0] < math.inf else None,
            "final_not_lower": sum(g >= 0 for g in gains), "mean_final_gain": round(statistics.mean(gains), 4)}
        s = summary[candidate.name]
        print(f"{candidate.name:55s} ratio median {str(s['median_ratio'] or 'never'):>5}"
              f"  <=0.33 in {s['met_0.33']:2d}/{len(seeds)}"
              f"  never {s['never']:2d}  final >= seed's in {s['final_not_lower']:2d}  mean gain "
              f"{s['mean_final_gain']:+.4f}", flush=True)
    print(json.dumps({"bench": "defaults_sim", "dataset": args.dataset, "subset": subset, "seeds": len(seeds),
                      "epochs": epochs, "candidates": summary}))


if __name__ == "__main__":
    main()
