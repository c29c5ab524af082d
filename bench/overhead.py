"""StudyRunner against the seed's plain Optuna loop: same data, space, seed and trials, no pruning.

Prints both wall times and their ratio as a final JSON line. `--quick` finishes within a minute.
Usage: python bench/overhead.py [--quick] [--model mlp|cnn] [--trials N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from engine import StudyConfig, StudyRunner  # noqa: E402
from engine.keras import load_dataset  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def seed_loop(data, n_trials: int, epochs: tuple[int, int, int], units: list[int]) -> list[dict]:
    """The seed's protocol, as it was written: TPE seed 42, test accuracy, no pruning, in-memory study."""
    x_train, x_test = data.x_train, data.x_test
    y_train, y_test = keras.utils.to_categorical(data.y_train, 10), keras.utils.to_categorical(data.y_test, 10)

    def objective(trial):
        keras.backend.clear_session()
        layer_num = trial.suggest_int("layer_num", 2, 4)
        n_epochs = trial.suggest_int("epochs", epochs[0], epochs[1], step=epochs[2])
        first_layer_unit = trial.suggest_categorical("first_layer_unit", units)
        batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
        model = keras.Sequential()
        model.add(keras.Input(shape=x_train.shape[1:]))
        model.add(keras.layers.Flatten())
        for i in range(layer_num):
            model.add(keras.layers.Dense(int(first_layer_unit / 2**i), activation="relu"))
        model.add(keras.layers.Dense(10, activation="softmax"))
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=batch_size, epochs=n_epochs, validation_split=0.1, verbose=0)
        return model.evaluate(x_test, y_test, verbose=0)[1]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42))
    study.optimize(objective, n_trials=n_trials)
    return [t.params for t in study.trials]


def runner_study(dataset: str, subset: int, n_trials: int, epochs: tuple[int, int, int], units: list[int],
                 out_dir: str) -> list[dict]:
    config = StudyConfig(model="mlp", dataset=dataset, subset=subset, n_trials=n_trials, pruner="none",
                         objective="test_accuracy", seed=42, out_dir=out_dir, study_name=f"bench-{time.time_ns()}")
    config.param("epochs").low, config.param("epochs").high, config.param("epochs").step = epochs
    config.param("first_layer_unit").choices = units
    params = []
    StudyRunner(config, emit=lambda e: params.append(e.params) if type(e).__name__ == "TrialStarted" else None).run()
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subset, short trials: under a minute")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="alternating runs of each side")
    args = parser.parse_args()
    subset, n_trials, epochs, units, repeats = ((1500, 3, (1, 3, 1), [64, 128], 3) if args.quick
                                                else (0, 10, (5, 10, 5), [64, 128, 256, 512], 3))
    n_trials = args.trials or n_trials
    repeats = args.repeats or repeats
    data = load_dataset(args.dataset, subset)
    times: dict[str, list[float]] = {"seed": [], "runner": []}
    cpu: dict[str, list[float]] = {"seed": [], "runner": []}  # process CPU time: less sensitive to a busy machine
    with tempfile.TemporaryDirectory() as out_dir:
        # Warm-up: TensorFlow's first graph build and device probe are neither side's cost.
        seed_loop(data, 1, epochs, units)
        runner_study(args.dataset, subset, 1, epochs, units, out_dir)
        for repeat in range(repeats):  # alternate which side goes first, to cancel drift
            for side in (("seed", "runner") if repeat % 2 == 0 else ("runner", "seed")):
                start, start_cpu = time.perf_counter(), time.process_time()
                drawn = (seed_loop(data, n_trials, epochs, units) if side == "seed"
                         else runner_study(args.dataset, subset, n_trials, epochs, units, out_dir))
                times[side].append(time.perf_counter() - start)
                cpu[side].append(time.process_time() - start_cpu)
                print(f"{side}: {times[side][-1]:.2f} s wall, {cpu[side][-1]:.2f} s CPU, "
                      f"epochs {[p['epochs'] for p in drawn]}", flush=True)
    seed_s, runner_s = statistics.median(times["seed"]), statistics.median(times["runner"])
    print(json.dumps({"bench": "overhead", "dataset": data.name, "trials": n_trials, "repeats": repeats,
                      "seed_s": round(seed_s, 3), "runner_s": round(runner_s, 3),
                      "ratio": round(runner_s / seed_s, 3), "goal": 1.03,
                      "cpu_ratio": round(statistics.median(cpu["runner"]) / statistics.median(cpu["seed"]), 3),
                      "cpu_count": os.cpu_count(),
                      "numpy": np.__version__}))


if __name__ == "__main__":
    main()
