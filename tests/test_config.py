"""Config: defaults, TOML round trip, and one clear error per bad field."""

import pytest

from engine import ConfigError, StudyConfig, dump_config, load_config, save_config
from engine.study import config_from_dict


def test_defaults_are_the_seed_spaces():
    mlp, cnn = StudyConfig(model="mlp"), StudyConfig(model="cnn")
    assert [s.name for s in mlp.space] == ["layer_num", "epochs", "first_layer_unit", "batch_size", "learning_rate"]
    assert mlp.param("first_layer_unit").choices == [64, 128, 256, 512]
    assert (mlp.param("epochs").low, mlp.param("epochs").high, mlp.param("epochs").step) == (5, 50, 5)
    assert cnn.param("batch_size").kind == "fixed" and cnn.param("batch_size").value == 128
    assert cnn.param("k").low == 2 and cnn.param("k").high == 5
    assert cnn.param("dropout").value == 0.5 and cnn.param("learning_rate").value == 0.001
    assert mlp.name == "mlp-auto" and mlp.storage_url == "sqlite:///runs/mlp-auto/study.db"


def test_epochs_is_a_ceiling_while_early_stopping_is_on():
    config = StudyConfig(model="mlp")
    assert config.patience == 8 and config.early_stopping_patience == 8
    assert config.lr_patience == 3 and config.lr_plateau_patience == 3
    space = {spec.name: spec for spec in config.trial_space}
    assert (space["epochs"].kind, space["epochs"].value) == ("fixed", 50)
    assert space["layer_num"] is config.param("layer_num")  # the rest is searched as set
    assert config.param("epochs").kind == "int"  # the user's space is left as it was
    config.param("epochs").kind, config.param("epochs").choices = "categorical", [10, 30, 20]
    assert {spec.name: spec for spec in config.trial_space}["epochs"].value == 30
    for searched in (StudyConfig(model="mlp", patience=0),
                     StudyConfig(model="mlp", objective="test_accuracy", pruner="none")):  # the seed protocol
        assert searched.trial_space == searched.space


def test_toml_round_trip_with_comments(tmp_path):
    config = config_from_dict({"model": "cnn", "dataset": "mnist-5k", "n_trials": 7, "timeout": 60.5,
                               "space": {"learning_rate": {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True},
                                         "epochs": 3}})
    path = tmp_path / "study.toml"
    save_config(config, path, comments=True)
    assert "# mlp | cnn | a model file" in path.read_text()
    loaded = load_config(path)
    assert loaded == config
    assert loaded.param("epochs").kind == "fixed" and loaded.param("epochs").value == 3
    assert loaded.param("learning_rate").log is True
    assert "[space.k]" in dump_config(loaded)


