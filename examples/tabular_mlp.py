"""A tunedeck model file: an MLP with dropout and L2 for a table of features (N, F).

    tunedeck run --model examples/tabular_mlp.py --dataset wine.npz --trials 20

It returns the model uncompiled: tunedeck compiles it with Adam (learning_rate from the parameters),
sparse categorical cross-entropy and accuracy.
"""

import keras

SPACE = {
    "layers": {"kind": "int", "low": 1, "high": 3},
    "units": {"kind": "int", "low": 16, "high": 256, "log": True},
    "activation": {"kind": "categorical", "choices": ["relu", "tanh"]},
    "dropout": {"kind": "float", "low": 0.0, "high": 0.5},
    "l2": {"kind": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "learning_rate": {"kind": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "epochs": 60,  # a ceiling while early stopping is on (the default)
    "batch_size": {"kind": "categorical", "choices": [16, 32, 64]},
}


def build_model(params: dict, input_shape: tuple, num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(params["layers"]):
        x = keras.layers.Dense(params["units"], activation=params["activation"],
                               kernel_regularizer=keras.regularizers.l2(params["l2"]))(x)
        x = keras.layers.Dropout(params["dropout"])(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)
