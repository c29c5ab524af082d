"""Datasets with Keras' downloads: a built-in Keras dataset that is not cached yet is fetched by Keras."""

from __future__ import annotations

from engine.data import Dataset
from engine.data import load_dataset as load_local


def download(name: str) -> tuple:
    """Keras' loader for a dataset name: ((x_train, y_train), (x_test, y_test)), fetched and cached by Keras."""
    import keras  # only when a download is needed: reading a cached or local file needs no TensorFlow

    loader = {"mnist": keras.datasets.mnist, "fashion-mnist": keras.datasets.fashion_mnist,
              "cifar10": keras.datasets.cifar10, "cifar100": keras.datasets.cifar100}[name]
    return loader.load_data()


def load_dataset(name: str, subset: int = 0) -> Dataset:
    """engine.data.load_dataset, downloading a Keras dataset that is not cached."""
    return load_local(name, subset, download)
