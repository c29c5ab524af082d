"""The builders reproduce the seed's models exactly (same layers, same parameter counts)."""

import keras
import pytest

from engine.keras.builders import build_cnn, build_mlp


def seed_mlp(layer_num, first_layer_unit):
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28, 1)))
    model.add(keras.layers.Flatten())
    for i in range(layer_num):
        model.add(keras.layers.Dense(int(first_layer_unit / 2**i), activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


def seed_cnn(k, layer_num, first_layer_unit):
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28, 1)))
    for i in range(1, layer_num + 1):
        model.add(keras.layers.Conv2D(first_layer_unit * i, (k, k), activation="relu", padding="same"))
        model.add(keras.layers.MaxPooling2D(2))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dropout(0.5))
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


@pytest.mark.parametrize("layer_num, units", [(2, 64), (3, 512), (4, 128)])
def test_mlp_matches_seed(layer_num, units):
    ours = build_mlp({"layer_num": layer_num, "first_layer_unit": units}, (28, 28, 1), 10)
    seed = seed_mlp(layer_num, units)
    assert ours.count_params() == seed.count_params()
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in seed.layers]
    # integer labels: sparse categorical cross-entropy, the seed's loss without one-hot labels
    assert ours.loss == "sparse_categorical_crossentropy" and isinstance(ours.optimizer, keras.optimizers.Adam)


@pytest.mark.parametrize("k, layer_num, units", [(3, 3, 256), (2, 1, 16), (5, 2, 32)])
def test_cnn_matches_seed(k, layer_num, units):
    ours = build_cnn({"k": k, "layer_num": layer_num, "first_layer_unit": units}, (28, 28, 1), 10)
    assert ours.count_params() == seed_cnn(k, layer_num, units).count_params()


def test_learning_rate_and_dropout_are_used():
    model = build_cnn({"k": 3, "layer_num": 1, "first_layer_unit": 8, "dropout": 0.2, "learning_rate": 0.01}, (12, 12, 1), 10)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.2]
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.input_shape == (None, 12, 12, 1)


def test_any_shape_and_any_number_of_classes():
    table = build_mlp({"layer_num": 2, "first_layer_unit": 16}, (7,), 3)
    assert table.input_shape == (None, 7) and table.output_shape == (None, 3)
    color = build_cnn({"k": 3, "layer_num": 2, "first_layer_unit": 4}, (32, 32, 3), 100)
    assert color.input_shape == (None, 32, 32, 3) and color.output_shape == (None, 100)
