"""Time to quality: tunedeck's defaults against the reference protocol, both selecting on validation.

The reference: TPE with the sampler seed, 10 trials, each trained for its sampled epochs, no pruning. Its chosen
model is the trial with the best final val accuracy; Q is that trial's test accuracy and T its total time.
tunedeck's chosen model at any moment is its best-by-validation trial so far. Per sampler seed: the ratio
(time until tunedeck's chosen test accuracy >= Q - 0.002) / T, and whether its chosen test accuracy at T/3 is
>= Q. Replayed on recorded curves (bench/replay.py; two weight seeds) for many sampler seeds, MLP and CNN,
then checked against real runs on mnist-5k. `--levers` replays the alternatives measured against the defaults.
Final JSON line: per model `median_ratio` and `share_not_worse_at_third`.
Usage: python bench/time_to_quality.py [--quick] [--model mlp|cnn] [--seeds N] [--real N] [--levers]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

import optuna  # noqa: E402
from replay import Point, Side, bench_space, chosen, load_curves, record_curves, replay, time_to_quality  # noqa: E402

from engine import StudyConfig  # noqa: E402

REFERENCE_TRIALS = 10
TOLERANCE = 0.002  # two test images in 1,000
CURVES = Path(__file__).parent / "curves"
# Per model: the data and epochs the curves are recorded on (the CNN on a subset and few epochs: this CPU).
SETTINGS = {
    "mlp": {"dataset": "mnist-5k", "subset": 0, "epochs": (5, 50, 5), "curves": CURVES / "mlp-mnist-5k-50.jsonl"},
    "cnn": {"dataset": "mnist-5k", "subset": 1000, "epochs": (1, 3, 1), "narrower": {"k": (2, 3)},
            "curves": CURVES / "cnn-mnist-5k[1000]-3.jsonl"},
}
WEIGHT_SEEDS = (1, 2)
LEVER_WEIGHT_SEEDS = (1,)  # the learning-rate lever's curves (other rates): one seed, for time
LEARNING_RATES = (3e-4, 1e-3, 3e-3)  # the learning-rate lever: a log range around Adam's default, on 3 points
PLATEAU_PATIENCE = 3  # the schedule the "plateau" curves are recorded with: tunedeck's default lr_patience
VARIANTS: dict[str, Callable[[], list]] = {  # training variants recorded as curves of their own
    "plateau": lambda: [keras_callbacks().ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5,
                                                            patience=PLATEAU_PATIENCE, min_lr=1e-5)],
}
REFERENCE = Side("reference", StudyConfig(objective="test_accuracy", pruner="none"),
                 sampler=lambda seed: optuna.samplers.TPESampler(seed=seed), weights="reference")


def keras_callbacks():
    import keras

    return keras.callbacks


def space_of(model: str, learning_rates: tuple[float, ...] = ()) -> list:
    """The bench's space for the model: its default space, with the setting's epochs and narrower ranges."""
    setting = SETTINGS[model]
    return bench_space(model, setting["epochs"], setting.get("narrower"), learning_rates)


def curves_path(model: str, variant: str = "") -> Path:
    """Where the model's curves are recorded: the plain ones, or a training variant's beside them."""
    path = SETTINGS[model]["curves"]
    return path.with_name(f"{path.stem}-{variant}{path.suffix}") if variant else path


def variant(model: str, config: StudyConfig) -> str:
    """The curves a config's training reads: the "plateau" ones while its learning-rate schedule is on and the
    epochs leave it room to act, else the plain ones."""
    patience = config.lr_plateau_patience
    if not patience or SETTINGS[model]["epochs"][1] <= PLATEAU_PATIENCE:
        return ""
    if patience != PLATEAU_PATIENCE:
        raise ValueError(f"lr_patience {patience}: curves are recorded for {PLATEAU_PATIENCE} only")
    return "plateau"


def record_side_curves(model: str, sides: list[Side]) -> None:
    """Record what the sides replay beyond the plain curves (long: every model of the space again)."""
    setting = SETTINGS[model]
    for side in sides:
        if side.learning_rates or side.curves:
            seeds = LEVER_WEIGHT_SEEDS if side.learning_rates else WEIGHT_SEEDS
            record_curves(model, setting["dataset"], setting["subset"], space_of(model, side.learning_rates),
                          seeds, curves_path(model, side.curves), VARIANTS.get(side.curves))


def levers(model: str) -> list[Side]:
    """tunedeck's defaults (patience 8 keeping the last epoch, the learning rate halved after 3 epochs without
    progress, the median pruner, TPE with Optuna's defaults), and the alternatives measured against them, each
    changing one thing (the old defaults last)."""
    base = StudyConfig(model=model)

    def config(**changes) -> StudyConfig:
        return dataclasses.replace(base, **changes)

    def side(name: str, config: StudyConfig = base, **options) -> Side:
        """A side training as `config` says: on the curves of its learning-rate schedule."""
        return Side(name, config, curves=variant(model, config), **options)

    def tpe(**options) -> Callable[[int], optuna.samplers.BaseSampler]:
        return lambda seed: optuna.samplers.TPESampler(seed=seed, constant_liar=True, **options)

    sides = [
        side("defaults"),
        side("best epoch restored", restore_best=True),
        side("patience 3", config(patience=3)),
        side("patience 5", config(patience=5)),
        side("patience 12", config(patience=12)),
        side("no early stopping (epochs searched)", config(patience=0)),
        side("ASHA (min 1 epoch, reduction factor 3)", config(pruner="asha")),
        side("hyperband (min 1 epoch)", config(pruner="hyperband")),
        side("no pruner", config(pruner="none")),
        side("ASHA, min 2 epochs", pruner=lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=2)),
        side("median pruner, 3 warm-up epochs",
             pruner=lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)),
        side("TPE 5 startup trials", sampler=tpe(n_startup_trials=5)),
        side("TPE 3 startup trials", sampler=tpe(n_startup_trials=3)),
        side("TPE multivariate", sampler=tpe(multivariate=True)),
        side("TPE multivariate + group", sampler=tpe(multivariate=True, group=True)),
        side("TPE without constant liar", sampler=lambda seed: optuna.samplers.TPESampler(seed=seed)),
        side("random sampler", config(sampler="random")),
        side("old defaults: patience 5 restoring the best epoch, no schedule", config(patience=5, lr_patience=0),
             restore_best=True),
        side("val accuracy averaged over the last 3 epochs", smoothing=3),
        side("val accuracy averaged over the last 5 epochs", smoothing=5),
        side("learning rate searched (3e-4, 1e-3, 3e-3), no schedule", config(lr_patience=0),
             learning_rates=LEARNING_RATES),
    ]
    if variant(model, base):  # a schedule waiting 3 epochs cannot act on 3-epoch curves
        sides.append(side("no learning-rate schedule", config(lr_patience=0)))
    return sides


@dataclasses.dataclass
class Outcome:
    """One sampler seed: the reference's Q and T, tunedeck's ratio and its chosen test accuracy at T/3."""

    quality: float
    total: float
    ratio: float
    at_third: float

    @classmethod
    def of(cls, reference: list[Point], ours: list[Point]) -> Outcome:
        quality, total = chosen(reference, math.inf).test, reference[-1].seconds
        reached = time_to_quality(ours, quality - TOLERANCE)
        third = chosen(ours, total / 3)
        return cls(quality, total, math.inf if reached is None else reached / total, third.test if third else 0.0)


def summarize(outcomes: list[Outcome]) -> dict:
    ratios = [o.ratio for o in outcomes]
    median = statistics.median(ratios)
    return {"median_ratio": round(median, 3) if median < math.inf else None,
            "share_not_worse_at_third": round(sum(o.at_third >= o.quality for o in outcomes) / len(outcomes), 2),
            "share_ratio_0.33": round(sum(r <= 0.33 for r in ratios) / len(ratios), 2),
            "never_in_T": ratios.count(math.inf),
            "mean_gain_at_third": round(statistics.mean(o.at_third - o.quality for o in outcomes), 4)}


def replay_sides(model: str, sides: list[Side], seeds: list[int]) -> dict[str, dict]:
    curves = load_curves(curves_path(model))
    space = space_of(model)
    summary = {}
    for side in sides:
        side_curves = load_curves(curves_path(model, side.curves)) if side.curves else curves
        side_space = space_of(model, side.learning_rates)
        outcomes = []
        for seed in seeds:
            reference = replay(curves, space, REFERENCE, seed, n_trials=REFERENCE_TRIALS)
            total = reference[-1].seconds
            outcomes.append(Outcome.of(reference, replay(side_curves, side_space, side, seed, budget=total)))
        summary[side.name] = s = summarize(outcomes)
        print(f"{model} {side.name:40s} median ratio {s['median_ratio']!s:>6}  not worse at T/3 "
              f"{s['share_not_worse_at_third']:.2f}  ratio<=0.33 {s['share_ratio_0.33']:.2f}  never "
              f"{s['never_in_T']:2d}/{len(seeds)}  gain at T/3 {s['mean_gain_at_third']:+.4f}", flush=True)
    return summary


def real_reference(model: str, seed: int) -> list[Point]:
    """The reference protocol for real: a plain Optuna loop on the same data and space (weights not seeded)."""
    import keras

    from engine.keras import load_dataset
    from engine.keras.builders import BUILDERS
    from engine.keras.training import EVAL_BATCH, PreparedData
    from engine.space import fixed_params, suggest

    setting = SETTINGS[model]
    data = PreparedData.from_dataset(load_dataset(setting["dataset"], setting["subset"]))
    space = space_of(model)
    points: list[Point] = []
    start = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        params = {**fixed_params(space), **suggest(trial, space)}
        built = BUILDERS[model](params, data.input_shape, data.num_classes)
        history = built.fit(data.x_fit, data.y_fit, batch_size=params["batch_size"], epochs=params["epochs"],
                            validation_data=(data.x_val, data.y_val), verbose=0)
        test = built.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
        points.append(Point(time.perf_counter() - start, history.history["val_accuracy"][-1], test["accuracy"],
                            params["epochs"]))
        return test["accuracy"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=REFERENCE_TRIALS)
    return points


def real_tunedeck(model: str, seed: int, budget: float) -> list[Point]:
    """tunedeck's defaults for real (StudyRunner, SQLite storage), over the same space, for `budget` seconds."""
    from engine import StudyRunner, TrialFinished

    setting = SETTINGS[model]
    points: list[Point] = []
    with tempfile.TemporaryDirectory() as out_dir:
        config = StudyConfig(model=model, dataset=setting["dataset"], subset=setting["subset"], seed=seed,
                             n_trials=1000, timeout=budget, out_dir=out_dir, keep_best=0,
                             space=space_of(model))
        start = time.perf_counter()

        def emit(event) -> None:
            if isinstance(event, TrialFinished) and event.state == "COMPLETE":
                points.append(Point(time.perf_counter() - start, event.val_accuracy, event.test_accuracy,
                                    event.epochs_trained))

        StudyRunner(config, emit=emit).run()
    return points


