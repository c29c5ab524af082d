"""Reading dataset files: .npz arrays, IDX files (MNIST's format) and CIFAR's pickled batches.

Each reader returns plain arrays keyed x_train, y_train, x_test, y_test (and x_val, y_val when the file has
them); engine.data checks them. A file that cannot be read is a DatasetError naming it.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from engine.errors import DatasetError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
Arrays = dict[str, np.ndarray]


def read_npz(path: Path) -> Arrays:
    """x_train, y_train, x_test, y_test (and x_val, y_val if both are there) from a .npz file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in REQUIRED if key not in npz.files]
            if missing:
                raise DatasetError(f"dataset: {path} lacks {', '.join(missing)}; expected x_train, y_train, x_test, "
                                   f"y_test (and optionally x_val, y_val)")
            if ("x_val" in npz.files) != ("y_val" in npz.files):
                raise DatasetError(f"dataset: {path} has only one of x_val and y_val; give both or neither")
            return {key: npz[key] for key in REQUIRED + OPTIONAL if key in npz.files}
    except DatasetError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, OSError...
        raise DatasetError(f"dataset: {path} is not a readable .npz file ({type(exc).__name__}: {exc})") from None


def find_idx(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in a folder (plain or .gz), or None if any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        path = next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def read_idx_dir(folder: Path) -> Arrays:
    files = find_idx(folder)
    if files is None:
        names = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
        raise DatasetError(f"dataset: {folder} must hold the four IDX files: {names}")
    return {key: read_idx(path) for key, path in files.items()}


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


CIFAR_FILES = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels"),
               "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels")}


def read_cifar(cache: Path, name: str) -> Arrays | None:
    """CIFAR-10/100 from the python batches Keras' downloader extracted into its cache; None if not there."""
    folder, train_files, test_file, label_key = CIFAR_FILES[name]
    paths = [cache / folder / f for f in (*train_files, test_file)]
    if not all(p.is_file() for p in paths):
        return None

    def batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with open(path, "rb") as file:
                data = pickle.load(file, encoding="bytes")
            images = np.asarray(data[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return images, np.asarray(data[label_key], np.int64)
        except Exception as exc:  # a truncated or foreign pickle
            raise DatasetError(f"dataset: {path} is not a CIFAR batch ({type(exc).__name__}: {exc})") from None

    train = [batch(p) for p in paths[:-1]]
    x_test, y_test = batch(paths[-1])
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
            "x_test": x_test, "y_test": y_test}
