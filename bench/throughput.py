"""Throughput levers, each against tunedeck's plain fit, side by side in one process.

For one MLP and one CNN of the default spaces: seconds per trial (build, fit with validation, test evaluation)
with the engine's way (NumPy arrays into fit, evaluation batch 1024) and with each lever alone: a tf.data
pipeline built once per dataset and batch size (cached, prefetched) and reused across trials,
steps_per_execution 8 and 32, XLA (jit_compile), evaluation batch 256. Levers alternate with the baseline
and each figure is the median over repeats. Final JSON line: per model, each lever's time / the baseline's.
Usage: python bench/throughput.py [--quick] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from engine.keras import load_dataset  # noqa: E402
from engine.keras.builders import BUILDERS  # noqa: E402
from engine.keras.training import EVAL_BATCH, PreparedData  # noqa: E402

MODELS = {"mlp": {"layer_num": 3, "first_layer_unit": 256, "batch_size": 64, "learning_rate": 0.001},
          "cnn": {"k": 3, "layer_num": 2, "first_layer_unit": 32, "batch_size": 128}}
LEVERS = ("baseline", "tf.data cached", "steps_per_execution 8", "steps_per_execution 32", "XLA",
          "eval batch 256")


def trial(model: str, data: PreparedData, epochs: int, lever: str, pipelines: dict) -> float:
    """Seconds for one trial with one lever."""
    params = MODELS[model]
    keras.backend.clear_session(free_memory=False)
    started = time.perf_counter()
    built = BUILDERS[model](params, data.input_shape, data.num_classes)
    if lever.startswith("steps_per_execution") or lever == "XLA":
        built.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=lever == "XLA",
                      steps_per_execution=int(lever.split()[-1]) if lever.startswith("steps") else 1)
    batch = params["batch_size"]
    if lever == "tf.data cached":
        key = (id(data), batch)
        if key not in pipelines:  # built once, reused by every trial with this batch size
            fit = tf.data.Dataset.from_tensor_slices((data.x_fit, data.y_fit)).cache().shuffle(
                len(data.y_fit), reshuffle_each_iteration=True).batch(batch).prefetch(tf.data.AUTOTUNE)
            val = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(EVAL_BATCH).cache().prefetch(
                tf.data.AUTOTUNE)
            pipelines[key] = fit, val
        fit, val = pipelines[key]
        built.fit(fit, epochs=epochs, validation_data=val, verbose=0)
    else:
        built.fit(data.x_fit, data.y_fit, batch_size=batch, epochs=epochs, validation_data=(data.x_val, data.y_val),
                  verbose=0)
    built.evaluate(data.x_test, data.y_test, batch_size=256 if lever == "eval batch 256" else EVAL_BATCH, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 examples, 2 epochs, 2 repeats: about a minute")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    subset, epochs, repeats = (1000, 2, 2) if args.quick else (0, 5, 3)
    repeats = args.repeats or repeats
    result = {"bench": "throughput", "subset": subset, "epochs": epochs, "repeats": repeats, "models": {}}
    for model in MODELS:
        data = PreparedData.from_dataset(load_dataset("mnist-5k", subset))
        pipelines: dict = {}
        for lever in LEVERS:  # warm-up: first traces, the pipelines' first (caching) pass
            trial(model, data, 1, lever, pipelines)
        seconds: dict[str, list[float]] = {lever: [] for lever in LEVERS}
        for repeat in range(repeats):
            for lever in LEVERS if repeat % 2 == 0 else LEVERS[::-1]:
                seconds[lever].append(trial(model, data, epochs, lever, pipelines))
        base = statistics.median(seconds["baseline"])
        ratios = {lever: round(statistics.median(times) / base, 3) for lever, times in seconds.items()}
        result["models"][model] = {"baseline_s": round(base, 3), **ratios}
        print(f"{model}: {result['models'][model]}", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
