"""Models that travel: every kept model, final model and exported figure goes to the study's artifact store (a
folder, or S3 through a real S3 API server started here), and `tunedeck get` fetches one from any machine."""

import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from conftest import tiny_config
from fakes import FakeTrainer, fake_config

from engine import StudyRunner
from engine.contract import TrialResult
from engine.errors import ConfigError, StorageError
from engine.store import get_model, models_of, reachable, schema
from tui.cli import main


def test_a_study_s_best_model_is_got_after_its_run_folder_is_gone(tmp_path, capsys):
    """Done when: a study run with its model store in a folder, its run folder deleted, `tunedeck get` returns a
    model that loads and predicts; after retrain, the final model."""
    import keras

    from engine.keras import Retrainer

    store = tmp_path / "models"
    config = tiny_config(tmp_path, n_trials=2, keep_best=1, storage=f"sqlite:///{tmp_path}/study.db",
                         artifacts=store.as_uri(), pruner="none")
    StudyRunner(config).run()
    shutil.rmtree(tmp_path / "runs")
    assert main(["get", "--storage", config.storage_url, "--study-name", "tiny", "-o", str(tmp_path / "got")]) == 0
    study = optuna.load_study(study_name="tiny", storage=config.storage_url)
    best = study.best_trial.number
    assert f"trial {best}'s model of study tiny" in capsys.readouterr().out
    model = keras.models.load_model(tmp_path / "got" / f"trial-{best:04d}.keras")
    assert model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 10)
    with pytest.raises(ConfigError, match="got/trial-.* exists; choose another -o folder, or pass --force"):
        get_model(config.storage_url, "tiny", None, tmp_path / "got")  # never overwritten without asking

    Retrainer(config.storage_url, "tiny", out_dir=str(tmp_path / "final")).run()
    shutil.rmtree(tmp_path / "final")
    path, what = get_model(config.storage_url, "tiny", None, tmp_path / "again")
    assert path.name == "final.keras" and what.startswith("the final model")
    assert keras.models.load_model(path).output_shape == (None, 10)
    assert {meta.filename for meta in models_of(study)} == {"final.keras"}


class TinyModelTrainer(FakeTrainer):
    """The fake trainer, with a real (untrained) Keras model to keep: values rise trial after trial."""

    def train(self, trial, params, emit, stop_now):
        import keras

        super().train(trial, params, emit, stop_now)
        model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
        return TrialResult(model, 0.5 + trial.number / 100, 0.5)


