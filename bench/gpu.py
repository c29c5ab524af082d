"""The device check, one command: every figure through the engine's own code paths, on MNIST-size arrays.

Data: generated arrays of MNIST's shape (60,000 + 10,000 images of 28 x 28, uint8, 10 classes; accuracy is not the
point), saved as a .npz that each study reads as `dataset = "/path/file.npz"`, in a temporary folder with the
studies' SQLite storage and their out_dir.
(a) Epoch time: the seed's best CNN and a 3-layer MLP, each in float32, mixed precision and XLA (jit_compile =
    "on"): a 1-trial study with every parameter fixed, run by StudyRunner in this process. Each epoch's time is
    the gap between the runner's events (TrialStarted, then each EpochEnded; validation included); the first
    epoch includes building, tracing and XLA's compile and is reported apart from the steady epochs. Peak GPU
    memory is the trial's own record (`gpu_peak_mb`; null on a CPU).
(b) Workers: trials per minute of a WorkerPool of 1, 2 and 4 worker processes on one GPU (CPU workers without
    one), a study of fixed-parameter trials of 1 epoch: over the pool's whole run (its workers' start included)
    and from the first trial's start to the last one's end as the storage recorded them.
(c) One retrain: engine.keras.Retrainer on the float32 CNN study; its wall time and test accuracy.
Prints a line per figure and a final JSON line. Sized for under 8 minutes on one GPU; `--quick` is the CPU smoke
test of CI (a few hundred examples, small models, 1 and 2 workers).
Usage: python bench/gpu.py [--quick] [--examples N] [--epochs E] [--pool-trials N] [--pool-model mlp|cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from engine import Param, StudyConfig, StudyRunner  # noqa: E402
from engine.contract import EngineError, EpochEnded, Event, TrialStarted  # noqa: E402
from engine.data.datasets import VAL_SHARE  # noqa: E402
from engine.gpus import GpuMonitor, GpuSample  # noqa: E402
from engine.run.pool import WorkerPool  # noqa: E402
from engine.store import reading_study, schema  # noqa: E402
from engine.study import validate  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

BEST_CNN = {"k": 3, "layer_num": 3, "first_layer_unit": 256, "batch_size": 128}  # the seed's published best
BEST_MLP = {"layer_num": 3, "first_layer_unit": 512, "batch_size": 128}
QUICK_CNN = {"k": 3, "layer_num": 1, "first_layer_unit": 8, "batch_size": 128}  # --quick: CPU-sized
QUICK_MLP = {"layer_num": 2, "first_layer_unit": 32, "batch_size": 128}
PRECISIONS = {"float32": {}, "mixed": {"mixed_precision": True}, "xla": {"jit_compile": "on"}}


@dataclass(frozen=True)
class Sizes:
    """How big a run is: the full GPU run or `--quick`."""

    quick: bool
    n_train: int
    n_test: int
    epochs: int
    pool_trials: int
    pool_workers: tuple[int, ...]
    pool_model: str

    def params(self, model: str) -> dict[str, Any]:
        if model == "cnn":
            return dict(QUICK_CNN if self.quick else BEST_CNN)
        return dict(QUICK_MLP if self.quick else BEST_MLP)


@dataclass
class Bench:
    """The temporary folder of a run: its data file, its storage, its studies' out_dir."""

    folder: Path
    sizes: Sizes
    gpu: bool = False

    @property
    def dataset(self) -> str:
        return str(self.folder / "mnist-shaped.npz")

    @property
    def storage(self) -> str:
        return f"sqlite:///{(self.folder / 'bench.db').as_posix()}"


def write_dataset(path: str, n_train: int, n_test: int, seed: int = 0) -> None:
    """Random uint8 images of MNIST's shape with labels 0..9 (every class present), as a .npz."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        arrays[f"x_{part}"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"y_{part}"] = np.arange(n) % 10
    np.savez(path, **arrays)


def study_config(bench: Bench, name: str, model: str, params: dict[str, Any], epochs: int, n_trials: int = 1,
                 **settings: Any) -> StudyConfig:
    """A study of `n_trials` identical trials: every parameter fixed, no pruning, no early stopping, no schedule."""
    config = StudyConfig(model=model, dataset=bench.dataset, n_trials=n_trials, study_name=name, storage=bench.storage,
                         out_dir=str(bench.folder / "runs"), keep_best=0, patience=0, lr_patience=0, pruner="none",
                         max_failures=1, **settings)
    values = {**params, "epochs": epochs}
    config.space = [Param(param.name, "fixed", value=values.get(param.name, param.first())) for param in config.space]
    return validate(config)


class EpochClock:
    """An emit callback: when the trial started and when each epoch ended (the runner emits in its thread)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.ended: list[float] = []

    def __call__(self, event: Event) -> None:
        now = time.perf_counter()
        if isinstance(event, TrialStarted):
            self.started = now
        elif isinstance(event, EpochEnded):
            self.ended.append(now)
        elif isinstance(event, EngineError):
            print(f"  engine error: {event.message}", file=sys.stderr, flush=True)

    def epoch_seconds(self) -> list[float]:
        marks = [self.started, *self.ended] if self.started is not None else []
        return [later - earlier for earlier, later in zip(marks, marks[1:], strict=False)]


