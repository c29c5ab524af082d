"""bench/defaults_sim.py replays studies on recorded curves as Keras and Optuna would run them."""

import itertools
import sys
from pathlib import Path

from pytest import approx

from engine import StudyConfig

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from defaults_sim import SPACE, Candidate, replay, time_to  # noqa: E402

# val accuracy rises to 0.5 at epoch 3 (index 2) and stays there; test accuracy is 0.1 * (epoch index + 1)
ROWS = [(1.0, val, 0.1 * (i + 1)) for i, val in enumerate([0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])]
CURVES = {key: {"build_s": 0.5, "eval_s": 0.25, "rows": ROWS} for key in itertools.product(*SPACE.values())}


def test_early_stopping_ends_on_a_plateau_and_keeps_the_best_epoch():
    candidate = Candidate("es", StudyConfig(patience=2, pruner="none"), search_epochs=False)
    points = replay(CURVES, candidate, seed=0, epochs=(2, 10, 2), n_trials=2)
    # best epoch 3, two more without improvement: 5 epochs of 1 s, plus build and evaluation
    assert [x for point in points for x in point] == approx([5.75, 0.3, 11.5, 0.3])


def test_seed_protocol_trains_every_sampled_epoch():
    seed_protocol = Candidate("seed", StudyConfig(objective="test_accuracy", pruner="none"), search_epochs=True)
    points = replay(CURVES, seed_protocol, seed=42, epochs=(2, 10, 2), n_trials=3)
    for (_, accuracy), before, (after, _) in zip(points, [0.0] + [p[0] for p in points], points, strict=False):
        epochs = round(accuracy * 10)  # test accuracy of the last epoch trained tells how many there were
        assert after - before == 0.5 + epochs * 1.0 + 0.25
    assert time_to([(1.0, 0.2), (2.0, 0.6), (3.0, 0.9)], target=0.5) == 2.0  # the first trial at or above it
    assert time_to(points, target=1.01) is None


def test_budget_stops_the_study():
    candidate = Candidate("es", StudyConfig(patience=2, pruner="none"), search_epochs=False)
    assert len(replay(CURVES, candidate, seed=0, epochs=(2, 10, 2), n_trials=100, budget=12.0)) == 3
