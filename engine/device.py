"""Which device TensorFlow trains on."""

from __future__ import annotations

import functools


@functools.cache
def device_name() -> str:
    """The first GPU's name, or "CPU"."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("device_name", gpus[0].name)