def trials_of(bench: Bench, name: str) -> list[optuna.trial.FrozenTrial]:
    """The finished trials of a study, read back from its storage; a failed one ends the bench with its error."""
    with reading_study(bench.storage, name) as study:
        trials = study.get_trials(deepcopy=False)
    failed = [trial for trial in trials if trial.state != optuna.trial.TrialState.COMPLETE]
    if failed:
        raise SystemExit(f"{name}: trial {failed[0].number} is {failed[0].state.name}: {schema.trial_error(failed[0])}")
    return trials


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def epoch_time(bench: Bench, model: str, precision: str) -> dict[str, Any]:
    """One 1-trial study through StudyRunner: each epoch's time, the trial's peak GPU memory and XLA setting."""
    sizes = bench.sizes
    config = study_config(bench, f"{model}-{precision}", model, sizes.params(model), sizes.epochs,
                          **PRECISIONS[precision])
    clock = EpochClock()
    StudyRunner(config, emit=clock, poll_seconds=0.5).run()
    trial = trials_of(bench, config.name)[0]
    seconds = clock.epoch_seconds()
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else None
    n_fit = sizes.n_train - round(sizes.n_train * VAL_SHARE)  # the engine validates on a stratified tenth
    return {"epoch_s": [round(s, 3) for s in seconds], "first_epoch_s": rounded(seconds[0] if seconds else None),
            "steady_epoch_s": rounded(steady), "images_per_s": round(n_fit / steady) if steady else None,
            "peak_gpu_mb": trial.user_attrs.get(schema.GPU_PEAK_MB), "xla": trial.user_attrs.get(schema.XLA),
            "test_accuracy": rounded(trial.user_attrs.get(schema.TEST_ACCURACY), 4)}


def epoch_times(bench: Bench, model: str) -> dict[str, Any]:
    """float32, mixed precision and XLA for one model, and how much faster the steady epochs are than float32."""
    result: dict[str, Any] = {"params": bench.sizes.params(model)}
    for precision in PRECISIONS:
        result[precision] = figures = epoch_time(bench, model, precision)
        print(f"{model} {precision}: first epoch {figures['first_epoch_s']} s, steady {figures['steady_epoch_s']} s "
              f"({figures['images_per_s']} images/s), peak GPU memory {figures['peak_gpu_mb']} MB", flush=True)
    base = result["float32"]["steady_epoch_s"]
    for precision in ("mixed", "xla"):
        steady = result[precision]["steady_epoch_s"]
        result[f"{precision}_speedup"] = round(base / steady, 2) if base and steady else None
    return result


class MemoryPeak:
    """The most memory GPU 0 had in use (every process's, read with NVML) while it watched; None without NVML."""

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self.monitor = GpuMonitor(interval=0.25, on_sample=self._sample)

    def _sample(self, samples: list[GpuSample]) -> None:
        if samples:
            self.peak_mb = max(self.peak_mb or 0.0, samples[0].memory_used_mb)

    def __enter__(self) -> MemoryPeak:
        self.monitor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.monitor.close()


def training_span(trials: list[optuna.trial.FrozenTrial]) -> float:
    """Seconds from the first trial's start to the last trial's end, as the storage recorded them."""
    started = min(trial.datetime_start for trial in trials)
    ended = max(trial.datetime_complete for trial in trials)
    return (ended - started).total_seconds()


