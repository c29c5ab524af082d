"""StudyRunner end to end on tiny real studies: events, best, pruning, stop, failures, resume."""

import math
import threading

import numpy as np
import optuna
import pytest
from conftest import Recorder, fix, tiny_config
from fakes import FakeTrainer, wait_until

from engine import (
    BestChanged,
    EpochEnded,
    ImportancesUpdated,
    Objective,
    StopReason,
    StopRequest,
    StudyFinished,
    StudyRunner,
    StudyStarted,
    TrialFailed,
    TrialFinished,
    TrialStarted,
)
from engine.keras.callbacks import TrialCallback
from engine.keras.device import device_name
from engine.keras.errors import describe_error
from engine.report import render_report
from engine.run import runner as runner_module
from engine.store import open_storage, reading_study, schema


def test_event_order_best_importances_and_kept_models(finished_study):
    config, recorder, result = finished_study
    names = recorder.names()
    assert names[0] == "StudyStarted" and names[-1] == "StudyFinished"
    started = recorder.of(StudyStarted)[0]
    # the device is whatever this machine trains on ("CPU" here, a GPU's name on the GPU box)
    assert (started.n_train, started.n_test, started.n_finished, started.device) == (600, 1000, 0, device_name())
    assert started.param_names == ("layer_num", "first_layer_unit", "batch_size")
    # every trial: TrialStarted, then one EpochEnded per epoch, then TrialFinished
    for number in range(4):
        own = [type(e).__name__ for e in recorder.events if getattr(e, "number", None) == number
               and not isinstance(e, BestChanged)]
        assert own == ["TrialStarted", "EpochEnded", "TrialFinished"]
    finished = recorder.of(TrialFinished)
    assert [t.state for t in finished] == ["COMPLETE"] * 4
    assert all(0 < t.value <= 1 and 0 < t.test_accuracy <= 1 and t.curve == (t.val_accuracy,) for t in finished)
    best = max(finished, key=lambda t: t.value)
    assert recorder.of(BestChanged)[-1].number == best.number
    assert [b.value for b in recorder.of(BestChanged)] == sorted(b.value for b in recorder.of(BestChanged))
    importances = recorder.of(ImportancesUpdated)
    assert len(importances) == 2 and set(importances[-1].importances) <= set(started.param_names)
    assert result == StudyFinished(StopReason.FINISHED, True, 4, 0, 0, "finished 4 trials")
    kept = sorted(p.name for p in (config.run_dir / "models").iterdir())
    top2 = sorted(finished, key=lambda t: t.value, reverse=True)[:2]
    assert kept == sorted(f"trial-{t.number:04d}.keras" for t in top2)
    log_text = (config.run_dir / "tunedeck.log").read_text()
    assert "Trial 3 finished" in log_text


def test_test_accuracy_objective(tmp_path):
    recorder = Recorder()
    StudyRunner(tiny_config(tmp_path, n_trials=1, objective="test_accuracy"), emit=recorder).run()
    trial = recorder.of(TrialFinished)[0]
    assert trial.value == trial.test_accuracy != trial.val_accuracy


def test_aggressive_pruner_prunes(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "make_pruner", lambda config: optuna.pruners.ThresholdPruner(lower=0.999))
    config = fix(tiny_config(tmp_path, n_trials=2), epochs=3)
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder).run()
    finished = recorder.of(TrialFinished)
    assert [t.state for t in finished] == ["PRUNED", "PRUNED"]
    assert all(t.epochs_trained == 1 and len(t.curve) == 1 for t in finished)  # pruned after epoch 1 of 3
    assert (result.n_pruned, result.ok) == (2, True)


