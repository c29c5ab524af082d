"""bench/replay.py replays studies on recorded curves as Keras and Optuna would run them."""

import sys
from pathlib import Path

from pytest import approx

from engine import StudyConfig

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from replay import Point, Side, bench_space, chosen, curve_key, grid, replay, time_to_quality  # noqa: E402

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
