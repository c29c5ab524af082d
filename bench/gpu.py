"""GPU figures for the README: the seed's best CNN on full-MNIST-size arrays, float32 against --mixed-precision,
and two workers sharing one GPU against one.

Data: generated arrays of MNIST's shape (60,000 x 28 x 28 x 1, 10 classes; accuracy is not the point). Per
precision, one process trains `--epochs` epochs (the first includes tracing) and reports each epoch's time and
the peak GPU memory. Then one worker, and two at once on the same GPU, each train the same epochs; the figure
is images per second over all workers. Final JSON line. Prepared for a GPU machine: on a CPU it runs too (use
`--quick`, a smaller CNN and fewer examples) and reports the device as CPU.
Usage: python bench/gpu.py [--quick] [--examples N] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BEST_CNN = {"k": 3, "layer_num": 3, "first_layer_unit": 256, "batch_size": 128}  # the seed's published best
QUICK_CNN = {"k": 3, "layer_num": 1, "first_layer_unit": 8, "batch_size": 128}


def train(params: dict, examples: int, epochs: int, mixed: bool) -> dict:
    """One process: build and fit the CNN on generated arrays; epoch times and peak GPU memory."""
    import keras
    import numpy as np

    from engine.keras.builders import build_cnn
    from engine.keras.device import configure_gpus, device_name, gpu_peak_mb, reset_gpu_peak, set_mixed_precision

    configure_gpus()
    set_mixed_precision(mixed)
    rng = np.random.default_rng(0)
    x = rng.random((examples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, examples)

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(round(time.perf_counter() - self.began, 3))

    times: list[float] = []
    reset_gpu_peak()
    model = build_cnn(params, (28, 28, 1), 10)
    model.fit(x, y, batch_size=params["batch_size"], epochs=epochs, verbose=0, callbacks=[EpochTimes()])
    peak = gpu_peak_mb()
    return {"device": device_name(), "mixed_precision": mixed, "epoch_s": times,
            "images_per_s": round(examples / times[-1]), "peak_gpu_mb": round(peak) if peak is not None else None}


def in_processes(n: int, params: dict, examples: int, epochs: int, mixed: bool = False) -> list[dict]:
    """`n` worker processes training at once (on the same GPU when there is one); each one's result."""
    command = [sys.executable, __file__, "--child", json.dumps({"params": params, "examples": examples,
                                                                "epochs": epochs, "mixed": mixed})]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"a worker process failed with status {child.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small CNN on 2,048 examples (a CPU smoke test)")
    parser.add_argument("--examples", type=int, default=None, help="generated examples (default 60,000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (the first includes tracing)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(train(job["params"], job["examples"], job["epochs"], job["mixed"])))
        return
    params = QUICK_CNN if args.quick else BEST_CNN
    examples = args.examples or (2048 if args.quick else 60_000)
    precision = {("mixed" if mixed else "float32"): in_processes(1, params, examples, args.epochs, mixed)[0]
                 for mixed in (False, True)}
    for name, result in precision.items():
        print(f"{name}: epochs {result['epoch_s']} s, peak GPU memory {result['peak_gpu_mb']} MB", flush=True)
    one = in_processes(1, params, examples, args.epochs)
    two = in_processes(2, params, examples, args.epochs)
    one_rate, two_rate = one[0]["images_per_s"], sum(worker["images_per_s"] for worker in two)
    speedup = precision["float32"]["epoch_s"][-1] / precision["mixed"]["epoch_s"][-1]
    print(f"workers: 1 -> {one_rate} images/s, 2 on one device -> {two_rate} images/s", flush=True)
    print(json.dumps({"bench": "gpu", "device": one[0]["device"], "model": params, "examples": examples,
                      "epochs": args.epochs, "precision": precision,
                      "mixed_speedup": round(speedup, 2),
                      "workers": {"1": one_rate, "2": two_rate, "ratio": round(two_rate / one_rate, 2)}}))


if __name__ == "__main__":
    main()
