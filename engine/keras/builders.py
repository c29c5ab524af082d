"""The seed's models as build(params, input_shape, num_classes) -> compiled Keras model.

Labels are integer class indices everywhere (sparse categorical cross-entropy: the same loss as the seed's
one-hot categorical cross-entropy, without the one-hot copy of the labels)."""

from __future__ import annotations

from typing import Any

import keras


def _output(num_classes: int) -> keras.layers.Dense:
    """The softmax layer; float32 even under mixed precision, for a numerically stable loss."""
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32")


def compile_model(model: keras.Model, params: dict[str, Any], jit_compile: bool | str = False) -> keras.Model:
    """Adam (learning_rate from params, else 1e-3), sparse categorical cross-entropy, accuracy; XLA as asked
    (off unless asked: Keras' "auto" turns it on whenever a GPU is visible)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.get("learning_rate", 0.001)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def build_mlp(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Flatten -> layer_num Dense(relu), layer i with int(first_layer_unit / 2**i) units -> Dense(K, softmax).
    Any input shape: images are flattened, a feature table passes as it is."""
    layers = [keras.Input(shape=input_shape), keras.layers.Flatten()]
    for i in range(params["layer_num"]):
        layers.append(keras.layers.Dense(int(params["first_layer_unit"] / 2**i), activation="relu"))
    layers.append(_output(num_classes))
    return compile_model(keras.Sequential(layers), params)


def build_cnn(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """For i in 1..layer_num: Conv2D(first_layer_unit*i, k x k, same) + MaxPool(2); Flatten, Dropout, Dense(K)."""
    k = params["k"]
    layers = [keras.Input(shape=input_shape)]
    for i in range(1, params["layer_num"] + 1):
        layers.append(keras.layers.Conv2D(params["first_layer_unit"] * i, (k, k), activation="relu", padding="same"))
        layers.append(keras.layers.MaxPooling2D(2))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dropout(params.get("dropout", 0.5)),
        _output(num_classes),
    ]
    return compile_model(keras.Sequential(layers), params)


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn}