def pool_rate(bench: Bench, n_workers: int) -> dict[str, Any]:
    """A WorkerPool of `n_workers` processes (all on GPU 0 when there is a GPU) runs the pool study to its end."""
    sizes = bench.sizes
    config = study_config(bench, f"pool-{n_workers}", sizes.pool_model, sizes.params(sizes.pool_model), 1,
                          n_trials=sizes.pool_trials)
    gpus = ["0"] * n_workers if bench.gpu else []
    pool = WorkerPool(config, EpochClock(), n_workers=n_workers, gpus=gpus, poll_seconds=0.5)
    with MemoryPeak() as memory:
        started = time.perf_counter()
        finished = pool.run()
        wall = time.perf_counter() - started
    if not finished.ok:
        raise SystemExit(f"{config.name}: {finished.text} (logs in {config.run_dir})")
    trials = trials_of(bench, config.name)
    span = training_span(trials)
    peaks = [trial.user_attrs.get(schema.GPU_PEAK_MB) for trial in trials]
    return {"trials": len(trials), "wall_s": round(wall, 2), "trials_per_min": round(len(trials) * 60 / wall, 2),
            "training_s": round(span, 2), "training_trials_per_min": round(len(trials) * 60 / span, 2),
            "peak_gpu_mb_per_worker": max((peak for peak in peaks if peak is not None), default=None),
            "gpu_used_mb": rounded(memory.peak_mb, 1)}


def pool_rates(bench: Bench) -> dict[str, Any]:
    """Trials per minute with each number of workers, and against one worker."""
    sizes = bench.sizes
    result: dict[str, Any] = {"model": sizes.pool_model, "params": sizes.params(sizes.pool_model), "epochs": 1}
    for n_workers in sizes.pool_workers:
        result[str(n_workers)] = figures = pool_rate(bench, n_workers)
        print(f"workers {n_workers}: {figures['trials']} trials in {figures['wall_s']} s: "
              f"{figures['trials_per_min']} trials/min ({figures['training_trials_per_min']} once started)", flush=True)
    one = result[str(sizes.pool_workers[0])]["trials_per_min"]
    result["speedup"] = {str(n): round(result[str(n)]["trials_per_min"] / one, 2) for n in sizes.pool_workers[1:]}
    return result


def retrain(bench: Bench, name: str) -> dict[str, Any]:
    """engine.keras.Retrainer on study `name`: its wall time and the final model's test accuracy."""
    from engine.keras import Retrainer

    started = time.perf_counter()
    finished = Retrainer(bench.storage, name, out_dir=str(bench.folder / "final")).run()
    wall = time.perf_counter() - started
    print(f"retrain {name}: {finished.epochs} epochs in {wall:.1f} s, test accuracy {finished.test_accuracy:.4f}",
          flush=True)
    return {"study": name, "epochs": finished.epochs, "wall_s": round(wall, 2),
            "test_accuracy": round(finished.test_accuracy, 4)}


def sizes_from(args: argparse.Namespace) -> Sizes:
    n_train = args.examples or (600 if args.quick else 60_000)
    return Sizes(args.quick, n_train, max(100, n_train // 6), args.epochs or 3,
                 args.pool_trials or (4 if args.quick else 8), (1, 2) if args.quick else (1, 2, 4), args.pool_model)


def run(sizes: Sizes, folder: Path) -> dict[str, Any]:
    """Every figure, in order: epoch times (CNN, MLP), the workers, one retrain."""
    from engine.keras.device import device_name, start_tensorflow

    start_tensorflow()
    bench = Bench(folder, sizes, gpu=device_name() != "CPU")
    write_dataset(bench.dataset, sizes.n_train, sizes.n_test)
    print(f"device {device_name()}: {sizes.n_train} + {sizes.n_test} generated images, {sizes.epochs} epochs per "
          f"study, in {folder}", flush=True)
    epochs = {model: epoch_times(bench, model) for model in ("cnn", "mlp")}
    peaks = [figures[p]["peak_gpu_mb"] for figures in epochs.values() for p in PRECISIONS]
    return {"bench": "gpu", "device": device_name(), "quick": sizes.quick,
            "examples": {"train": sizes.n_train, "test": sizes.n_test}, "epochs": sizes.epochs,
            "epoch_time": epochs, "peak_gpu_mb": max((peak for peak in peaks if peak is not None), default=None),
            "workers": pool_rates(bench), "retrain": retrain(bench, "cnn-float32")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 examples, small models, 1 and 2 workers (CPU CI)")
    parser.add_argument("--examples", type=int, default=0, help="generated training images (default 60,000)")
    parser.add_argument("--epochs", type=int, default=0, help="epochs per epoch-time study (default 3)")
    parser.add_argument("--pool-trials", type=int, default=0, help="trials per worker-pool study (default 8; quick 4)")
    parser.add_argument("--pool-model", choices=("mlp", "cnn"), default="mlp", help="the workers' model (mlp)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tunedeck-bench-gpu-") as folder:
        result = run(sizes_from(args), Path(folder))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
