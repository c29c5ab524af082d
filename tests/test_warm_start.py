"""Warm starts: a new study runs another's best parameter sets first (fitted to its space), or learns from its
trials as prior knowledge without running them; a bad source is refused before anything is made."""

import optuna
import pytest
from fakes import FakeTrainer, fake_config

from engine import Param, StudyRunner, TrialFinished
from engine.errors import ConfigError, UserError
from engine.report import render_report
from engine.run.warm_start import parse_source
from engine.space import fitted
from engine.store import schema


def test_parameters_are_fitted_to_the_new_space():
    space = [Param("units", "int", low=16, high=64, step=16), Param("rate", "float", low=1e-3, high=1e-1, log=True),
             Param("act", "categorical", choices=["relu", "tanh"]), Param("epochs", "fixed", value=3)]
    assert fitted({"units": 100, "rate": 0.5, "act": "relu"}, space) == (
        {"units": 64, "rate": 0.1, "act": "relu"}, ["units 100 -> 64", "rate 0.5 -> 0.1"], "")
    assert fitted({"units": 40, "rate": 0.01, "act": "relu"}, space)[0]["units"] == 48  # onto the step
    assert fitted({"units": 32, "rate": 0.01, "act": "gelu"}, space)[2] == "act = 'gelu' is not one of its choices"
    assert fitted({"rate": 0.01, "act": "relu"}, space)[2] == "no units"


def test_a_source_may_live_in_another_storage():
    assert parse_source("mlp-old", "sqlite:///a.db") == ("mlp-old", "sqlite:///a.db")
    assert parse_source("a@b@postgresql://tuner@db/x", "sqlite:///a.db") == ("a@b", "postgresql://tuner@db/x")


def study_config(tmp_path, url: str, n_trials: int, name: str, **changes):
    """fake_config's study (one epoch), named, with `changes` made after it is built."""
    config = fake_config(tmp_path, url, n_trials, epochs=1)
    config.study_name = name
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def first_study(tmp_path, n_trials: int = 6):
    url = f"sqlite:///{tmp_path}/first.db"
    config = study_config(tmp_path, url, n_trials, "first", sampler="random")
    StudyRunner(config, trainer=FakeTrainer()).run()
    return url, optuna.load_study(study_name="first", storage=url)


def test_a_warm_start_runs_the_best_parameter_sets_first_clipped_to_the_new_space(tmp_path):
    url, first = first_study(tmp_path)
    best3 = sorted((t for t in first.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)[:3]
    config = study_config(tmp_path, url, 4, "second", warm_start="first", warm_start_top=3)
    narrow = config.param("learning_rate")
    narrow.low = 0.01  # some of the first study's rates fall below: clipped up
    events = []
    StudyRunner(config, emit=events.append, trainer=FakeTrainer()).run()
    second = optuna.load_study(study_name="second", storage=url)
    for trial, source in zip(second.trials[:3], best3, strict=True):
        assert trial.user_attrs["warm_start_of"] == f"first#{source.number}"
        assert trial.params["learning_rate"] == max(source.params["learning_rate"], 0.01)
        assert {k: v for k, v in trial.params.items() if k != "learning_rate"} == \
               {k: v for k, v in source.params.items() if k != "learning_rate"}
    record = second.user_attrs[schema.WARM_START]
    assert record["from"] == "first" and record["enqueued"] == [t.number for t in best3] and not record["prior"]
    assert len(second.trials) == 4 and sum(isinstance(e, TrialFinished) for e in events) == 4
    summary = render_report(second)
    assert "## Warm start" in summary and "its best 3 parameter sets ran first" in summary
    assert ("clipped to this space: learning_rate" in summary) == bool(record["clipped"])


def test_prior_knowledge_is_given_to_the_sampler_not_run_and_not_counted(tmp_path):
    url, first = first_study(tmp_path)
    config = study_config(tmp_path, url, 3, "second", warm_start="first", warm_start_prior=True)
    events = []
    finished = StudyRunner(config, emit=events.append, trainer=FakeTrainer()).run()
    second = optuna.load_study(study_name="second", storage=url)
    priors = [t for t in second.trials if schema.prior(t)]
    assert len(priors) == 6 and all(t.state.name == "COMPLETE" for t in priors)  # TPE reads them
    assert [t.value for t in priors] == [t.value for t in first.trials]
    assert finished.n_complete == 3 and len(second.trials) == 9  # n_trials counts only what ran here
    shown = [e.state for e in events if isinstance(e, TrialFinished)]
    assert shown.count("PRIOR") == 6 and shown.count("COMPLETE") == 3
    summary = render_report(second)
    assert "| PRIOR | 6 |" in summary and "given to the sampler as prior knowledge" in summary
    assert len(first.trials) == 6  # the source is read, never written


@pytest.mark.parametrize("changes, message", [
    (dict(warm_start="missing"), "missing"),
    (dict(warm_start="first", warm_start_prior=True, dataset="other"), "warm_start: --prior needs the same model, "
                                                                        "data and objective; 'first' differs in dataset"),
    (dict(warm_start="first", objective="val_loss"), "warm_start: 'first' maximizes its objective"),
    (dict(warm_start="second"), "warm_start: 'second' is this study"),
])
def test_a_bad_source_is_refused_before_anything_is_made(tmp_path, changes, message):
    url, _ = first_study(tmp_path, n_trials=2)
    config = study_config(tmp_path, url, 2, "second", **changes)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        StudyRunner(config, trainer=FakeTrainer()).run()
    assert "second" not in optuna.get_all_study_names(url)
    assert not (tmp_path / "runs" / "second").exists()


def test_prior_needs_a_source():
    from engine import StudyConfig, validate

    with pytest.raises(ConfigError, match="warm_start_prior: needs warm_start"):
        validate(StudyConfig(warm_start_prior=True))


def test_a_warm_start_fits_n_trials_and_says_what_a_fixed_parameter_replaced(tmp_path):
    url, first = first_study(tmp_path)
    config = study_config(tmp_path, url, 2, "second", warm_start="first", warm_start_top=3)
    config.param("batch_size").kind, config.param("batch_size").value = "fixed", 16
    StudyRunner(config, trainer=FakeTrainer()).run()
    second = optuna.load_study(study_name="second", storage=url)
    record = second.user_attrs[schema.WARM_START]
    assert len(record["enqueued"]) == 2 and record["skipped"][-1][1] == "n_trials = 2 leaves no room for it"
    assert not [t for t in second.trials if t.state.name == "WAITING"]  # nothing left over for a resume
    assert all("(fixed here)" in change for _, change in record["clipped"]) and record["clipped"]


def test_prior_knowledge_outside_the_space_is_skipped_not_clipped(tmp_path):
    url, first = first_study(tmp_path)
    config = study_config(tmp_path, url, 1, "second", warm_start="first", warm_start_prior=True)
    config.param("learning_rate").low = 0.05  # most of the first study's rates fall below
    StudyRunner(config, trainer=FakeTrainer()).run()
    record = optuna.load_study(study_name="second", storage=url).user_attrs[schema.WARM_START]
    outside = [number for number, why in record["skipped"] if why.startswith("outside this space")]
    assert outside and not record["clipped"]
    assert sorted(outside + record["enqueued"]) == [t.number for t in first.trials]