def test_stop_now_ends_within_one_batch(tmp_path):
    config = fix(tiny_config(tmp_path, n_trials=5), epochs=50, batch_size=8)
    recorder = Recorder()
    runner = StudyRunner(config)
    batches_after_stop = []

    def emit(event):
        recorder(event)
        if isinstance(event, EpochEnded) and event.epoch == 1:
            runner.stop(StopRequest(now=True))

    runner.emit = emit
    original = TrialCallback.on_train_batch_begin

    def counting(self, batch, logs=None):
        if runner.latch.now.is_set():
            batches_after_stop.append(batch)
        return original(self, batch, logs)

    TrialCallback.on_train_batch_begin = counting
    try:
        result = runner.run()
    finally:
        TrialCallback.on_train_batch_begin = original
    assert batches_after_stop == [0]  # the first batch after the request raised; none trained
    trial = recorder.of(TrialFinished)[0]
    assert (trial.state, trial.epochs_trained) == ("FAIL", 2)
    assert trial.error == "stopped by user at epoch 3"
    assert len(recorder.of(TrialStarted)) == 1
    assert (result.reason, result.detail, result.ok) == (StopReason.STOPPED, "stopped by user", True)


def test_stop_from_another_thread_after_the_running_trial(tmp_path):
    config = fix(tiny_config(tmp_path, n_trials=10), epochs=2)
    recorder = Recorder()
    runner = StudyRunner(config, emit=recorder)
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_until(lambda: recorder.of(EpochEnded), 120)
    runner.stop()
    thread.join(120)
    assert not thread.is_alive()
    finished = recorder.of(TrialFinished)
    assert [t.state for t in finished] == ["COMPLETE"]  # the running trial finished; no new one started
    assert (recorder.of(StudyFinished)[0].reason, recorder.of(StudyFinished)[0].text) == (StopReason.STOPPED,
                                                                                           "stopped by user")


def test_three_failures_in_a_row_end_the_study(tmp_path):
    class Failing(FakeTrainer):
        def train(self, trial, params, emit, stop_now):
            raise TrialFailed("loss became nan at epoch 1")

    config = tiny_config(tmp_path, n_trials=10)
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder, trainer=Failing()).run()
    failed = recorder.of(TrialFinished)
    assert [t.state for t in failed] == ["FAIL"] * 3
    assert all(t.error for t in failed)
    assert not result.ok and result.reason == StopReason.FAILURES and result.text.startswith("3 trials failed in a row; last error: ")


def test_nan_loss_and_out_of_memory_are_named():
    callback = TrialCallback(0, lambda event: None, threading.Event())
    with pytest.raises(TrialFailed, match="loss became nan at epoch 2"):
        callback.on_epoch_end(1, {"loss": math.nan, "val_accuracy": 0.1})

    class ResourceExhaustedError(Exception):
        pass

    assert describe_error(ResourceExhaustedError("OOM when allocating tensor")).startswith("out of memory: ")
    assert describe_error(ValueError("bad shape\nmore")) == "ValueError: bad shape"


def test_resumed_study_draws_new_parameters(tmp_path):
    config = tiny_config(tmp_path, n_trials=1, pruner="none")
    config.param("first_layer_unit").choices = [8, 12, 16, 20]
    drawn = []
    for n_trials in (1, 2, 3):  # one new trial per run, as a stopped and resumed study gets
        config.n_trials = n_trials
        recorder = Recorder()
        StudyRunner(config, emit=recorder).run()
        drawn.append(tuple(sorted(recorder.of(TrialStarted)[0].params.items())))
    assert len(set(drawn)) > 1  # a sampler seeded as before would draw trial 0's parameters each time


def test_resume_keeps_trials_and_retries_a_dead_workers_trial(tmp_path):
    config = tiny_config(tmp_path, n_trials=2, heartbeat=1)
    StudyRunner(config).run()
    # A trial left RUNNING by a worker killed with kill -9: it beat once, then never again.
    storage = open_storage(config.storage_url, heartbeat=1)
    study = optuna.load_study(study_name=config.name, storage=storage)
    trial = study.ask()
    trial.suggest_int("layer_num", 2, 4)
    storage.record_heartbeat(trial._trial_id)
    config.n_trials = 3
    recorder = Recorder()
    result = StudyRunner(config, emit=recorder, poll_seconds=0.2).run()
    assert recorder.of(StudyStarted)[0].n_finished == 2
    finished = [(t.number, t.state) for t in recorder.of(TrialFinished)]
    assert finished == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "FAIL"), (3, "COMPLETE")]
    assert recorder.of(TrialFinished)[2].error == schema.NO_HEARTBEAT
    # trial 2 was seen running (another worker's, as far as this run knows); 3 is the retry it ran
    assert [e.number for e in recorder.of(TrialStarted)] == [2, 3]
    retry = optuna.load_study(study_name=config.name, storage=config.storage_url).trials[3]
    assert retry.system_attrs["failed_trial"] == 2 and retry.params["layer_num"] == trial.params["layer_num"]
    assert (result.n_complete, result.n_failed) == (3, 1)
    again = Recorder()
    assert StudyRunner(config, emit=again).run().text.startswith("the study already has 3 finished trials")
    assert not again.of(TrialStarted)


