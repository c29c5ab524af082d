"""Recorded learning curves and studies replayed on them: the shared machinery of the time-to-quality bench.

Every model of a search space is trained once per weight seed for the most epochs the bench allows,
recording per epoch its training time (validation included), val accuracy and test accuracy. A study is then
replayed with Optuna's own samplers and pruners, reading the curves instead of training: its clock is the
recorded build, epoch and final-evaluation times. Each replayed trial reads one of the recorded weight seeds
(drawn per trial), so the replay sees the noise of weight initialisation that a real study sees.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from engine import StudyConfig
from engine.run import make_pruner, make_sampler
from engine.space import Param, suggest

optuna.logging.set_verbosity(optuna.logging.ERROR)


def bench_space(model: str, epochs: tuple[int, int, int], narrower: dict[str, tuple[int, int]] | None = None,
                learning_rates: tuple[float, ...] = ()) -> list[Param]:
    """The model's default search space, with the bench's range of epochs (and any int range narrowed).
    `learning_rates` searches the learning rate among these values (curves are recorded on a grid)."""
    space = StudyConfig(model=model).space
    for spec in space:
        if spec.name == "epochs":
            spec.kind, spec.low, spec.high, spec.step = "int", *epochs
        elif spec.name in (narrower or {}):
            spec.low, spec.high = narrower[spec.name]
        elif spec.name == "learning_rate" and learning_rates:
            spec.kind, spec.value, spec.choices = "categorical", None, list(learning_rates)
    return space


def grid(space: list[Param]) -> Iterator[dict[str, Any]]:
    """Every model of the space (epochs aside): the product of its ints, choices and fixed values."""
    def values(spec: Param) -> list:
        if spec.kind == "int":
            return list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
        if spec.kind == "categorical":
            return list(spec.choices)
        if spec.kind == "fixed":
            return [spec.value]
        raise ValueError(f"{spec.name}: a float range cannot be recorded on a grid")

    specs = [spec for spec in space if spec.name != "epochs"]
    for combination in itertools.product(*map(values, specs)):
        yield dict(zip((spec.name for spec in specs), combination, strict=True))


def curve_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((name, value) for name, value in params.items() if name != "epochs"))


def record_curves(model: str, dataset: str, subset: int, space: list[Param], weight_seeds: tuple[int, ...],
                  path: Path, callbacks: Callable[[], list] | None = None) -> None:
    """Train each model of the space once per weight seed for the most epochs; one JSON line per model and seed.
    Appends what `path` lacks, so an interrupted recording goes on where it stopped. `callbacks` makes the
    extra Keras callbacks of each fit (a learning-rate schedule)."""
    import keras

    from engine.keras import load_dataset
    from engine.keras.builders import BUILDERS
    from engine.keras.training import EVAL_BATCH, PreparedData

    done = {(curve_key(row["params"]), row["weight_seed"]) for row in read_lines(path)}
    data = PreparedData.from_dataset(load_dataset(dataset, subset))

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.rows, self.since = [], time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.since
            test = accuracy(self.model, data.x_test, data.y_test)
            self.rows.append((round(seconds, 4), round(logs["val_accuracy"], 4), round(test, 4)))
            self.since = time.perf_counter()

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        epochs = int(next(spec.high for spec in space if spec.name == "epochs"))
        for params, seed in itertools.product(grid(space), weight_seeds):
            if (curve_key(params), seed) in done:
                continue
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
            started = time.perf_counter()
            built = BUILDERS[model](params, data.input_shape, data.num_classes)
            recorder = Recorder()
            build_s = time.perf_counter() - started
            built.fit(data.x_fit, data.y_fit, batch_size=params["batch_size"], epochs=epochs,
                      validation_data=(data.x_val, data.y_val), verbose=0,
                      callbacks=[*(callbacks() if callbacks else []), recorder])
            started = time.perf_counter()
            built.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0)
            out.write(json.dumps({"params": params, "weight_seed": seed, "build_s": round(build_s, 4),
                                  "eval_s": round(time.perf_counter() - started, 4), "rows": recorder.rows}) + "\n")
            out.flush()
            print(f"recorded {params} weight seed {seed}", flush=True)


def accuracy(model, x, y, batch: int = 250) -> float:
    """Test accuracy by direct calls (model.evaluate's per-call setup would cost more than the epoch)."""
    import numpy as np

    hits = sum(int(np.sum(np.argmax(model(x[i:i + batch], training=False), axis=-1) == y[i:i + batch]))
               for i in range(0, len(x), batch))
    return hits / len(x)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def load_curves(path: Path) -> dict[tuple, list[dict]]:
    """Recorded curves by model: every weight seed's record of it."""
    curves: dict[tuple, list[dict]] = {}
    for row in read_lines(path):
        curves.setdefault(curve_key(row["params"]), []).append(row)
    return curves


@dataclass(frozen=True)
class Point:
    """A complete trial of a replayed study: when it ended (s), its result's val and test accuracy."""

    seconds: float
    val: float
    test: float
    epochs: int


@dataclass(frozen=True)
class Side:
    """A way to run the study: a StudyConfig's sampler, pruner and early stopping, or other factories for them.

    `patience` 0 trains each trial for its sampled epochs; otherwise epochs is a ceiling and a trial ends after
    `patience` epochs without a better val accuracy. Either way the last epoch's weights are the trial's result,
    as in tunedeck's trainer (`restore_best` restores the best val epoch's instead, as Keras can)."""

    name: str
    config: StudyConfig = field(default_factory=StudyConfig)
    sampler: Callable[[int], optuna.samplers.BaseSampler] | None = None
    pruner: Callable[[], optuna.pruners.BasePruner] | None = None
    weights: str = "tunedeck"  # which weight seed a trial reads is drawn from (this, seed, trial number): sides
    # drawing alike compare on the same draws, the reference apart from them
    restore_best: bool = False  # with early stopping: the best val epoch's weights (tunedeck keeps the last's)
    learning_rates: tuple[float, ...] = ()  # searched among these (a log range, replayed on recorded points)
    curves: str = ""  # the curves recorded with this training variant ("plateau"), not the plain ones
    smoothing: int = 1  # a trial's val accuracy: the mean over its last `smoothing` epochs (less selection noise)

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.sampler:
            return self.sampler(seed)
        return make_sampler(dataclasses.replace(self.config, seed=seed))

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return self.pruner() if self.pruner else make_pruner(self.config)


def replay(curves: dict[tuple, list[dict]], space: list[Param], side: Side, seed: int,
           n_trials: int | None = None, budget: float | None = None) -> list[Point]:
    """One study of `side` on recorded curves, for n_trials or until `budget` seconds have passed (no trial
    starts after it, as with a timeout). The complete trials, in the order they ended."""
    patience = side.config.early_stopping_patience
    if patience:  # epochs is a ceiling
        space = [Param("epochs", "fixed", value=int(s.high)) if s.name == "epochs" else s for s in space]
    study = optuna.create_study(direction="maximize", sampler=side.make_sampler(seed), pruner=side.make_pruner())
    prunes = not isinstance(study.pruner, optuna.pruners.NopPruner)
    points: list[Point] = []
    clock = 0.0

    def objective(trial: optuna.Trial) -> float:
        nonlocal clock
        params = {**{s.name: s.value for s in space if s.kind == "fixed"}, **suggest(trial, space)}
        records = curves[curve_key(params)]
        record = random.Random(f"{side.weights}/{seed}/{trial.number}").choice(records)
        rows = record["rows"][:params["epochs"]]
        clock += record["build_s"]
        best = 0
        for epoch, (seconds, val, _) in enumerate(rows):
            clock += seconds
            trial.report(val, epoch)
            if prunes and trial.should_prune():
                raise optuna.TrialPruned()
            if val > rows[best][1]:
                best = epoch
            elif patience and epoch - best >= patience:
                break
        result = rows[best] if patience and side.restore_best else rows[epoch]
        last = rows[max(0, epoch + 1 - side.smoothing):epoch + 1]
        val = result[1] if side.restore_best else sum(row[1] for row in last) / len(last)
        clock += record["eval_s"]
        points.append(Point(clock, val, result[2], epoch + 1))
        return result[2] if side.config.objective == "test_accuracy" else val

    def stop_at_budget(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if budget is not None and clock >= budget:
            study.stop()

    study.optimize(objective, n_trials=n_trials or 100_000, callbacks=[stop_at_budget])
    return points


def chosen(points: list[Point], seconds: float) -> Point | None:
    """The model a study would pick at `seconds`: its best-by-validation complete trial so far (first if tied)."""
    done = [point for point in points if point.seconds <= seconds]
    return max(done, key=lambda point: point.val, default=None)


def time_to_quality(points: list[Point], quality: float) -> float | None:
    """When the chosen model's test accuracy first reaches `quality`."""
    return next((p.seconds for p in points if (pick := chosen(points, p.seconds)) and pick.test >= quality), None)
