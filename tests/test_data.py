"""Dataset loaders on real files: the embedded digits, .npz and IDX files written here, bad files."""

import gzip

import keras
import numpy as np
import pytest

from engine import DatasetError
from engine.data import IDX_FILES, availability
from engine.keras import load_dataset


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def small_arrays(n_train=50, n_test=20, size=28):
    rng = np.random.default_rng(1)
    return {"x_train": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
            "y_train": np.arange(n_train, dtype=np.uint8) % 10,
            "x_test": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
            "y_test": np.arange(n_test, dtype=np.uint8) % 10}


def test_mnist_5k_split_is_stratified_and_disjoint():
    data = load_dataset("mnist-5k")
    assert data.x_train.shape == (4000, 28, 28, 1) and data.x_test.shape == (1000, 28, 28, 1)
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    # shuffled, not sorted by label as shipped
    assert (np.diff(data.y_train[:100]) != 0).sum() > 50
    train_rows = {row.tobytes() for row in data.x_train[:, :, :, 0]}
    assert not any(row.tobytes() in train_rows for row in data.x_test[:, :, :, 0])


def test_subset_keeps_class_balance_and_is_loaded_once():
    data = load_dataset("mnist-5k", subset=500)
    assert len(data.y_train) == 500 and np.bincount(data.y_train).tolist() == [50] * 10
    assert load_dataset("mnist-5k", subset=500).x_test is data.x_test  # cached, not reloaded
    with pytest.raises(DatasetError, match="subset: 4000 must be smaller than the 4000 training examples"):
        load_dataset("mnist-5k", subset=4000)


def test_npz_in_keras_layout(tmp_path):
    arrays = small_arrays()
    np.savez(tmp_path / "digits.npz", **arrays)
    data = load_dataset(str(tmp_path / "digits.npz"))
    assert data.x_train.shape == (50, 28, 28, 1) and data.y_test.tolist() == arrays["y_test"].tolist()
    assert np.allclose(data.x_train[..., 0], arrays["x_train"] / 255.0)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path, gz):
    arrays = small_arrays(size=12)
    for key, stem in IDX_FILES.items():
        write_idx(tmp_path / (stem + (".gz" if gz else "")), arrays[key], gz=gz)
    data = load_dataset(str(tmp_path))
    assert data.input_shape == (12, 12, 1)
    assert data.y_train.tolist() == arrays["y_train"].tolist()


BAD_NPZ = [
    (lambda a: a.pop("y_test"), "lacks y_test"),
    (lambda a: a.update(y_train=a["y_train"].astype(int) - 5), "y_train labels must be 0..K-1, got -5"),
    (lambda a: a.update(y_train=a["y_train"][:10]), "has 50 x_train rows but 10 labels in y_train"),
    (lambda a: a.update(x_test=a["x_test"][:, :20, :20]), "train images are (28, 28, 1) but test images (20, 20, 1)"),
    (lambda a: a.update(y_train=a["y_train"].astype(float)), "y_train must be a 1-D array of integer labels"),
    (lambda a: a.update(x_train=a["x_train"].reshape(50, -1)), "train rows are (784,) but test rows (28, 28, 1)"),
    (lambda a: a.update(x_train=a["x_train"][:, None, None]), "x_train must be images (N, H, W) or (N, H, W, C), or a feature table (N, F)"),
]


@pytest.mark.parametrize("spoil, message", BAD_NPZ, ids=[m[:20] for _, m in BAD_NPZ])
def test_malformed_npz(tmp_path, spoil, message):
    arrays = small_arrays()
    spoil(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError) as info:
        load_dataset(str(tmp_path / "bad.npz"))
    assert message in str(info.value)


def test_truncated_and_foreign_files(tmp_path):
    arrays = small_arrays()
    for key, stem in IDX_FILES.items():
        write_idx(tmp_path / stem, arrays[key])
    images = tmp_path / IDX_FILES["x_train"]
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="is truncated or padded"):
        load_dataset(str(tmp_path))
    images.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="bad magic number"):
        load_dataset(str(tmp_path))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="is not a readable .npz file"):
        load_dataset(str(tmp_path / "broken.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="must hold the four IDX files"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="neither a built-in"):
        load_dataset("no-such-dataset")


def test_offline_download_failure_and_auto_fallback(tmp_path, monkeypatch):
    """When Keras cannot fetch MNIST, `mnist` says where to put the file and `auto` falls back."""
    from engine.data import datasets as data_module

    def offline():
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- [Errno -2] Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    data_module._load_full.cache_clear()
    try:
        with pytest.raises(DatasetError) as info:
            load_dataset("mnist")
        assert str(tmp_path / "datasets" / "mnist.npz") in str(info.value) and "mnist-5k" in str(info.value)
        fallback = load_dataset("auto")
        assert fallback.name == "mnist-5k" and "auto: using mnist-5k because MNIST is unavailable" in fallback.note
        assert availability("mnist") == "needs download" and availability("mnist-5k") == "embedded"
        (tmp_path / "datasets").mkdir(exist_ok=True)
        (tmp_path / "datasets" / "mnist.npz").write_bytes(b"")
        assert availability("mnist") == "cached"
    finally:
        data_module._load_full.cache_clear()