def check_against_reality(model: str, seeds: list[int]) -> list[dict]:
    """Real runs of both sides for a few seeds, beside the replay's figures for the same seeds."""
    setting = SETTINGS[model]
    curves, space = load_curves(setting["curves"]), space_of(model)
    rows = []
    for seed in seeds:
        reference = real_reference(model, seed)
        real = Outcome.of(reference, real_tunedeck(model, seed, reference[-1].seconds))
        simulated = replay(curves, space, REFERENCE, seed, n_trials=REFERENCE_TRIALS)
        defaults = levers(model)[0]
        predicted = Outcome.of(simulated, replay(load_curves(curves_path(model, defaults.curves)), space, defaults,
                                                 seed, budget=simulated[-1].seconds))
        row = {"seed": seed, "real": round_outcome(real), "replay": round_outcome(predicted)}
        print(f"{model} real run, seed {seed}: {row}", flush=True)
        rows.append(row)
    return rows


def round_outcome(outcome: Outcome) -> dict:
    return {"Q": round(outcome.quality, 4), "T_s": round(outcome.total, 1),
            "ratio": round(outcome.ratio, 3) if outcome.ratio < math.inf else None,
            "at_third": round(outcome.at_third, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 seeds, replay only: under three minutes")
    parser.add_argument("--model", choices=("mlp", "cnn"), action="append", help="default: both")
    parser.add_argument("--seeds", type=int, default=None, help="sampler seeds: 42 and 0..N-2 (30 quick, 100 full)")
    parser.add_argument("--real", type=int, default=None, help="real runs per model (0 quick, 3 full; MLP only "
                                                                "unless --model cnn is given)")
    parser.add_argument("--levers", action="store_true", help="replay every lever, not only the defaults")
    args = parser.parse_args()
    models = args.model or ["mlp", "cnn"]
    n_seeds = args.seeds or (30 if args.quick else 100)
    seeds = [42, *range(n_seeds - 1)]
    n_real = args.real if args.real is not None else (0 if args.quick else 3)
    result: dict = {"bench": "time_to_quality", "seeds": len(seeds), "models": {}}
    for model in models:
        setting = SETTINGS[model]
        if not setting["curves"].is_file() or len(load_curves(setting["curves"])) == 0:
            print(f"recording {model} curves to {setting['curves']} (long: every model of the space)", flush=True)
        record_curves(model, setting["dataset"], setting["subset"], space_of(model), WEIGHT_SEEDS, setting["curves"])
        sides = levers(model) if args.levers else levers(model)[:1]
        record_side_curves(model, sides)
        summary = replay_sides(model, sides, seeds)
        entry = {"dataset": f"{setting['dataset']}[{setting['subset'] or 'all'}]", "epochs": setting["epochs"],
                 **summary["defaults"]}
        if args.levers:
            entry["levers"] = summary
        if n_real and (model == "mlp" or args.model):
            entry["real_runs"] = check_against_reality(model, seeds[:n_real])
        result["models"][model] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
