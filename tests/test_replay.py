"""bench/replay.py replays studies on recorded curves as Keras and Optuna would run them."""

import sys
from pathlib import Path

from pytest import approx

from engine import StudyConfig
from engine.space import Param

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from replay import (  # noqa: E402
    Point,
    Side,
    bench_space,
    chosen,
    curve_key,
    grid,
    load_curves,
    record_curves,
    replay,
    time_to_quality,
)

SPACE = bench_space("mlp", (2, 10, 2))
# val accuracy rises to 0.5 at epoch 3 (index 2) and stays there; test accuracy is 0.1 * (epoch index + 1)
ROWS = [(1.0, val, 0.1 * (i + 1)) for i, val in enumerate([0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])]
CURVES = {curve_key(params): [{"build_s": 0.5, "eval_s": 0.25, "rows": ROWS, "weight_seed": 1}]
          for params in grid(SPACE)}


def test_the_grid_is_every_model_of_the_space():
    assert len(CURVES) == 3 * 4 * 3  # layer_num 2..4, four widths, three batch sizes (learning rate fixed)
    assert len(list(grid(bench_space("cnn", (1, 3, 1))))) == 4 * 3 * 5  # k 2..5, layer_num 1..3, five widths


def test_early_stopping_ends_on_a_plateau_and_keeps_the_last_or_the_best_epoch():
    side = Side("es", StudyConfig(patience=2, pruner="none"))
    points = replay(CURVES, SPACE, side, seed=0, n_trials=2)
    # best epoch 3, two more without improvement: 5 epochs of 1 s, plus build and evaluation; epoch 5's results
    assert points == [Point(5.75, 0.5, approx(0.5), 5), Point(11.5, 0.5, approx(0.5), 5)]
    restored = replay(CURVES, SPACE, Side("best", StudyConfig(patience=2, pruner="none"), restore_best=True), seed=0,
                      n_trials=1)
    assert restored == [Point(5.75, 0.5, approx(0.3), 5)]  # epoch 3's weights


def test_the_reference_trains_every_sampled_epoch_and_keeps_the_last():
    reference = Side("reference", StudyConfig(objective="test_accuracy", pruner="none"))
    points = replay(CURVES, SPACE, reference, seed=42, n_trials=3)
    for point, before in zip(points, [0.0] + [p.seconds for p in points], strict=False):
        assert point.test == approx(0.1 * point.epochs)  # the last epoch trained
        assert point.seconds - before == approx(0.5 + point.epochs * 1.0 + 0.25)


def test_the_chosen_model_is_the_best_by_validation_so_far():
    points = [Point(1.0, 0.90, 0.95, 1), Point(2.0, 0.92, 0.91, 1), Point(3.0, 0.91, 0.99, 1),
              Point(4.0, 0.93, 0.97, 1)]
    assert chosen(points, 0.5) is None and chosen(points, 3.5).test == 0.91  # not the best test, 0.99
    assert time_to_quality(points, 0.96) == 4.0  # trial 3's 0.99 is never chosen: its val is not the best
    assert time_to_quality(points, 0.98) is None


def test_budget_stops_the_study():
    side = Side("es", StudyConfig(patience=2, pruner="none"))
    assert len(replay(CURVES, SPACE, side, seed=0, n_trials=100, budget=12.0)) == 3


def test_a_searched_learning_rate_reads_the_curves_recorded_at_that_rate():
    rates = (1e-3, 3e-3)
    space = bench_space("mlp", (2, 10, 2), learning_rates=rates)
    assert len(list(grid(space))) == 36 * 2
    fast = [(1.0, 0.9, 0.8)] * 10  # recorded at 3e-3: its own val and test
    curves = {curve_key(params): [{"build_s": 0.5, "eval_s": 0.25, "weight_seed": 1,
                                   "rows": fast if params["learning_rate"] == 3e-3 else ROWS}]
              for params in grid(space)}
    side = Side("lr", StudyConfig(patience=0, pruner="none"), learning_rates=rates)
    study_points = replay(curves, space, side, seed=3, n_trials=12)
    assert {p.val for p in study_points} == {0.9, 0.5, 0.4}  # both rates drawn; 0.9 only from the 3e-3 curves
    assert all(p.test == approx(0.8) for p in study_points if p.val == 0.9)


def test_curves_are_recorded_once_per_model_and_seed_with_the_variant_callbacks(tmp_path):
    import keras

    class Count(keras.callbacks.Callback):
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            Count.epochs += 1

    space = [Param("layer_num", "fixed", value=2), Param("first_layer_unit", "fixed", value=16),
             Param("batch_size", "fixed", value=64), Param("learning_rate", "fixed", value=1e-3),
             Param("epochs", "int", low=1, high=2, step=1)]
    path = tmp_path / "curves.jsonl"
    record_curves("mlp", "mnist-5k", 300, space, (1,), path, callbacks=lambda: [Count()])
    record_curves("mlp", "mnist-5k", 300, space, (1,), path, callbacks=lambda: [Count()])  # nothing left to do
    (record,) = load_curves(path)[curve_key({"layer_num": 2, "first_layer_unit": 16, "batch_size": 64,
                                             "learning_rate": 1e-3})]
    assert record["weight_seed"] == 1 and len(record["rows"]) == 2 and Count.epochs == 2
    assert all(seconds > 0 and 0 <= val <= 1 and 0 <= test <= 1 for seconds, val, test in record["rows"])


def test_a_smoothed_value_is_the_mean_of_the_last_epochs_val_accuracy():
    side = Side("smooth", StudyConfig(patience=0, pruner="none"), smoothing=3)
    points = replay(CURVES, SPACE, side, seed=1, n_trials=6)
    vals = [row[1] for row in ROWS]
    for point in points:
        last = vals[max(0, point.epochs - 3):point.epochs]
        assert point.val == approx(sum(last) / len(last)) and point.test == approx(0.1 * point.epochs)
    assert any(point.val != vals[point.epochs - 1] for point in points)  # not the last epoch's alone


def test_each_side_replays_the_curves_of_its_learning_rate_schedule():
    import pytest
    from time_to_quality import levers, variant

    assert variant("mlp", StudyConfig(model="mlp")) == "plateau"  # the default schedule, recorded as such
    assert variant("mlp", StudyConfig(model="mlp", lr_patience=0)) == ""
    assert variant("mlp", StudyConfig(model="mlp", objective="test_accuracy", pruner="none")) == ""  # seed protocol
    assert variant("cnn", StudyConfig(model="cnn")) == ""  # 3-epoch curves: a 3-epoch patience never acts
    with pytest.raises(ValueError, match="lr_patience 5"):
        variant("mlp", StudyConfig(model="mlp", lr_patience=5))
    sides = {side.name: side for side in levers("mlp")}
    assert sides["defaults"].curves == "plateau" and sides["no learning-rate schedule"].curves == ""
