"""Which device TensorFlow trains on, and the GPU settings that must come before it is first used."""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger("tunedeck")


def start_tensorflow() -> list[str]:
    """Import TensorFlow with memory growth on every GPU: call it first wherever TensorFlow starts (a study's
    trainer, retrain, the benches), so that workers sharing a GPU, and a retrain beside them, take only what they
    use. Returns the GPUs' names."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # what TensorFlow reads when it first maps a GPU
    return configure_gpus()


@functools.cache
def configure_gpus() -> list[str]:
    """Turn on memory growth on every GPU (before TensorFlow touches one); return their names.

    Without it TensorFlow maps all GPU memory at once, leaving nothing to other workers on the box."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as exc:  # already initialised by something else in this process
            log.warning("could not enable memory growth on %s: %s", gpu.name, exc)
    return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]


def device_name() -> str:
    """The first GPU's name, or "CPU"."""
    gpus = configure_gpus()
    return gpus[0] if gpus else "CPU"


def reset_gpu_peak() -> None:
    """Start a new peak-memory measurement on the first GPU (no-op without one)."""
    if configure_gpus():
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")


def gpu_peak_mb() -> float | None:
    """Peak memory on the first GPU since the last reset, in MB; None without a GPU."""
    if not configure_gpus():
        return None
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def set_mixed_precision(enabled: bool) -> None:
    """Keras' global dtype policy: float16 compute with float32 variables, or plain float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")
