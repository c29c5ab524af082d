"""How busy this host's GPUs are, read with NVML (`nvidia-ml-py`, the `gpu` extra) once a second off the UI thread.

A reader is any callable returning one GpuSample per GPU; nvml_reader() is the real one (None without NVML), tests
pass their own. GpuMonitor calls it in a daemon thread; gpu_bar() is the compact text both UIs show.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tunedeck")
SAMPLE_SECONDS = 1.0
MIB = 1024 * 1024
BAR_CELLS = (5, 10)  # the utilisation bar: shown from 5 cells, grown up to 10 where there is room
FULL, EMPTY = "▇", "▁"


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one moment. utilization and temperature_c are None where the device does not report them
    (a MIG instance, some data-centre boards)."""

    index: int
    name: str
    utilization: int | None  # percent of the last sample period a kernel ran
    memory_used_mb: float  # MiB
    memory_total_mb: float
    temperature_c: int | None


GpuReader = Callable[[], list[GpuSample]]

_nvml_lock = threading.Lock()
_nvml_ready: bool | None = None  # nvmlInit's outcome, once per process


def _nvml_init(pynvml) -> bool:
    global _nvml_ready
    with _nvml_lock:
        if _nvml_ready is None:
            try:
                pynvml.nvmlInit()
                _nvml_ready = True
            except Exception as exc:  # no driver, no GPU, a library that does not load
                log.debug("NVML unavailable: %s", exc)
                _nvml_ready = False
        return _nvml_ready


def nvml_reader() -> GpuReader | None:
    """A reader of every GPU NVML sees on this host (CUDA_VISIBLE_DEVICES does not hide any from NVML), or None
    when pynvml is not installed or NVML does not start. Never raises; may take a moment (call it off the UI
    thread); the reader raises pynvml.NVMLError if a GPU stops answering."""
    try:
        import pynvml
    except Exception:
        return None
    if not _nvml_init(pynvml):
        return None
    names: dict[int, str] = {}

    def optional(read: Callable[[], int]) -> int | None:
        try:
            return int(read())
        except pynvml.NVMLError:  # NOT_SUPPORTED on MIG instances and some boards
            return None

    def read() -> list[GpuSample]:
        samples = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            if index not in names:
                name = pynvml.nvmlDeviceGetName(handle)
                names[index] = name.decode() if isinstance(name, bytes) else str(name)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            samples.append(GpuSample(
                index, names[index], optional(lambda h=handle: pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                memory.used / MIB, memory.total / MIB,
                optional(lambda h=handle: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))))
        return samples

    return read


class GpuMonitor:
    """Calls a reader every `interval` seconds in a daemon thread; `latest` is the last samples ([] before the
    first and once stopped). reader=None opens NVML in that thread (nothing is read without it). A reader that
    raises stops the monitor: logged once, `latest` emptied, never raised."""

    def __init__(self, reader: GpuReader | None = None, interval: float = SAMPLE_SECONDS,
                 on_sample: Callable[[list[GpuSample]], None] | None = None) -> None:
        self.reader = reader
        self.interval = interval
        self.on_sample = on_sample
        self.latest: list[GpuSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tunedeck-gpu-monitor", daemon=True)

    def start(self) -> GpuMonitor:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, wait: float = 1.0) -> None:
        """Stop sampling; wait up to `wait` seconds for a read in progress (the thread is a daemon anyway)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def _run(self) -> None:
        reader = self.reader or nvml_reader()
        while reader is not None and not self._stop.is_set():
            try:
                samples = list(reader())
            except Exception as exc:
                log.warning("GPU monitor stopped: the GPU reader failed: %s: %s", type(exc).__name__, exc)
                break
            if self._stop.is_set():
                break
            self.latest = samples
            if self.on_sample is not None:
                try:
                    self.on_sample(samples)
                except Exception as exc:
                    log.warning("GPU monitor stopped: its callback failed: %s: %s", type(exc).__name__, exc)
                    break
            self._stop.wait(self.interval)
        self.latest = []


def gib_text(used_mb: float, total_mb: float) -> str:
    """Memory as "12.1/80G" (GiB; one decimal below 100)."""
    def short(mb: float) -> str:
        gib = mb / 1024
        return f"{gib:.1f}" if gib < 100 else f"{gib:.0f}"

    return f"{short(used_mb)}/{total_mb / 1024:.0f}G"


def gpu_bar(sample: GpuSample, width: int = 40) -> str:
    """One GPU in at most `width` cells, e.g. "GPU0 ▇▇▇▁▁ 63% 12.1/80G 61°C". Narrower, it drops its name, the
    bar, the temperature, the memory, the utilisation, in that order; never longer than `width`."""
    label = f"GPU{sample.index}"
    figures = [text for text in (None if sample.utilization is None else f"{sample.utilization}%",
                                 gib_text(sample.memory_used_mb, sample.memory_total_mb),
                                 None if sample.temperature_c is None else f"{sample.temperature_c}°C") if text]
    numbers = " ".join([label, *figures])
    spare = width - len(numbers) - 1
    if sample.utilization is not None and spare >= BAR_CELLS[0]:
        cells = min(spare, BAR_CELLS[1])
        filled = round(cells * max(0, min(100, sample.utilization)) / 100)
        text = " ".join([label, FULL * filled + EMPTY * (cells - filled), *figures])
        if cells == BAR_CELLS[1] and sample.name and len(text) + 1 + len(sample.name) <= width:
            text += f" {sample.name}"
        return text
    for keep in range(len(figures), -1, -1):
        text = " ".join([label, *figures[:keep]])
        if len(text) <= width:
            return text
    return label[:max(0, width)]