BAD = [
    ({"model": "rnn"}, "model: 'rnn' is not allowed; choose mlp, cnn or a model file (path/to/model.py)"),
    ({"sampler": "grid"}, "sampler: 'grid' is not allowed"),
    ({"pruner": "always"}, "pruner: 'always' is not allowed"),
    ({"objective": "loss"}, "objective: 'loss' is not allowed"),
    ({"n_trials": 0}, "n_trials: must be in 1..1000000"),
    ({"n_trials": "ten"}, "n_trials: expected int"),
    ({"timeout": -1}, "timeout: must be in 0..31536000"),
    ({"seed": 1.5}, "seed: expected an integer"),
    ({"subset": -3}, "subset: must be in 0..1000000000"),
    ({"keep_best": True}, "keep_best: expected an integer"),
    ({"dataset": ""}, "dataset: must not be empty"),
    ({"storage": "runs/study.db"}, "storage: 'runs/study.db' is not a storage URL"),
    ({"colour": "red"}, "unknown setting 'colour'"),
    ({"space": {"layer_num": {"kind": "int", "low": 5, "high": 4}}}, "space.layer_num: low must be <= high (got 5 > 4)"),
    ({"space": {"first_layer_unit": {"choices": []}}}, "space.first_layer_unit.choices: must be a non-empty list"),
    ({"space": {"first_layer_unit": {"choices": [64, 64]}}}, "space.first_layer_unit.choices: values must be distinct"),
    ({"space": {"units": {"kind": "int", "low": 1, "high": 2}}}, "space.units: unknown parameter for mlp; allowed:"),
    ({"space": {"k": 3}}, "space.k: unknown parameter for mlp"),
    ({"space": {"epochs": {"kind": "int", "low": 5, "high": 50, "step": 7}}}, "space.epochs.step: 7 does not divide the range 5..50"),
    ({"space": {"epochs": {"kind": "int", "low": 0, "high": 5}}}, "space.epochs.low: epochs must be in 1..100000, got 0"),
    ({"space": {"epochs": {"kind": "float", "low": 1, "high": 5}}}, "space.epochs.kind: a range of epochs must be int"),
    ({"space": {"learning_rate": {"kind": "float", "low": 0, "high": 0.1, "log": True}}}, "space.learning_rate.low: learning_rate must be in 1e-07..10, got 0"),
    ({"space": {"learning_rate": {"kind": "float", "low": 0.001, "high": 0.1, "log": True, "step": 0.001}}}, "space.learning_rate: log and step cannot be combined"),
    ({"space": {"layer_num": {"kind": "int", "low": 2, "high": 4, "choices": [1]}}}, "space.layer_num.choices: not a field of a int parameter"),
    ({"space": {"layer_num": {"kind": "range"}}}, "space.layer_num.kind: 'range' is not allowed"),
    ({"space": {"batch_size": 12.5}}, "space.batch_size.value: batch_size must be a whole number"),
    ({"model": "cnn", "space": {"dropout": 1.5}}, "space.dropout.value: dropout must be in 0..0.99, got 1.5"),
    ({"space": {"epochs": "ten"}}, "space.epochs.value: expected a number, got 'ten'"),
    ({"space": []}, "space: must be a table of parameters"),
]


@pytest.mark.parametrize("data, message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_each_bad_field_has_one_clear_error(data, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("model = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(broken)


def test_the_asha_pruner_is_optunas_successive_halving():
    import optuna

    from engine.run import make_pruner

    assert isinstance(make_pruner(StudyConfig(pruner="asha")), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner(StudyConfig()), optuna.pruners.MedianPruner)  # the default


def test_a_user_error_carries_the_field_it_names():
    from engine.study import config_from_dict

    with pytest.raises(ConfigError) as caught:
        config_from_dict({"space": {"epochs": {"kind": "int", "low": 5, "high": 50, "step": 7}}})
    assert caught.value.field == "space.epochs.step"
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"n_trials": 0})
    assert caught.value.field == "n_trials"
    assert ConfigError("no colon here", field="model").field == "model" and ConfigError("plain").field == ""


def test_a_bare_list_in_the_space_is_its_choices(tmp_path):
    """The README's own example, `first_layer_unit = [64, 128]` in TOML (and in a model file's SPACE): categorical
    choices, not a refused value."""
    path = tmp_path / "study.toml"
    path.write_text('model = "mlp"\n[space]\nfirst_layer_unit = [64, 128]\nbatch_size = [32, 64]\nepochs = 2\n'
                    'layer_num = {low = 2, high = 3}\n')
    config = load_config(path)
    space = {param.name: param for param in config.space}
    assert (space["first_layer_unit"].kind, space["first_layer_unit"].choices) == ("categorical", [64, 128])
    assert (space["epochs"].kind, space["epochs"].value) == ("fixed", 2)
    save_config(config, tmp_path / "again.toml")
    assert {p.name: p.to_dict() for p in load_config(tmp_path / "again.toml").space} == \
        {p.name: p.to_dict() for p in config.space}


def test_a_model_file_space_with_bare_string_choices(tmp_path):
    from engine.models import spec_for

    model = tmp_path / "act.py"
    model.write_text('SPACE = {"epochs": 1, "batch_size": 32, "activation": ["relu", "tanh"]}\n'
                     "def build_model(params, input_shape, num_classes):\n    raise NotImplementedError\n")
    activation = next(p for p in spec_for(str(model)).default_space() if p.name == "activation")
    assert (activation.kind, activation.choices) == ("categorical", ["relu", "tanh"])
