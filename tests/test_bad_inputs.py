"""Bad inputs through the real `tunedeck` entry point: exit status 2, one line naming the field or file, no
traceback, nothing created, and every file that was there still byte for byte the same."""

from __future__ import annotations

import gzip
import sqlite3
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from fakes import FakeTrainer, fake_config

from engine import StudyRunner
from tui.cli import main

Setup = Callable[[Path], None]


def arrays(n_train: int = 50, n_test: int = 20, side: int = 8, **changes) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    data = {"x_train": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
            "y_train": np.arange(n_train) % 10, "x_test": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
            "y_test": np.arange(n_test) % 10}
    return {**data, **changes}


def npz(name: str, **changes) -> Setup:
    """A .npz in the Keras layout with some arrays changed (None: left out)."""
    def make(folder: Path) -> None:
        np.savez(folder / name, **{key: value for key, value in arrays(**changes).items() if value is not None})
    return make


def raw(name: str, content: bytes) -> Setup:
    def make(folder: Path) -> None:
        (folder / name).write_bytes(content)
    return make


def truncated_npz(folder: Path) -> None:
    npz("whole.npz")(folder)
    data = (folder / "whole.npz").read_bytes()
    (folder / "cut.npz").write_bytes(data[: len(data) // 2])
    (folder / "whole.npz").unlink()


def idx_dir(truncate: bool = False, missing: bool = False) -> Setup:
    def make(folder: Path) -> None:
        target = folder / "idx"
        target.mkdir()
        for key, stem in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                          ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
            if missing and key == "y_test":
                continue
            array = arrays()[key].astype(np.uint8)
            header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
            body = header + array.tobytes()
            (target / f"{stem}.gz").write_bytes(gzip.compress(body[:-7] if truncate and key == "x_train" else body))
    return make


def sqlite_of_someone_else(folder: Path) -> None:
    with sqlite3.connect(folder / "notes.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('my thesis')")


def minimize_study(folder: Path) -> None:
    optuna.create_study(study_name="min", storage=f"sqlite:///{folder / 'min.db'}", direction="minimize")


def existing_study(folder: Path) -> None:
    """A finished 1-trial MLP study named `shared` in study.db, on the data TINY uses (the fake trainer)."""
    config = fake_config(folder, f"sqlite:///{folder / 'study.db'}", n_trials=1, epochs=1)
    config.dataset, config.subset = "mnist-5k", 300
    StudyRunner(config, trainer=FakeTrainer()).run()


def and_then(*setups: Setup) -> Setup:
    def make(folder: Path) -> None:
        for setup in setups:
            setup(folder)
    return make


def nothing(folder: Path) -> None:
    pass


TINY = ["--dataset", "mnist-5k", "--subset", "300", "--fix", "epochs=1"]
ON_STUDY = ["--storage", "sqlite:///study.db", "--study-name", "shared", *TINY, "--patience", "0", "--pruner", "none"]

CASES: list[tuple[str, Setup, list[str], str]] = [
    # numbers out of range
    ("trials 0", nothing, ["run", "--trials", "0"], "n_trials: must be in 1..1000000, got 0"),
    ("trials huge", nothing, ["run", "--trials", "10000000"], "n_trials: must be in 1..1000000"),
    ("seed negative", nothing, ["run", "--seed", "-1"], "seed: must be in 0..4294967295, got -1"),
    ("seed 2^32", nothing, ["run", "--seed", "4294967296"], "seed: must be in 0..4294967295"),
    ("seed 400 digits", nothing, ["run", "--seed", "9" * 400], "seed: must be in 0..4294967295, got 9999"),
    ("timeout negative", nothing, ["run", "--timeout", "-1"], "timeout: must be in 0..31536000"),
    ("timeout nan", nothing, ["run", "--timeout", "nan"], "timeout: expected a number, got nan"),
    ("timeout inf", nothing, ["run", "--timeout", "inf"], "timeout: expected a number, got inf"),
    ("subset negative", nothing, ["run", "--subset", "-5"], "subset: must be in 0..1000000000"),
    ("patience negative", nothing, ["run", "--patience", "-1"], "patience: must be in 0..100000"),
    ("lr-patience negative", nothing, ["run", "--lr-patience", "-2"], "lr_patience: must be in 0..100000, got -2"),
    ("heartbeat 0", nothing, ["run", "--heartbeat", "0"], "heartbeat: must be in 1..3600"),
    ("storage_retry negative", nothing, ["run", "--storage-retry", "-1"], "storage_retry: must be in 0..604800"),
    ("storage_retry text", nothing, ["run", "--storage-retry", "soon"], "argument --storage-retry: invalid float value"),
    ("workers negative", nothing, ["run", "--workers", "-1"], "workers: must be in 0..256"),
    ("workers 1000", nothing, ["run", "--workers", "1000"], "workers: must be in 0..256"),
    ("gpus letters", nothing, ["run", "--gpus", "a,b"], "gpus: expected GPU indexes like 0,1 or 0,0,1,1"),
    # names that are paths
    ("study name up", nothing, ["run", "--study-name", "a/../../x"], "study_name: 'a/../../x' is not a name"),
    ("study name absolute", nothing, ["run", "--study-name", "/etc/x"], "study_name: '/etc/x' is not a name"),
    ("study name dots", nothing, ["run", "--study-name", ".."], "study_name: '..' is not a name"),
    ("study name long", nothing, ["run", "--study-name", "x" * 200], "study_name: at most 100 characters, got 200"),
    # storages
    ("storage no scheme", nothing, ["run", "--storage", "nowhere"], "storage: 'nowhere' is not a storage URL"),
    ("storage scheme", nothing, ["run", "--storage", "mongodb://x"], "storage: 'mongodb' storages are not supported"),
    ("storage memory", nothing, ["run", "--storage", "sqlite://"], "storage: an in-memory SQLite database vanishes"),
    ("storage :memory:", nothing, ["run", "--storage", "sqlite:///:memory:"], "an in-memory SQLite database"),
    ("storage journal", nothing, ["run", "--storage", "journal://a.log"], "a journal storage is written journal:///"),
    ("foreign sqlite", sqlite_of_someone_else, ["run", "--storage", "sqlite:///notes.db", *TINY],
     "storage: 'notes.db' is a SQLite database but not an Optuna storage"),
    ("garbage sqlite", raw("junk.db", b"not a database at all" * 100), ["run", "--storage", "sqlite:///junk.db", *TINY],
     "storage: 'junk.db' is not a SQLite database"),
    ("foreign journal", raw("diary.log", b"dear diary\n"), ["run", "--storage", "journal:///diary.log", *TINY],
     "storage: 'diary.log' is not an Optuna journal"),
    ("export missing file", nothing, ["export", "--storage", "sqlite:///gone.db", "--study-name", "x"],
     "storage: no sqlite file 'gone.db'"),
    ("export missing study", existing_study, ["export", "--storage", "sqlite:///study.db", "--study-name", "x"],
     "study-name: no study 'x' in sqlite:///study.db; studies there: shared"),
    ("stop missing study", existing_study, ["stop", "--storage", "sqlite:///study.db", "--study-name", "x"],
     "study-name: no study 'x'"),
    ("watch without storage", nothing, ["watch"], "storage: no runs/*/study.db under this folder; give --storage URL"),
    ("minimize study", minimize_study, ["run", "--storage", "sqlite:///min.db", "--study-name", "min", *TINY],
     "study-name: study 'min' in sqlite:///min.db minimizes its objective"),
    # resuming as another study
    ("resume as cnn", existing_study, ["run", *ON_STUDY, "--model", "cnn"],
     "is another study: this run would change model 'mlp' -> 'cnn'"),
    ("resume other objective", existing_study, ["run", *ON_STUDY, "--objective", "test_accuracy"],
     "objective 'val_accuracy' -> 'test_accuracy'"),
    ("resume other choices", and_then(existing_study, raw("units.toml", b"[space.first_layer_unit]\nchoices=[8]\n")),
     ["run", "units.toml", *ON_STUDY], "space.first_layer_unit choices [64, 128, 256, 512] -> [8]"),
    ("resume fixed to searched", existing_study, ["run", *ON_STUDY, "--fix", "first_layer_unit=64"],
     "space.first_layer_unit kind categorical -> fixed"),
    ("resume other kind", existing_study, ["run", *ON_STUDY, "--fix", "learning_rate=0.01"],
     "space.learning_rate kind float -> fixed"),
    # the search space
    ("fix without value", nothing, ["run", "--fix", "epochs"], "--fix: expected NAME=VALUE (e.g. epochs=1)"),
    ("fix not a number", nothing, ["run", "--fix", "epochs=abc"], "--fix epochs: 'abc' is not a number"),
    ("fix unknown", nothing, ["run", "--fix", "k=3"], "space.k: unknown parameter for mlp"),
    ("epochs 0", nothing, ["run", "--fix", "epochs=0"], "space.epochs.value: epochs must be in 1..100000, got 0"),
    ("layers 20", nothing, ["run", "--fix", "layer_num=20"], "space.layer_num.value: layer_num must be in 1..16"),
    ("batch 0", nothing, ["run", "--fix", "batch_size=0"], "space.batch_size.value: batch_size must be in"),
    ("learning rate 100", nothing, ["run", "--fix", "learning_rate=100"], "learning_rate must be in 1e-07..10"),
    ("dropout 1", nothing, ["run", "--model", "cnn", "--fix", "dropout=1.0"], "dropout must be in 0..0.99"),
    ("kernel 99", nothing, ["run", "--model", "cnn", "--fix", "k=99"], "space.k.value: k must be in 1..64"),
    ("mlp shrinks to nothing", nothing, ["run", "--fix", "first_layer_unit=4", "--fix", "layer_num=4"],
     "space.layer_num: with first_layer_unit 4 and layer_num 4 the MLP's last layer would have 0 units"),
    ("cnn pools to nothing", npz("small.npz", side=4), ["run", "--model", "cnn", "--dataset", "small.npz",
                                                        "--fix", "layer_num=3"],
     "space.layer_num: 3 pooling layers shrink the 4x4 images to nothing; at most 2"),
    # datasets (the file must survive)
    ("dataset missing", nothing, ["run", "--dataset", "/no/such.npz"], "dataset: '/no/such.npz' is neither a built-in"),
    ("dataset empty name", nothing, ["run", "--dataset", ""], "dataset: must not be empty"),
    ("npz keys missing", npz("keys.npz", y_test=None), ["run", "--dataset", "keys.npz"], "keys.npz lacks y_test"),
    ("npz truncated", truncated_npz, ["run", "--dataset", "cut.npz"], "cut.npz is not a readable .npz file"),
    ("npz not a zip", raw("fake.npz", b"hello"), ["run", "--dataset", "fake.npz"], "fake.npz is not a readable .npz"),
    ("negative labels", npz("labels.npz", y_train=np.arange(50) % 12 - 1), ["run", "--dataset", "labels.npz"],
     "labels.npz y_train labels must be 0..K-1, got -1"),
    ("one class", npz("one.npz", y_train=np.zeros(50, int), y_test=np.zeros(20, int)), ["run", "--dataset", "one.npz"],
     "one.npz has one class (label 0 only)"),
    ("val without labels", npz("half.npz", x_val=np.zeros((5, 8, 8), np.uint8)), ["run", "--dataset", "half.npz"],
     "half.npz has only one of x_val and y_val"),
    ("float labels", npz("flt.npz", y_test=np.zeros(20)), ["run", "--dataset", "flt.npz"],
     "flt.npz y_test must be a 1-D array of integer labels"),
    ("shape mismatch", npz("mix.npz", x_test=np.zeros((20, 9, 9), np.uint8)), ["run", "--dataset", "mix.npz"],
     "mix.npz train images are (8, 8, 1) but test images (9, 9, 1)"),
    ("too few examples", npz("few.npz", n_train=5), ["run", "--dataset", "few.npz"],
     "few.npz has 5 training examples; at least 10 are needed"),
    ("empty test set", npz("notest.npz", n_test=0), ["run", "--dataset", "notest.npz"], "notest.npz x_test is empty"),
    ("5-d images", npz("deep.npz", x_train=np.zeros((50, 2, 8, 8, 1), np.uint8)), ["run", "--dataset", "deep.npz"],
     "deep.npz x_train must be images (N, H, W) or (N, H, W, C), or a feature table (N, F)"),
    ("nan pixels", npz("nan.npz", x_train=np.full((50, 8, 8), np.nan)), ["run", "--dataset", "nan.npz"],
     "nan.npz x_train values must be finite (it has NaN or infinity)"),
    ("idx missing file", idx_dir(missing=True), ["run", "--dataset", "idx"], "idx must hold the four IDX files"),
    ("idx truncated", idx_dir(truncate=True), ["run", "--dataset", "idx"], "train-images-idx3-ubyte.gz is truncated"),
    ("subset too small", nothing, ["run", "--dataset", "mnist-5k", "--subset", "3"], "subset: 3 is too small"),
    ("subset too large", nothing, ["run", "--dataset", "mnist-5k", "--subset", "5000"],
     "subset: 5000 must be smaller than the 4000 training examples of mnist-5k"),
    # output folders
    ("out is a file", raw("taken", b"mine"), ["run", *TINY, "--out", "taken"], "out_dir: cannot write to 'taken/"),
    ("out cannot exist", nothing, ["run", *TINY, "--out", "/proc/tunedeck"], "out_dir: cannot write to '/proc/"),
    # config files
    ("config directory", lambda f: (f / "conf").mkdir(), ["run", "conf"], "config: 'conf' is a directory"),
    ("config device", nothing, ["run", "/dev/zero"], "config: '/dev/zero' is not a regular file"),
    ("config binary", raw("bin.toml", b"model = \"mlp\"\x00\x01"), ["run", "bin.toml"], "config: 'bin.toml' is a binary file, not TOML"),
    ("config huge", raw("big.toml", b"# x\n" * 400_000), ["run", "big.toml"], "'big.toml' is 1,600,000 bytes"),
    ("config latin-1", raw("l1.toml", "study_name = 'caf\u00e9'".encode("latin-1")), ["run", "l1.toml"],
     "config: 'l1.toml' is not UTF-8 text"),
    ("config not toml", raw("bad.toml", b"model = \n"), ["run", "bad.toml"], "config: bad.toml is not valid TOML"),
    ("config unknown key", raw("key.toml", b"colour = 'red'\n"), ["run", "key.toml"], "unknown setting 'colour'"),
    ("config wrong type", raw("type.toml", b"n_trials = 'ten'\n"), ["run", "type.toml"], "n_trials: expected int"),
    ("config bad range", raw("range.toml", b"[space.epochs]\nkind='int'\nlow=9\nhigh=2\n"), ["run", "range.toml"],
     "space.epochs: low must be <= high (got 9 > 2)"),
    # commands
    ("mistyped run", nothing, ["rnu"], "'rnu' is not a command or a config file; did you mean 'run'?"),
    ("mistyped export", nothing, ["expotr"], "did you mean 'export'?"),
    ("trials not a number", nothing, ["run", "--trials", "many"], "argument --trials: invalid int value: 'many'"),
    ("unknown model", nothing, ["run", "--model", "rnn"], "model: 'rnn' is not allowed; choose mlp, cnn or a model file"),
    ("model file missing", nothing, ["run", "--model", "mine.py"], "model: file '"),
    ("cnn on a table", npz("table.npz", x_train=np.zeros((50, 6)), x_test=np.zeros((20, 6))),
     ["run", "--model", "cnn", "--dataset", "table.npz"], "model: the built-in cnn needs images"),
]


OPENS_A_STUDY = ("resume", "export", "stop", "minimize")  # their storage and log are tunedeck's own files


def snapshot(folder: Path, own_files_too: bool = True) -> dict[str, bytes]:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    if not own_files_too:
        files = [p for p in files if p.suffix != ".db" and "runs" not in p.relative_to(folder).parts]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


@pytest.mark.parametrize("name, setup, args, message", CASES, ids=[case[0] for case in CASES])
def test_bad_input(name, setup, args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    own_files_too = not name.startswith(OPENS_A_STUDY)
    before = snapshot(tmp_path, own_files_too)
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    except BaseException:
        pytest.fail(f"a traceback escaped:\n{traceback.format_exc()}")
    err = capsys.readouterr().err
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert snapshot(tmp_path, own_files_too) == before  # nothing created or changed: the user's files byte for byte
    if name.startswith("resume"):  # the study is still what it was
        stored = optuna.load_study(study_name="shared", storage="sqlite:///study.db").user_attrs["config"]
        assert stored["model"] == "mlp" and "config_changes" not in optuna.load_study(
            study_name="shared", storage="sqlite:///study.db").user_attrs
