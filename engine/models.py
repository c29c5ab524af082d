"""The seed's models: build(params) -> compiled Keras model. Input shape comes from the data."""

from __future__ import annotations

from typing import Any

import keras

NUM_CLASSES = 10


def _output() -> keras.layers.Dense:
    """The softmax layer; float32 even under mixed precision, for a numerically stable loss."""
    return keras.layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")


def _compile(model: keras.Model, params: dict[str, Any]) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.get("learning_rate", 0.001)),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_mlp(params: dict[str, Any], input_shape: tuple[int, ...]) -> keras.Model:
    """Flatten -> layer_num Dense(relu), layer i with int(first_layer_unit / 2**i) units -> Dense(10, softmax)."""
    layers = [keras.Input(shape=input_shape), keras.layers.Flatten()]
    for i in range(params["layer_num"]):
        layers.append(keras.layers.Dense(int(params["first_layer_unit"] / 2**i), activation="relu"))
    layers.append(_output())
    return _compile(keras.Sequential(layers), params)


def build_cnn(params: dict[str, Any], input_shape: tuple[int, ...]) -> keras.Model:
    """For i in 1..layer_num: Conv2D(first_layer_unit*i, k x k, same) + MaxPool(2); Flatten, Dropout, Dense(10)."""
    k = params["k"]
    layers = [keras.Input(shape=input_shape)]
    for i in range(1, params["layer_num"] + 1):
        layers.append(keras.layers.Conv2D(params["first_layer_unit"] * i, (k, k), activation="relu", padding="same"))
        layers.append(keras.layers.MaxPooling2D(2))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dropout(params.get("dropout", 0.5)),
        _output(),
    ]
    return _compile(keras.Sequential(layers), params)


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(model: str, params: dict[str, Any], input_shape: tuple[int, ...]) -> keras.Model:
    """Build and compile the named model type."""
    return BUILDERS[model](params, input_shape)
