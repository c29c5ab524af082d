"""Which GPUs this host shows a worker, and how workers are spread over them (no TensorFlow import).

A GPU is named by what `CUDA_VISIBLE_DEVICES` takes: an index (`0`), a UUID (`GPU-8f3a...`) or a MIG instance
(`MIG-...`). Each worker process sees one entry; an entry listed twice runs two workers on that GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass

NVIDIA_SMI_SECONDS = 10
GPU_ENTRY = re.compile(r"\d+|GPU-[0-9a-fA-F-]+|MIG-[\w/-]+")  # an index, a GPU's UUID, a MIG instance
UUID_HEX = 8  # hex digits of a UUID kept in a label: short, and distinct on any real box


@dataclass(frozen=True)
class Gpu:
    """One GPU this host shows: its CUDA_VISIBLE_DEVICES entry and, from nvidia-smi, its name."""

    entry: str
    name: str = ""

    @property
    def label(self) -> str:
        return device_label(self.entry)


def device_label(entry: str) -> str:
    """A short, stable name for a CUDA_VISIBLE_DEVICES entry: `gpu0`, `gpu-8f3a1b2c` (a UUID),
    `mig-8f3a1b2c/1/0` (a MIG instance: its parent's or its own UUID, and its instance numbers)."""
    entry = entry.strip()
    if entry.isdigit():
        return f"gpu{entry}"
    kind, _, rest = entry.partition("-")
    if kind.upper() == "MIG":
        uuid, _, instance = rest.removeprefix("GPU-").partition("/")
        return f"mig-{uuid[:UUID_HEX].lower()}" + (f"/{instance}" if instance else "")
    if kind.upper() == "GPU":
        return f"gpu-{rest[:UUID_HEX].lower()}"
    return f"gpu-{entry[:UUID_HEX]}"


def visible_entries(environ: dict[str, str] | None = None) -> list[str] | None:
    """The entries of CUDA_VISIBLE_DEVICES, or None when it is not set (then every GPU is visible); "-1" or an
    empty value hides them all."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    return entries[:entries.index("-1")] if "-1" in entries else entries  # CUDA ignores what follows an invalid one


def nvidia_smi_gpus() -> list[Gpu]:
    """Each NVIDIA GPU nvidia-smi lists (index and name); [] without nvidia-smi or when it fails."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=NVIDIA_SMI_SECONDS, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        index, _, name = line.partition(",")
        if index.strip().isdigit():
            gpus.append(Gpu(index.strip(), name.strip()))
    return gpus


def visible_gpus(environ: dict[str, str] | None = None) -> list[Gpu]:
    """The GPUs a worker started here may use: CUDA_VISIBLE_DEVICES's entries when it is set (named from
    nvidia-smi where an entry is an index), else every GPU nvidia-smi lists."""
    entries = visible_entries(environ)
    listed = nvidia_smi_gpus() if entries is None or entries else []
    if entries is None:
        return listed
    names = {gpu.entry: gpu.name for gpu in listed}
    return [Gpu(entry, names.get(entry, "")) for entry in entries]


def cpu_cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class WorkerPlan:
    """How many worker processes start here, and the GPU entry each one sees (none: the CPU, or as inherited)."""

    workers: int
    gpus: tuple[str, ...] = ()  # worker i sees gpus[i % len(gpus)]
    here: str = ""  # one worker in this process: the GPU TensorFlow trains on (its first visible one), if any

    @property
    def in_processes(self) -> bool:
        """Workers run as processes (the pool) rather than one runner in this process."""
        return self.workers > 1 or bool(self.gpus)

    def gpu_of(self, worker: int) -> str | None:
        return self.gpus[worker % len(self.gpus)] if self.gpus else None

    @property
    def text(self) -> str:
        """E.g. "4 workers: GPU 0 x2, GPU 1 x2", "1 worker: gpu-8f3a1b2c", "2 workers on the CPU"."""
        noun = "worker" if self.workers == 1 else "workers"
        if self.here:
            return f"1 worker: GPU {self.here if self.here.isdigit() else device_label(self.here)}"
        if not self.gpus:
            return f"{self.workers} {noun} on the CPU"
        shares = Counter(self.gpu_of(worker) for worker in range(self.workers))
        parts = [(f"GPU {entry}" if entry.isdigit() else device_label(entry)) + (f" x{count}" if count > 1 else "")
                 for entry, count in shares.items()]
        return f"{self.workers} {noun}: {', '.join(parts)}"


def plan_workers(workers: int | str, gpus: list[str], visible: list[Gpu]) -> WorkerPlan:
    """The workers to start: `gpus` (entries, a repeated one shares its GPU) when given; else `workers` spread
    round-robin over the visible GPUs. workers 0 = one per entry of `gpus`, else 1; "auto" = one per GPU (given
    or visible), else 1."""
    pool = list(gpus) or [gpu.entry for gpu in visible]
    if workers == "auto":
        count = len(pool) or 1
    else:
        count = int(workers) or len(gpus) or 1
    if not gpus and count == 1:  # one worker in this process: TensorFlow trains on its first GPU, if any
        return WorkerPlan(1, here=visible[0].entry if visible else "")
    return WorkerPlan(count, tuple(pool))


def plan_warnings(plan: WorkerPlan, gpus: list[str], visible: list[Gpu]) -> list[str]:
    """What a plan leaves out or cannot do: GPUs listed that this host does not show, entries no worker uses."""
    warnings = []
    shown = {gpu.entry for gpu in visible}
    unknown = sorted({entry for entry in gpus if shown and entry not in shown})
    if unknown:
        warnings.append(f"GPU {', '.join(unknown)} not found here (a worker given one trains on the CPU)")
    if gpus and plan.workers < len(gpus):
        warnings.append(f"{len(gpus) - plan.workers} of the GPUs entries unused by {plan.workers} workers")
    return warnings
