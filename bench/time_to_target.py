"""Time to target: the seed's protocol against tunedeck's default study, side by side on the same data.

(a) the seed's protocol, inline: TPE seed 42, 10 trials, each trained for all its sampled epochs, tuned
    on test accuracy. (b) tunedeck's defaults (median pruning, early stopping with epochs as a ceiling,
    val accuracy) over the same search space, given (a)'s total time. For each: wall time and epochs
    trained until its best test accuracy first reaches the target (default: (a)'s final best minus 0.002),
    and its best at (a)'s total time. Final JSON line with the figures and the ratio (b)/(a) of the times to target.
Usage: python bench/time_to_target.py [--quick] [--model mlp|cnn] [--dataset NAME] [--target ACC]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import optuna  # noqa: E402

from engine import StudyConfig, StudyRunner, TrialFinished  # noqa: E402
from engine.data import Dataset, load_dataset  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEED_TRIALS = 10


def seed_protocol(model_type: str, data: Dataset, epochs: tuple[int, int, int]) -> list[tuple[float, int, float]]:
    """The seed's study as it was written (one-hot labels, the last tenth validating). Returns (seconds since
    start, epochs so far, test acc) per trial."""
    x_train, x_test = data.x_train, data.x_test
    y_train, y_test = (keras.utils.to_categorical(y, data.num_classes) for y in (data.y_train, data.y_test))
    points: list[tuple[float, int, float]] = []
    start, trained = time.perf_counter(), 0

    def objective(trial):
        nonlocal trained
        keras.backend.clear_session()
        if model_type == "mlp":
            layer_num = trial.suggest_int("layer_num", 2, 4)
            n_epochs = trial.suggest_int("epochs", epochs[0], epochs[1], step=epochs[2])
            first_layer_unit = trial.suggest_categorical("first_layer_unit", [64, 128, 256, 512])
            batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
            layers = [keras.Input(shape=x_train.shape[1:]), keras.layers.Flatten()]
            layers += [keras.layers.Dense(int(first_layer_unit / 2**i), activation="relu") for i in range(layer_num)]
        else:
            k = trial.suggest_int("k", 2, 5)
            layer_num = trial.suggest_int("layer_num", 1, 3)
            n_epochs = trial.suggest_int("epochs", epochs[0], epochs[1], step=epochs[2])
            first_layer_unit = trial.suggest_categorical("first_layer_unit", [16, 32, 64, 128, 256])
            batch_size = 128
            layers = [keras.Input(shape=x_train.shape[1:])]
            for i in range(1, layer_num + 1):
                layers += [keras.layers.Conv2D(first_layer_unit * i, (k, k), activation="relu", padding="same"),
                           keras.layers.MaxPooling2D(2)]
            layers += [keras.layers.Flatten(), keras.layers.Dropout(0.5)]
        model = keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=batch_size, epochs=n_epochs, validation_split=0.1, verbose=0)
        accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
        trained += n_epochs
        points.append((time.perf_counter() - start, trained, accuracy))
        return accuracy

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42))
    study.optimize(objective, n_trials=SEED_TRIALS)
    return points


def tunedeck_defaults(model_type: str, dataset: str, subset: int, epochs: tuple[int, int, int], budget: float,
                      out_dir: str, **overrides) -> list[tuple[float, int, float]]:
    """tunedeck's default study over the same space, for `budget` seconds. Same point format (complete trials).
    `overrides` change settings (to measure a lever against the defaults)."""
    config = StudyConfig(model=model_type, dataset=dataset, subset=subset, n_trials=1000, timeout=budget,
                         out_dir=out_dir, study_name="defaults", keep_best=0, **overrides)
    config.param("epochs").low, config.param("epochs").high, config.param("epochs").step = epochs
    points: list[tuple[float, int, float]] = []
    trained = 0
    start = time.perf_counter()

    def emit(event):
        nonlocal trained
        if isinstance(event, TrialFinished):
            trained += event.epochs_trained
            if event.state == "COMPLETE":
                points.append((time.perf_counter() - start, trained, event.test_accuracy))

    StudyRunner(config, emit=emit).run()
    return points


def reach(points: list[tuple[float, int, float]], target: float) -> tuple[float | None, int | None]:
    """Seconds and epochs at which the best test accuracy so far first reaches the target."""
    return next(((seconds, epochs) for seconds, epochs, accuracy in points if accuracy >= target), (None, None))


def best_by(points: list[tuple[float, int, float]], seconds: float) -> float | None:
    values = [accuracy for at, _, accuracy in points if at <= seconds]
    return max(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 examples, epochs 2..10: under two minutes")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--target", type=float, default=None, help="default: (a)'s final best - 0.002")
    parser.add_argument("--patience", type=int, default=None, help="override (b)'s early-stopping patience")
    parser.add_argument("--pruner", choices=("median", "hyperband", "none"), default=None, help="override (b)'s pruner")
    args = parser.parse_args()
    subset, epochs = (2000, (2, 10, 2)) if args.quick else (0, (5, 50, 5))
    data = load_dataset(args.dataset, subset)
    seed_points = seed_protocol(args.model, data, epochs)
    seed_total = seed_points[-1][0]
    seed_best = max(p[2] for p in seed_points)
    target = args.target if args.target is not None else seed_best - 0.002
    print(f"(a) seed protocol: {seed_total:.1f} s, {seed_points[-1][1]} epochs, best test accuracy {seed_best:.4f}")
    with tempfile.TemporaryDirectory() as out_dir:
        overrides = {key: value for key, value in (("patience", args.patience), ("pruner", args.pruner))
                     if value is not None}
        ours = tunedeck_defaults(args.model, args.dataset, subset, epochs, seed_total, out_dir, **overrides)
    print(f"(b) tunedeck defaults: {len(ours)} complete trials, best test accuracy "
          f"{max((p[2] for p in ours), default=float('nan')):.4f}")
    (a_s, a_e), (b_s, b_e) = reach(seed_points, target), reach(ours, target)
    print(json.dumps({
        "bench": "time_to_target", "model": args.model, "dataset": data_name(args.dataset, subset),
        "target": round(target, 4), "overrides": overrides,
        "seed": {"time_to_target_s": round(a_s, 1), "epochs_to_target": a_e, "total_s": round(seed_total, 1),
                 "total_epochs": seed_points[-1][1], "final_best": round(seed_best, 4)},
        "tunedeck": {"time_to_target_s": None if b_s is None else round(b_s, 1), "epochs_to_target": b_e,
                     "best_at_seed_total": best_by(ours, seed_total) and round(best_by(ours, seed_total), 4),
                     "complete_trials": len(ours)},
        "ratio": None if b_s is None else round(b_s / a_s, 3), "goal_ratio": 0.33}))


def data_name(dataset: str, subset: int) -> str:
    return f"{dataset}[{subset}]" if subset else dataset


if __name__ == "__main__":
    main()
