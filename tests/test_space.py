"""Search space -> Optuna suggestions, and the seed's exact draws with TPE seed 42."""

import optuna
import pytest

from engine import Param, StudyConfig
from engine.run import make_sampler
from engine.space import fixed_params, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)


def draw(config: StudyConfig, n: int) -> list[dict]:
    study = optuna.create_study(direction="maximize", sampler=make_sampler(config))
    study.optimize(lambda trial: (suggest(trial, config.space), 0.5)[1], n_trials=n)
    return [t.params for t in study.trials]


def test_each_kind_maps_to_its_distribution():
    space = [Param("layer_num", "int", low=1, high=9, step=2),
             Param("learning_rate", "float", low=1e-4, high=1e-1, log=True),
             Param("batch_size", "categorical", choices=[16, 32]),
             Param("dropout", "fixed", value=0.3)]
    study = optuna.create_study()
    trial = study.ask()
    params = suggest(trial, space)
    dists = trial.distributions
    assert dists["layer_num"] == optuna.distributions.IntDistribution(1, 9, step=2)
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert dists["batch_size"] == optuna.distributions.CategoricalDistribution([16, 32])
    assert "dropout" not in params and fixed_params(space) == {"dropout": 0.3}
    assert params["layer_num"] in (1, 3, 5, 7, 9)


@pytest.mark.parametrize("model, epochs_total, best", [
    ("mlp", 255, {"layer_num": 3, "epochs": 50, "first_layer_unit": 512, "batch_size": 128}),
    ("cnn", 240, {"k": 3, "layer_num": 3, "epochs": 40, "first_layer_unit": 256}),
])
def test_tpe_seed_42_draws_the_seed_protocol(model, epochs_total, best):
    """The published protocol trained 255 (MLP) / 240 (CNN) epochs over 10 trials and found these bests."""
    params = draw(StudyConfig(model=model, seed=42, pruner="none", objective="test_accuracy"), 10)
    assert sum(p["epochs"] for p in params) == epochs_total
    assert best in params


def test_random_sampler_is_seeded():
    config = StudyConfig(sampler="random", seed=7)
    assert draw(config, 5) == draw(config, 5)


def test_a_worker_s_sampler_is_seeded_by_its_first_trial_number():
    """Trial numbers are unique in a study: seeding with seed + the first one gives each worker its own draws,
    and a study that already has 3 trials goes on as seed + 3 would."""
    config = StudyConfig(model="mlp", seed=42, pruner="none", objective="test_accuracy")
    study = optuna.create_study(direction="maximize", sampler=make_sampler(config))
    for params in draw(StudyConfig(model="mlp", seed=1), 3):  # three earlier trials, drawn with another seed
        distributions = {name: optuna.distributions.IntDistribution(0, 1000) for name in params}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=0.5))
    study.optimize(lambda trial: (suggest(trial, config.space), 0.5)[1], n_trials=2)
    fresh = StudyConfig(model="mlp", seed=45, pruner="none", objective="test_accuracy")
    assert [t.params for t in study.trials[3:]] == draw(fresh, 2)
    assert draw(fresh, 2) != draw(config, 2)
