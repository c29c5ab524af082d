"""A tunedeck model file: a small residual CNN for colour images (32x32x3, CIFAR-10's shape; any size works).

    tunedeck run --model examples/residual_cnn.py --dataset cifar10 --trials 20

Each stage is a convolution followed by `blocks` residual blocks (two 3x3 convolutions added to their input),
then a 2x2 max-pool; global average pooling and a softmax close it. It returns the model compiled.
"""

import keras

SPACE = {
    "filters": {"kind": "categorical", "choices": [16, 32, 64]},
    "stages": {"kind": "int", "low": 1, "high": 3},
    "blocks": {"kind": "int", "low": 1, "high": 2},
    "dropout": {"kind": "float", "low": 0.0, "high": 0.5},
    "learning_rate": {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "epochs": 30,
    "batch_size": 64,
}


def residual_block(x, filters: int):
    shortcut = x
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same")(x)
    return keras.layers.Activation("relu")(keras.layers.Add()([shortcut, x]))


def build_model(params: dict, input_shape: tuple, num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for stage in range(params["stages"]):
        filters = params["filters"] * 2**stage
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        for _ in range(params["blocks"]):
            x = residual_block(x, filters)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(params["dropout"])(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