def test_a_model_that_drops_out_of_the_best_kept_leaves_the_store_too(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    config = fake_config(tmp_path, url, n_trials=3, epochs=1)
    config.keep_best = 1
    StudyRunner(config, trainer=TinyModelTrainer()).run()
    study = optuna.load_study(study_name="shared", storage=url)
    assert study.user_attrs[schema.ARTIFACT_STORE] == (tmp_path / "artifacts").as_uri()  # beside the SQLite file
    assert [len(models_of(t, study._storage)) for t in study.trials] == [1, 1, 1]  # each was kept in its turn
    assert len(list((tmp_path / "artifacts").iterdir())) == 1  # only the best is still in the store
    with pytest.raises(StorageError, match="trial-0000.keras is no longer in the store"):
        get_model(url, "shared", 0, tmp_path / "got")
    assert get_model(url, "shared", None, tmp_path / "got")[0].name == "trial-0002.keras"
    assert not list((tmp_path / "got").glob(".*part"))


def test_exported_figures_are_uploaded_as_study_artifacts(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    StudyRunner(fake_config(tmp_path, url, n_trials=3, epochs=1), trainer=FakeTrainer()).run()
    for _ in range(2):  # an export run again replaces its figures in the store
        assert main(["export", "--storage", url, "--study-name", "shared", "-o", str(tmp_path / "out" / "s.md")]) == 0
    stored = list((tmp_path / "artifacts").iterdir())
    assert len(stored) == len(list((tmp_path / "out" / "plots").iterdir()))
    study = optuna.load_study(study_name="shared", storage=url)
    from engine.store import artifacts_of

    names = {meta.filename for meta in artifacts_of(study)}
    assert "history.png" in names and names <= {path.name for path in (tmp_path / "out" / "plots").iterdir()}


def test_a_worker_on_another_host_is_told_when_it_cannot_see_a_file_store(tmp_path):
    reachable((tmp_path / "here").as_uri(), "gpu-box-1", "gpu-box-1")  # the creator's host: fine
    (tmp_path / "shared").mkdir()
    reachable((tmp_path / "shared").as_uri(), "gpu-box-1", "gpu-box-2")  # a folder this host sees (NFS): fine
    with pytest.raises(ConfigError, match="artifacts: the study keeps its models in .* on gpu-box-1, which this host "
                                          r"\(gpu-box-2\) does not see"):
        reachable((tmp_path / "missing").as_uri(), "gpu-box-1", "gpu-box-2")


@pytest.mark.parametrize("url", ["ftp://x/y", "s3://", "file://", "models", "file://rel/dir"])
def test_a_bad_artifacts_url_is_one_line(url):
    from engine import StudyConfig, validate

    with pytest.raises(ConfigError, match="artifacts: expected file:///PATH or s3://BUCKET/PREFIX"):
        validate(StudyConfig(artifacts=url))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """moto's standalone S3 server on 127.0.0.1 (a real HTTP API, not an in-process mock), with a bucket."""
    import boto3

    port = free_port()
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise AssertionError("moto_server did not start") from None
            time.sleep(0.1)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
    yield endpoint
    server.kill()
    server.wait(10)


def test_an_s3_store_keeps_the_models_for_any_machine(tmp_path, s3_server):
    import boto3

    url = f"sqlite:///{tmp_path}/study.db"
    config = fake_config(tmp_path, url, n_trials=2, epochs=1, artifacts="s3://models/team/mnist")
    config.keep_best = 1
    StudyRunner(config, trainer=TinyModelTrainer()).run()
    keys = [item["Key"] for item in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(
        Bucket="models")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("team/mnist/")  # trial 0's model dropped out, and left
    shutil.rmtree(tmp_path / "runs")
    path, what = get_model(url, "shared", None, tmp_path / "got")
    assert path.name == "trial-0001.keras" and path.stat().st_size > 0


async def test_the_trial_detail_lists_its_artifacts_and_g_downloads_the_model(tmp_path, monkeypatch):
    from test_tui import wait_for

    from tui.app import TunedeckApp
    from tui.screens.modals import TrialDetailScreen
    from tui.screens.run import RunScreen
    from tui.widgets.trial_table import TrialTable

    url = f"sqlite:///{tmp_path}/study.db"
    config = fake_config(tmp_path, url, n_trials=2, epochs=1)
    config.keep_best = 1
    StudyRunner(config, trainer=TinyModelTrainer()).run()
    monkeypatch.chdir(tmp_path)  # a watching view's run folder is runs/<study> here
    app = TunedeckApp(watch=(url, "shared"))
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        table = app.screen.query_one(TrialTable)
        table.move_cursor(row=1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDetailScreen))
        shown = app.screen.query_one("#artifacts")
        await wait_for(pilot, lambda: "trial-0001.keras" in str(shown.render()))
        await pilot.press("g")
        target = tmp_path / "runs" / "shared" / "downloads" / "trial-0001.keras"
        await wait_for(pilot, target.exists)
        assert target.stat().st_size > 0
        table.move_cursor(row=0)  # trial 0: its model dropped out of the best 1 and left the store
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDetailScreen) and app.screen.trial.number == 0)
        shown = app.screen.query_one("#artifacts")
        await wait_for(pilot, lambda: "trial-0000.keras (removed" in str(shown.render()))
        assert "g downloads" not in str(shown.render())


def test_get_into_a_place_it_cannot_write_is_one_line_and_leaves_nothing(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/study.db"
    config = fake_config(tmp_path, url, n_trials=1, epochs=1)
    config.keep_best = 1
    StudyRunner(config, trainer=TinyModelTrainer()).run()
    (tmp_path / "afile").write_text("mine")
    assert main(["get", "--storage", url, "--study-name", "shared", "-o", str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err.startswith("tunedeck: error: output: cannot write")
    assert (tmp_path / "afile").read_text() == "mine"
    for stored in (tmp_path / "artifacts").iterdir():
        stored.unlink()  # the model is gone from the store
    with pytest.raises(StorageError, match="no longer in the store"):
        get_model(url, "shared", None, tmp_path / "new" / "folder")
    assert not (tmp_path / "new").exists()  # a failed get makes no folder


def test_a_store_that_cannot_take_a_file_is_refused_before_the_study(tmp_path):
    from engine.store import check_writable

    class Refusing:
        def write(self, artifact_id, body):
            raise PermissionError(13, "Permission denied")

    with pytest.raises(ConfigError, match="artifacts: cannot write to s3://b/p: .*Permission denied"):
        check_writable(Refusing(), "s3://b/p")
