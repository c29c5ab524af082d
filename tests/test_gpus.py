"""The GPU path without a GPU: workers spread over GPUs (a fake nvidia-smi), device labels, XLA policy, out-of-memory
trials, max_failures, trial_timeout, retrain's recipe and its model-file check."""

import os
import subprocess
import sys
import threading
import time

import optuna
import pytest
from fakes import FakeTrainer, fake_config, score
from tui_fakes import factory

from engine import Param, StopRequest, StudyConfig, StudyRunner, TrialFinished, WorkerPool, validate
from engine.contract import TrialResult
from engine.errors import ConfigError, OutOfMemory, TrialFailed, TrialStopped
from engine.gpus import Gpu, device_label, plan_workers, visible_entries, visible_gpus
from engine.store import schema, this_worker
from tui.app import TunedeckApp
from tui.screens import setup as setup_screen

FAKE_SMI = "#!/bin/sh\nprintf '0, NVIDIA H200\\n1, NVIDIA H200\\n'\n"


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    """A host whose nvidia-smi lists two GPUs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_visible_gpus_come_from_nvidia_smi_or_cuda_visible_devices(two_gpus, monkeypatch):
    assert visible_gpus() == [Gpu("0", "NVIDIA H200"), Gpu("1", "NVIDIA H200")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert visible_gpus() == [Gpu("1", "NVIDIA H200")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f3a1b2c-aaaa-bbbb")
    assert [gpu.entry for gpu in visible_gpus()] == ["GPU-8f3a1b2c-aaaa-bbbb"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == [] and visible_entries() == []


def test_no_nvidia_smi_means_no_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus() == []


@pytest.mark.parametrize("entry, label", [
    ("0", "gpu0"), ("3", "gpu3"),
    ("GPU-8F3A1B2C-1111-2222-3333-444455556666", "gpu-8f3a1b2c"),
    ("MIG-GPU-8f3a1b2c-1111-2222-3333-444455556666/1/0", "mig-8f3a1b2c/1/0"),
    ("MIG-5c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff", "mig-5c1d2e3f"),
])
def test_device_labels_are_short_and_stable(entry, label):
    assert device_label(entry) == label == device_label(entry)


def test_a_worker_is_labelled_by_its_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f3a1b2c-1111-2222-3333-444455556666")
    assert this_worker("NVIDIA H200").device == "gpu-8f3a1b2c"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert this_worker("NVIDIA H200").device == "gpu0" and this_worker("CPU").device == "cpu"


@pytest.mark.parametrize("workers, gpus, visible, devices, text", [
    (4, "", 2, ("0", "1"), "4 workers: GPU 0 x2, GPU 1 x2"),
    ("auto", "", 2, ("0", "1"), "2 workers: GPU 0, GPU 1"),
    ("auto", "", 0, (), "1 worker on the CPU"),
    (0, "0,0,1,1", 2, ("0", "0", "1", "1"), "4 workers: GPU 0 x2, GPU 1 x2"),
    (3, "", 0, (), "3 workers on the CPU"),
    (0, "", 2, (), "1 worker: GPU 0"),  # the default: one worker in this process, on its first GPU
])
def test_workers_spread_round_robin_over_the_visible_gpus(workers, gpus, visible, devices, text):
    plan = validate(StudyConfig(workers=workers, gpus=gpus)).worker_plan([Gpu(str(i)) for i in range(visible)])
    assert plan.gpus == devices and plan.text == text
    assert [plan.gpu_of(i) for i in range(plan.workers)] == [devices[i % len(devices)] if devices else None
                                                             for i in range(plan.workers)]


def test_a_plan_says_what_it_leaves_out(monkeypatch):
    from engine.gpus import plan_warnings

    visible = [Gpu("0"), Gpu("1")]
    plan = plan_workers(3, ["0", "0", "1", "7"], visible)
    assert plan_warnings(plan, ["0", "0", "1", "7"], visible) == [
        "GPU 7 not found here (a worker given one trains on the CPU)", "1 of the GPUs entries unused by 3 workers"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,-1,0")
    assert visible_entries() == ["1"]  # CUDA ignores what follows an invalid entry


def test_the_pool_gives_each_worker_its_gpu_with_memory_growth(tmp_path, monkeypatch):
    started = []

    class Popen:
        def __init__(self, args, env, **options):
            started.append(env)

    monkeypatch.setattr("engine.run.pool.subprocess.Popen", Popen)
    config = StudyConfig(out_dir=str(tmp_path), study_name="s", workers=4)
    plan = config.worker_plan([Gpu("0"), Gpu("1")])
    WorkerPool(config, n_workers=plan.workers, gpus=plan.gpus).start()
    assert [env["CUDA_VISIBLE_DEVICES"] for env in started] == ["0", "1", "0", "1"]
    assert all(env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
               for env in started)


def test_tensorflow_starts_with_memory_growth_everywhere():
    """engine's import sets it before anything can import TensorFlow (a study, retrain, the app's t)."""
    code = "import os, engine; print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])"
    env = {key: value for key, value in os.environ.items() if key != "TF_FORCE_GPU_ALLOW_GROWTH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "true"


@pytest.mark.parametrize("bad, message", [
    (dict(workers="many"), 'workers: expected a whole number or "auto"'),
    (dict(gpus="0,x"), "gpus: expected GPU indexes"),
    (dict(jit_compile="yes"), "jit_compile: 'yes' is not allowed; choose one of off, auto, on"),
    (dict(trial_timeout=-1), "trial_timeout: must be in 0.."),
    (dict(max_failures=-1), "max_failures: must be in 0.."),
])
def test_gpu_settings_are_checked(bad, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(StudyConfig(**bad))


async def test_the_form_shows_the_worker_plan(tmp_path, monkeypatch):
    monkeypatch.setattr(setup_screen, "visible_gpus", lambda: [Gpu("0", "NVIDIA H200"), Gpu("1", "NVIDIA H200")])
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=(140, 44)) as pilot:
        note = app.screen.query_one("#gpu-note")
        for _ in range(100):
            if "GPUs:" in str(note.render()):
                break
            await pilot.pause(0.05)
        assert "0: NVIDIA H200; 1: NVIDIA H200" in str(note.render())
        app.screen.query_one("#workers").value = "4"
        await pilot.pause()
        assert "Start runs 4 workers: GPU 0 x2, GPU 1 x2." in str(note.render())
        app.screen.query_one("#workers").value = ""
        app.screen.query_one("#gpus").value = "1,1"
        await pilot.pause()
        assert "Start runs 2 workers: GPU 1 x2." in str(note.render())


# --- out of memory, failures in a row, the trial time limit -----------------------------------------------
class OomTrainer(FakeTrainer):
    """Runs out of GPU memory whenever the model is too large (`too_large(params)`)."""

    def __init__(self, too_large, error=OutOfMemory) -> None:
        super().__init__()
        self.too_large, self.error = too_large, error

    def prepare(self, config):
        import dataclasses

        return dataclasses.replace(super().prepare(config), device="NVIDIA H200")  # a worker on a GPU

    def train(self, trial, params, emit, stop_now):
        if self.too_large(params):
            raise self.error("OOM when allocating tensor with shape[4096,4096]")
        return super().train(trial, params, emit, stop_now)


def one_knob_config(tmp_path, name: str, **changes) -> StudyConfig:
    config = fake_config(tmp_path, f"sqlite:///{tmp_path}/{name}.db", **changes)
    knob = {"first_layer_unit": Param("first_layer_unit", "int", low=1, high=100),
            "learning_rate": Param("learning_rate", "fixed", value=0.001), "layer_num": Param("layer_num", "fixed", value=1),
            "batch_size": Param("batch_size", "fixed", value=32)}
    config.space = [knob.get(param.name, param) for param in config.space]
    return config


def test_out_of_memory_trials_fail_without_ending_the_study_or_counting(tmp_path):
    config = one_knob_config(tmp_path, "oom", n_trials=6, sampler="random", max_failures=2)
    events = []
    finished = StudyRunner(config, emit=events.append, trainer=OomTrainer(lambda p: p["first_layer_unit"] > 30)).run()
    assert finished.ok and finished.reason.name == "FINISHED" and finished.n_complete == 6
    shown = [e for e in events if isinstance(e, TrialFinished)]
    oom = [e for e in shown if e.state == "FAIL"]
    assert len(oom) >= 3 and finished.n_failed == len(oom)  # more than max_failures, many in a row: not an end
    assert all(e.error.startswith("out of GPU memory: OOM when allocating") and e.params["first_layer_unit"] > 30 for e in oom)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    stored = [t for t in study.trials if t.user_attrs.get(schema.OUT_OF_MEMORY)]
    assert len(stored) == len(oom) and all(t.state.name == "PRUNED" and not t.intermediate_values for t in stored)
    assert sum(schema.counted(t) for t in study.trials) == 6


def test_the_sampler_is_steered_away_from_what_did_not_fit(tmp_path):
    """TPE ignores FAIL trials; told as pruned with no value, an out-of-memory trial ranks below every other, so
    TPE draws less from its region. The objective rises with units: without the steering TPE keeps going there."""
    too_large = lambda params: params["first_layer_unit"] > 60  # noqa: E731
    class Trainer(OomTrainer):
        def train(self, trial, params, emit, stop_now):
            if self.too_large(params):
                raise self.error("OOM when allocating tensor")
            return TrialResult(None, params["first_layer_unit"] / 100, 0.0)

    def oom_in_first_40(name: str, error: type) -> int:
        finished = []

        def emit(event):
            if isinstance(event, TrialFinished):
                finished.append(event.state)
                if len(finished) == 40:
                    runner.stop(StopRequest(now=True))

        runner = StudyRunner(one_knob_config(tmp_path, name, n_trials=1000, max_failures=0), emit=emit,
                             trainer=Trainer(too_large, error))
        runner.run()
        return finished[:40].count("FAIL")

    runs = {"steered": oom_in_first_40("steered", OutOfMemory), "plain": oom_in_first_40("plain", TrialFailed)}
    assert runs["steered"] < 0.75 * runs["plain"], runs  # measured: 15-18 of 40 against 30 (seeds 42, 1, 2)


def failing_then_fine(failures: int):
    count = iter(range(1000))

    class Trainer(FakeTrainer):
        def train(self, trial, params, emit, stop_now):
            if next(count) < failures:
                raise TrialFailed("broken")
            return super().train(trial, params, emit, stop_now)

    return Trainer()


@pytest.mark.parametrize("max_failures, ok, n_failed", [(3, False, 3), (0, True, 5)])
def test_max_failures_ends_the_study_or_never(tmp_path, max_failures, ok, n_failed):
    config = one_knob_config(tmp_path, f"fail{max_failures}", n_trials=2, max_failures=max_failures)
    finished = StudyRunner(config, trainer=failing_then_fine(5)).run()
    assert finished.ok is ok and finished.n_failed == n_failed
    assert finished.reason.name == ("FINISHED" if ok else "FAILURES")


def test_a_trial_past_trial_timeout_stops_as_fail_and_the_study_goes_on(tmp_path):
    config = one_knob_config(tmp_path, "slow", n_trials=1, trial_timeout=0.3, max_failures=0)
    slow = iter([True, False])

    class Trainer(FakeTrainer):
        def train(self, trial, params, emit, stop_now):
            if next(slow) and stop_now.wait(60):  # hangs until the time limit sets its stop
                raise TrialStopped("at epoch 1")
            return TrialResult(None, score(params), 0.0)

    events = []
    began = time.monotonic()
    finished = StudyRunner(config, emit=events.append, trainer=Trainer()).run()
    assert time.monotonic() - began < 30 and finished.ok and finished.n_complete == 1
    timed_out = [e for e in events if isinstance(e, TrialFinished) and e.state == "FAIL"]
    assert [e.error for e in timed_out] == ["timed out after 0.3 s (trial_timeout)"] and timed_out[0].broken


def test_a_stop_now_during_a_time_limited_trial_is_the_person_s(tmp_path):
    config = one_knob_config(tmp_path, "stop", n_trials=3, trial_timeout=60)
    runner = StudyRunner(config, trainer=FakeTrainer(epoch_seconds=30))
    thread = threading.Thread(target=runner.run)
    thread.start()
    study_db = tmp_path / "stop.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (runner.follower and runner._running):
        time.sleep(0.05)
    runner.stop(StopRequest(now=True))
    thread.join(30)
    assert not thread.is_alive() and study_db.exists()
    trial = optuna.load_study(study_name=config.name, storage=config.storage_url).trials[0]
    assert trial.user_attrs["error"].startswith("stopped by user")


# --- XLA policy and retrain's recipe (real Keras, tiny) ---------------------------------------------------
MODEL_FILE = '''
import keras

SPACE = {"units": {"kind": "fixed", "value": 8}, "epochs": {"kind": "fixed", "value": 1},
         "batch_size": {"kind": "fixed", "value": 64}}


def build_model(params, input_shape, num_classes):
    model = keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(params["units"], activation="relu"),
                              keras.layers.Dense(num_classes, activation="softmax")])
    COMPILE
    return model
'''


def model_file(tmp_path, compile_line: str = "") -> str:
    path = tmp_path / "own.py"
    path.write_text(MODEL_FILE.replace("COMPILE", compile_line))
    return str(path)


@pytest.mark.parametrize("policy, compile_line, jit, applied", [
    ("off", "", False, "off"),
    ("on", "", True, "on"),
    ("auto", "", None, None),  # Keras' auto: XLA only when a GPU is visible (the GPU box's answer differs)
    ("off", 'model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], '
            'jit_compile=True)', True, "model file: on"),
])
def test_the_xla_policy_applies_to_built_ins_and_model_files(tmp_path, policy, compile_line, jit, applied):
    from engine.keras.building import build_checked, xla_applied
    from engine.models import spec_for

    if jit is None:
        import tensorflow as tf

        jit = bool(tf.config.list_physical_devices("GPU"))
        applied = f"auto: {'on' if jit else 'off'}"
    for spec in (spec_for("mlp"), spec_for(model_file(tmp_path, compile_line))):
        params = {"layer_num": 1, "first_layer_unit": 8, "units": 8, "batch_size": 32}
        model = build_checked(spec, params, (28, 28, 1), 10, policy)
        if spec.builtin and compile_line:
            assert model.jit_compile is (policy == "on")  # a built-in always follows the study
            continue
        assert model.jit_compile is jit and xla_applied(model, policy) == applied


def test_retrain_follows_the_trial_s_recipe_and_refuses_a_changed_model_file(tmp_path):
    from engine.keras import Retrainer

    config = StudyConfig(model=model_file(tmp_path), dataset="mnist-5k", subset=600, n_trials=1, pruner="none",
                         patience=0, out_dir=str(tmp_path / "runs"), study_name="own")
    StudyRunner(config).run()
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    trial = study.trials[0]
    assert trial.user_attrs[schema.XLA] == "off"
    from engine.report import render_report
    assert "XLA (jit_compile) that applied: off (1 trial)." in render_report(study)
    finished = Retrainer(config.storage_url, config.name, out_dir=str(tmp_path / "final")).run()
    assert finished.epochs == trial.user_attrs["epochs_trained"] == 1
    card = (tmp_path / "final" / "final.md").read_text()
    assert "| epochs | 1 (as many as the trial trained) |" in card
    assert "| learning rate | constant, as in the trial |" in card and "| precision | float32 |" in card
    import hashlib
    digest = hashlib.sha256((tmp_path / "own.py").read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in card

    (tmp_path / "own.py").write_text(MODEL_FILE.replace("COMPILE", "") + "\n# edited\n")
    with pytest.raises(ConfigError, match=r"model: own.py changed since the study ran .* --force"):
        Retrainer(config.storage_url, config.name, out_dir=str(tmp_path / "again")).run()
    assert not (tmp_path / "again").exists()
    Retrainer(config.storage_url, config.name, out_dir=str(tmp_path / "forced"), force=True).run()
    forced = (tmp_path / "forced" / "final.md").read_text()
    edited = hashlib.sha256((tmp_path / "own.py").read_bytes()).hexdigest()
    assert f"sha256 `{edited}`" in forced and "retrained with --force" in forced and f"`{digest}`" in forced


def test_replayed_learning_rates_are_the_trial_s():
    import keras
    import numpy as np

    from engine.keras.callbacks import TrialCallback
    from engine.keras.retrain import replayed_schedule

    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy")
    seen = []
    probe = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(
        round(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)), 6)))
    x, y = np.zeros((8, 4), "float32"), np.zeros(8, "int64")
    recorder = TrialCallback(0, lambda event: None, threading.Event(), "loss")
    model.fit(x, y, epochs=3, verbose=0,
              callbacks=[*replayed_schedule(model, [0.001, 0.0005, 0.00025]), probe, recorder])
    assert seen == [0.001, 0.0005, 0.00025] == [round(rate, 6) for rate in recorder.learning_rates]


async def test_a_study_on_a_gpu_shows_each_trial_s_peak_gpu_memory(tmp_path):
    import dataclasses

    from tui_fakes import started, trial_events

    from tui.screens.run import RunScreen
    from tui.widgets.trial_table import TrialTable

    events = trial_events(0, "COMPLETE", 0.97, (0.9, 0.97))
    events[-1] = dataclasses.replace(events[-1], gpu_peak_mb=1234.5)
    script = [dataclasses.replace(started(), device="NVIDIA H200"), *events]
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(script=script, hold=True))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+r")
        for _ in range(200):
            if isinstance(app.screen, RunScreen) and app.screen.query_one(TrialTable).row_count == 1:
                break
            await pilot.pause(0.05)
        table = app.screen.query_one(TrialTable)
        labels = [column.label.plain for column in table.columns.values()]
        assert "GPU MB" in labels and table.get_row_at(0)[labels.index("GPU MB")] == "1234"
        app.screen.source.stop(StopRequest(now=True))


def test_tensorflow_s_out_of_memory_error_becomes_an_out_of_memory_trial(tmp_path):
    """The Keras trainer names TensorFlow's ResourceExhaustedError (raised here by a model file, as a GPU would in
    its first batch) out of GPU memory; the study goes on with the models that fit."""
    path = tmp_path / "big.py"
    path.write_text('''
import keras
import tensorflow as tf

SPACE = {"units": {"kind": "categorical", "choices": [8, 4096]}, "epochs": {"kind": "fixed", "value": 1},
         "batch_size": {"kind": "fixed", "value": 64}}


def build_model(params, input_shape, num_classes):
    if params["units"] > 1000:
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[784,4096]")
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(params["units"], activation="relu"),
                             keras.layers.Dense(num_classes, activation="softmax")])
''')
    config = StudyConfig(model=str(path), dataset="mnist-5k", subset=600, n_trials=2, sampler="random", seed=3,
                         max_failures=1, out_dir=str(tmp_path / "runs"), study_name="big", pruner="none")
    events = []
    runner = StudyRunner(config, emit=events.append)
    finished = runner.run()
    shown = [e for e in events if isinstance(e, TrialFinished)]
    assert finished.ok and finished.n_complete == 2, [e.error for e in shown]
    oom = [e for e in shown if e.state == "FAIL"]
    assert oom and all(e.params["units"] == 4096 and e.error.startswith(("out of memory: OOM when allocating",
                                                                        "out of GPU memory: OOM when allocating"))
                       for e in oom)  # more than max_failures = 1 of them would have ended the study
    assert {e.params["units"] for e in shown if e.state == "COMPLETE"} == {8}


def test_a_study_where_nothing_fits_ends_saying_so(tmp_path):
    config = one_knob_config(tmp_path, "full", n_trials=3, max_failures=3)
    finished = StudyRunner(config, trainer=OomTrainer(lambda params: True)).run()
    assert not finished.ok and finished.reason.name == "FAILURES" and finished.n_failed == 10
    assert "10 trials in a row ran out of GPU memory: no model of the space fits" in finished.detail


def test_retrain_trains_as_the_trial_did_after_a_resume_changed_the_settings():
    from optuna.trial import create_trial

    from engine.keras.retrain import trial_settings

    config = StudyConfig(mixed_precision=True, jit_compile="on")  # the study's config, as a later resume left it
    trial = create_trial(value=0.9, user_attrs={schema.MIXED_PRECISION: False, schema.XLA: "auto: off"})
    assert trial_settings(trial, config) == (False, "off")
    assert trial_settings(create_trial(value=0.9), config) == (True, "on")  # recorded before trials recorded them
    assert trial_settings(create_trial(value=0.9, user_attrs={schema.XLA: "model file: on"}), config)[1] == "on"


def test_a_worker_whose_trial_another_process_failed_goes_on(tmp_path):
    """A view on a loaded machine may take a live worker's late lease for a dead one and fail its trial: the
    worker cannot tell it, and goes on instead of crashing (the trial is retried)."""
    from engine.store import fail_trial_now

    config = one_knob_config(tmp_path, "reaped", n_trials=2)
    reaped = []

    class Trainer(FakeTrainer):
        def train(self, trial, params, emit, stop_now):
            if not reaped:
                reaped.append(trial.number)
                fail_trial_now(trial.study, trial._trial_id, "its worker stopped renewing the trial's lease")
                trial.set_user_attr = lambda key, value: None  # the worker's later writes fail like Optuna's would
            return TrialResult(None, score(params), 0.0)

    finished = StudyRunner(config, trainer=Trainer()).run()
    assert finished.ok and finished.n_complete == 2 and reaped == [0]
