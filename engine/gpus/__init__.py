"""The GPUs of this host, read without TensorFlow: which a worker may use, how workers spread over them, and
how busy they are."""

from engine.gpus.usage import GpuMonitor, GpuReader, GpuSample, gpu_bar, nvml_reader
from engine.gpus.visible import (
    GPU_ENTRY,
    Gpu,
    WorkerPlan,
    cpu_cores,
    device_label,
    plan_warnings,
    plan_workers,
    visible_entries,
    visible_gpus,
)

__all__ = ["GpuMonitor", "GpuReader", "GpuSample", "gpu_bar", "nvml_reader", "GPU_ENTRY", "Gpu", "WorkerPlan",
           "cpu_cores", "device_label", "plan_warnings", "plan_workers", "visible_entries", "visible_gpus"]