def test_early_stopping_ends_on_a_plateau_and_keeps_the_last_epoch(tmp_path):
    config = fix(tiny_config(tmp_path, n_trials=1, patience=1), first_layer_unit=8)
    epochs = config.param("epochs")
    epochs.kind, epochs.low, epochs.high, epochs.step = "int", 5, 40, 5
    recorder = Recorder()
    StudyRunner(config, emit=recorder).run()
    assert "epochs" not in recorder.of(StudyStarted)[0].param_names  # a ceiling, not searched
    assert recorder.of(TrialStarted)[0].epochs == 40
    trial = recorder.of(TrialFinished)[0]
    assert "epochs" not in trial.params
    assert trial.epochs_trained < 40  # the trial stopped on a plateau
    with reading_study(config.storage_url, config.name) as study:
        summary = render_report(study)
    assert "`epochs` was a ceiling, not searched; each trial trained up to 40 epochs" in summary
    assert "The learning rate was halved after 3 epochs without a better value" in summary
    assert f"{trial.epochs_trained} epochs trained." in summary
    assert "Not available: fewer than 3 complete trials." in summary
    assert trial.value == trial.val_accuracy == trial.curve[-1]  # the last epoch's weights were kept
    assert max(trial.curve[:-1]) >= trial.curve[-1]  # it stopped because the last epoch was no better


def test_seed_protocol_trains_every_epoch(tmp_path):
    config = fix(tiny_config(tmp_path, n_trials=1, patience=1, objective="test_accuracy", pruner="none"),
                 epochs=6, first_layer_unit=8)
    assert config.seed_protocol and config.early_stopping_patience == 0 and config.lr_plateau_patience == 0
    recorder = Recorder()
    StudyRunner(config, emit=recorder).run()
    assert recorder.of(TrialFinished)[0].epochs_trained == 6


def test_mixed_precision_keeps_float32_outputs(tmp_path):
    import keras

    from engine.keras.builders import build_cnn

    config = tiny_config(tmp_path, model="cnn", n_trials=1, mixed_precision=True)
    recorder = Recorder()
    StudyRunner(config, emit=recorder).run()
    try:
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert recorder.of(TrialFinished)[0].state == "COMPLETE"
        model = build_cnn({"k": 3, "layer_num": 1, "first_layer_unit": 4}, (28, 28, 1), 10)
        assert model.layers[0].compute_dtype == "float16" and model.layers[0].variable_dtype == "float32"
        assert model.layers[-1].compute_dtype == "float32"
        assert model(np.zeros((1, 28, 28, 1), dtype="float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_the_learning_rate_is_halved_on_a_plateau_unless_the_model_has_its_own_schedule():
    import keras

    from engine.keras.callbacks import LearningRatePlateau

    def model(learning_rate) -> keras.Model:
        built = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
        built.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
        return built

    plain = model(1e-3)
    schedule = LearningRatePlateau(Objective("val_accuracy"), patience=2)
    schedule.set_model(plain)
    schedule.on_train_begin()
    rates = []
    for epoch, val in enumerate([0.5, 0.6, 0.6, 0.55, 0.7, 0.6, 0.6]):
        logs = {"val_accuracy": val}
        schedule.on_epoch_end(epoch, logs)
        assert logs == {"val_accuracy": val}  # the trial's own logs are left as they were
        rates.append(float(plain.optimizer.learning_rate))
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4])

    decaying = model(keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.9))
    schedule = LearningRatePlateau(Objective("val_accuracy"), patience=1)
    schedule.set_model(decaying)
    schedule.on_train_begin()
    for epoch in range(3):
        schedule.on_epoch_end(epoch, {"val_accuracy": 0.5})
    assert isinstance(decaying.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule)
