"""Epochs per second of one model trained by StudyRunner (callbacks, events, pruning) against the same
model in a bare model.fit loop, same data, side by side, alternating.

Both sides time epochs 2..E (epoch 1 carries TensorFlow's tracing). Final JSON line: both rates and
the ratio. Usage: python bench/epoch_overhead.py [--quick] [--model mlp|cnn] [--epochs E] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from engine import EpochEnded, StudyConfig, StudyRunner  # noqa: E402
from engine.keras import load_dataset  # noqa: E402
from engine.keras.builders import BUILDERS  # noqa: E402
from engine.keras.training import PreparedData  # noqa: E402

PARAMS = {"mlp": {"layer_num": 3, "first_layer_unit": 256, "batch_size": 64},
          "cnn": {"k": 3, "layer_num": 2, "first_layer_unit": 16, "batch_size": 128}}


def rate(stamps: list[float]) -> float:
    """Epochs per second from end-of-epoch timestamps, first epoch excluded."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def bare_fit(data: PreparedData, model_type: str, epochs: int, seed: int) -> float:
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    params = PARAMS[model_type]
    model = BUILDERS[model_type](params, data.input_shape, data.num_classes)
    stamps: list[float] = []
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    model.fit(data.x_fit, data.y_fit, batch_size=params["batch_size"], epochs=epochs,
              validation_data=(data.x_val, data.y_val), verbose=0, callbacks=[clock])
    return rate(stamps)


def runner_fit(model_type: str, dataset: str, subset: int, epochs: int, out_dir: str, name: str) -> float:
    config = StudyConfig(model=model_type, dataset=dataset, subset=subset, n_trials=1, pruner="median",
                         patience=0, out_dir=out_dir, study_name=name, keep_best=0)
    for spec in config.space:
        if spec.name in PARAMS[model_type]:
            spec.kind, spec.value = "fixed", PARAMS[model_type][spec.name]
    config.param("epochs").kind, config.param("epochs").value = "fixed", epochs
    stamps: list[float] = []
    StudyRunner(config, emit=lambda e: stamps.append(time.perf_counter()) if isinstance(e, EpochEnded) else None).run()
    return rate(stamps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats: about a minute")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    epochs = args.epochs or (8 if args.quick else 20)
    repeats = args.repeats or (3 if args.quick else 5)
    data = PreparedData.from_dataset(load_dataset(args.dataset))
    rates: dict[str, list[float]] = {"bare": [], "runner": []}
    with tempfile.TemporaryDirectory() as out_dir:
        bare_fit(data, args.model, 2, 0)  # warm-up
        for repeat in range(repeats):
            for side in (("bare", "runner") if repeat % 2 == 0 else ("runner", "bare")):
                value = (bare_fit(data, args.model, epochs, repeat) if side == "bare"
                         else runner_fit(args.model, args.dataset, 0, epochs, out_dir, f"epochs-{repeat}"))
                rates[side].append(value)
                print(f"{side}: {value:.2f} epochs/s", flush=True)
    bare, runner = statistics.median(rates["bare"]), statistics.median(rates["runner"])
    print(json.dumps({"bench": "epoch_overhead", "model": args.model, "dataset": args.dataset, "epochs": epochs,
                      "repeats": repeats, "bare_epochs_per_s": round(bare, 3), "runner_epochs_per_s": round(runner, 3),
                      "overhead": round(bare / runner - 1, 4), "goal_overhead": 0.03}))


if __name__ == "__main__":
    main()
