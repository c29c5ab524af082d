"""The final model: a study's chosen trial trained once more on all the training data, then a model card.

A trial trained on 90% of the training set (the rest validated it, epoch by epoch). Its final model trains on
all of it (training + validation) with the recipe the study validated: as many epochs as the trial trained (it
kept its last epoch's weights; early stopping ended it there), the learning rate of each of its epochs (the
plateau schedule, replayed: there is no validation set to watch), its precision and its XLA setting. It is
scored once on the test set and written as final.keras with final.md beside it. A model file that changed
since the study (its sha256) is refused unless forced, and the card says so.
"""

from __future__ import annotations

import datetime
import math
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from engine.contract import Event, Objective, RetrainEpoch, RetrainFinished, StopRequest
from engine.errors import ConfigError, StopNow, TrialStopped
from engine.files import write_text_atomically
from engine.keras.saving import save_atomically
from engine.models import spec_for
from engine.report import number_text, table
from engine.signals import interrupts_held
from engine.store import reading_study, schema, upload_to_study
from engine.study import StudyConfig, stored_config


@dataclass(frozen=True)
class Recipe:
    """How the final model was trained, as its card says it."""

    epochs: int
    mixed_precision: bool
    xla: str  # engine.keras.building.xla_applied
    schedule_replayed: bool  # the trial's per-epoch learning rates (its plateau halvings)
    sha256: str = ""  # the model file's, as retrained ("" for a built-in)
    forced: bool = False  # the model file had changed since the study; retrained with --force

    def rows(self) -> list[list[Any]]:
        return [["epochs", f"{self.epochs} (as many as the trial trained)"],
                ["learning rate", "the trial's per-epoch rates, replayed" if self.schedule_replayed else
                 "constant, as in the trial"],
                ["precision", "mixed float16" if self.mixed_precision else "float32"],
                ["XLA (jit_compile)", self.xla]]


def chosen_trial(trials: list[FrozenTrial], number: int | None, goal: Objective) -> FrozenTrial:
    """Trial `number` (it must be complete), or the study's best."""
    if number is None:
        best = goal.best((t for t in trials if t.state == TrialState.COMPLETE), lambda t: t.value)
        if best is None:
            raise ConfigError("trial: the study has no complete trial to retrain")
        return best
    if not 0 <= number < len(trials):
        raise ConfigError(f"trial: no trial {number}; the study has trials 0..{len(trials) - 1}")
    if trials[number].state != TrialState.COMPLETE:
        raise ConfigError(f"trial: trial {number} is {trials[number].state.name}; only a complete trial is retrained")
    return trials[number]


def trained_epochs(trial: FrozenTrial) -> int:
    """How many epochs the trial trained (early stopping may have ended it before its `epochs`): its model is the
    last epoch's, so the final model trains as many."""
    trained = trial.user_attrs.get(schema.EPOCHS_TRAINED) or len(schema.trial_curve(trial))
    if trained:
        return int(trained)
    return int(trial.params.get("epochs", trial.user_attrs.get(schema.FIXED_PARAMS, {}).get("epochs", 1)))


def trial_settings(trial: FrozenTrial, config: StudyConfig) -> tuple[bool, str]:
    """The precision and XLA setting the trial trained with (a resume may have changed the study's since); the
    study's config for a trial that recorded none."""
    mixed = trial.user_attrs.get(schema.MIXED_PRECISION, config.mixed_precision)
    xla = trial.user_attrs.get(schema.XLA, "")
    jit = {"off": "off", "on": "on", "auto: on": "on", "auto: off": "off"}.get(xla, config.jit_compile)
    return bool(mixed), jit


def checked_model_file(config: StudyConfig, recorded: dict[str, Any], force: bool) -> str:
    """The model file's sha256 now, refused (a ConfigError) when it is not the one the study recorded unless
    `force`; "" for a built-in model."""
    spec = spec_for(config.model)
    if spec.builtin:
        return ""
    was = recorded.get("sha256", "")
    if was and spec.digest != was and not force:
        raise ConfigError(f"model: {Path(spec.path).name} changed since the study ran (sha256 {was[:12]}… recorded, "
                          f"{spec.digest[:12]}… now); restore it, or retrain the edited file with --force")
    return spec.digest


class Retrainer:
    """Retrains one trial, as a source (engine.contract.Source): `run()` blocks (call it from a thread); `stop()`
    and `close()` end it at the next batch, and then nothing is written."""

    trains_here = True
    owns_workers = False
    can_retrain = False

    def __init__(self, storage_url: str, study_name: str, trial: int | None = None, out_dir: str | None = None,
                 emit: Callable[[Event], None] | None = None, force: bool = False) -> None:
        self.storage_url, self.study_name, self.trial_number = storage_url, study_name, trial
        self.out_dir = out_dir
        self.force = force  # retrain a model file that changed since the study (the card says so)
        self.emit = emit or (lambda event: None)
        self._stop = threading.Event()

    def stop(self, request: StopRequest | None = None) -> None:
        """Any request stops a retraining at the next batch: it is one training, with nothing to finish."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()

    def run(self) -> RetrainFinished:
        with reading_study(self.storage_url, self.study_name) as study:
            attrs = study.user_attrs
            if schema.CONFIG not in attrs:
                raise ConfigError(f"study-name: {self.study_name!r} is not a tunedeck study (no stored config)")
            config = stored_config(attrs[schema.CONFIG])
            trial = chosen_trial(study.get_trials(deepcopy=False), self.trial_number, config.goal)
        digest = checked_model_file(config, attrs.get(schema.MODEL, {}), self.force)
        epochs = trained_epochs(trial)
        params = {**trial.user_attrs.get(schema.FIXED_PARAMS, {}), **trial.params, "epochs": epochs}
        folder = Path(self.out_dir) if self.out_dir else config.run_dir
        model, test_accuracy, data = self._train(config, trial, params)
        model_path = folder / "final.keras"
        save_atomically(model, model_path)
        forced = self.force and digest != attrs.get(schema.MODEL, {}).get("sha256", digest)
        recipe = Recipe(epochs, data.pop("mixed"), data.pop("xla"),
                        bool(trial.user_attrs.get(schema.LEARNING_RATES)), digest, forced)
        card = write_text_atomically(folder / "final.md", model_card(self.study_name, config, trial, params,
                                                                       test_accuracy, data, attrs, recipe))
        self._upload(model_path, card)
        finished = RetrainFinished(trial.number, test_accuracy, trial.user_attrs.get(schema.TEST_ACCURACY), epochs,
                                   str(model_path), str(card))
        self.emit(finished)
        return finished

    def _upload(self, *paths: Path) -> None:
        """final.keras and final.md, also in the study's artifact store (for `tunedeck get` on any machine);
        optional: the files are written, and a store that fails is logged."""
        with reading_study(self.storage_url, self.study_name) as study:
            upload_to_study(study, list(paths))

    def _train(self, config: StudyConfig, trial: FrozenTrial, params: dict[str, Any]):
        with interrupts_held():  # TensorFlow: imported only when a model is retrained
            import keras

            from engine.keras.building import build_checked, xla_applied
            from engine.keras.datasets import load_dataset
            from engine.keras.device import set_mixed_precision, start_tensorflow
            from engine.keras.training import freeze_imports

        start_tensorflow()  # memory growth first: a retrain beside running workers takes only what it uses
        freeze_imports()
        data = load_dataset(config.dataset, config.subset)
        x_all = data.x_train if data.x_val is None else np.concatenate([data.x_train, data.x_val])
        y_all = data.y_train if data.y_val is None else np.concatenate([data.y_train, data.y_val])
        keras.backend.clear_session(free_memory=False)
        mixed, jit = trial_settings(trial, config)
        set_mixed_precision(mixed)  # after clear_session, as a trial does
        keras.utils.set_random_seed((config.seed + trial.number) % 2**32)
        model = build_checked(spec_for(config.model), params, data.input_shape, data.num_classes, jit)
        replay = replayed_schedule(model, trial.user_attrs.get(schema.LEARNING_RATES) or [])
        curve: list[float] = []
        retrainer = self

        class Progress(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
                if retrainer._stop.is_set():
                    raise StopNow()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                logs = logs or {}
                curve.append(float(logs.get("accuracy", math.nan)))
                retrainer.emit(RetrainEpoch(trial.number, epoch, params["epochs"], float(logs.get("loss", math.nan)),
                                            curve[-1], tuple(curve)))

        try:
            model.fit(x_all, y_all, batch_size=params["batch_size"], epochs=params["epochs"], verbose=0,
                      callbacks=[Progress(), *replay])
        except StopNow:
            raise TrialStopped(f"retraining stopped at epoch {len(curve) + 1}; nothing was written") from None
        metrics = model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0, return_dict=True)
        return model, float(metrics["accuracy"]), data.describe() | {"n_fit": len(y_all), "mixed": mixed,
                                                                      "xla": xla_applied(model, jit)}


def replayed_schedule(model: Any, rates: list[float]) -> list[Any]:
    """A callback that sets each epoch's learning rate to the trial's (its plateau halvings, replayed: the final
    model has no validation set to watch); none when the trial kept one rate or its optimizer follows a schedule
    of its own."""
    import keras

    own = isinstance(getattr(model.optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule)
    if not rates or own:
        return []
    return [keras.callbacks.LearningRateScheduler(lambda epoch, rate: rates[epoch] if epoch < len(rates) else rate)]


def input_section(data: dict[str, Any]) -> list[str]:
    """How to feed the model what it was trained on: the scaling, the shape (a channel axis), the labels, and a
    prediction example that works on raw data (checked by the tests, which run it)."""
    shape = tuple(data["input_shape"])
    if len(shape) == 3:
        height, width, channels = shape
        rules = [f"- Images of shape {height}x{width}x{channels} (height, width, channels), float32.",
                 "- Pixels scaled to 0..1: integer pixels 0..255 were divided by 255 (float pixels were used as "
                 "they were).",
                 f"- A batch of shape (N, {height}, {width}) needs the channel axis added: (N, {height}, {width}, "
                 f"{channels})."]
        prepare = [f'x = np.asarray(images, dtype="float32").reshape((-1, {height}, {width}, {channels}))',
                   "x = x / 255.0 if x.max() > 1 else x  # 0..255 pixels -> 0..1, as in training"]
    else:
        rules = [f"- A table of {shape[0]} features per example, float32, used as they were (no scaling)."]
        prepare = [f'x = np.asarray(features, dtype="float32").reshape((-1, {shape[0]}))']
    rules.append(f"- The output is {data['num_classes']} class probabilities; the class is its index 0.."
                 f"{data['num_classes'] - 1}, the same integers as the training labels.")
    example = ["```python", "import keras", "import numpy as np", "", 'model = keras.models.load_model("final.keras")',
               *prepare, "classes = np.argmax(model.predict(x, verbose=0), axis=1)", "```"]
    return ["## Input", "", *rules, "", *example, ""]


def model_card(study_name: str, config: StudyConfig, trial: FrozenTrial, params: dict[str, Any], test_accuracy: float,
               data: dict[str, Any], attrs: dict[str, Any], recipe: Recipe) -> str:
    """final.md: what the final model is, what it was trained on, how it scored, and where it came from."""
    import keras
    import tensorflow as tf

    from engine.keras.device import device_name

    model = attrs.get(schema.MODEL, {})
    model_name = f"the built-in {config.model.upper()}"
    if recipe.sha256:  # the hash of the file as retrained, never only the study's
        model_name = f"model file `{Path(model.get('path', config.model)).name}` (sha256 `{recipe.sha256}`)"
        if recipe.forced:
            model_name += (f", retrained with --force although it changed since the study ran (the study recorded "
                           f"sha256 `{model.get('sha256')}`)")
    rows = [["study", study_name], ["from trial", trial.number],
            ["trial's val accuracy", number_text(trial.user_attrs.get(schema.VAL_ACCURACY))],
            ["trial's test accuracy (trained on the training part only)",
             number_text(trial.user_attrs.get(schema.TEST_ACCURACY))],
            ["final test accuracy (trained on all training data)", number_text(test_accuracy)]]
    data_rows = [["dataset", data["name"]], ["kind", data["kind"]], ["classes", data["num_classes"]],
                 ["trained on", f"{data['n_fit']} examples (training + validation)"], ["tested on", data["n_test"]]]
    env = [["date", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")],
           ["python", platform.python_version()], ["tensorflow", tf.__version__], ["keras", keras.__version__],
           ["device", device_name()], ["host", platform.node()]]
    return "\n".join([
        f"# Final model of study `{study_name}`", "",
        f"`final.keras`: {model_name}, trained once more with trial {trial.number}'s parameters on all the "
        f"training data. Load it with `keras.models.load_model(\"final.keras\")`; it takes inputs of shape "
        f"{tuple(data['input_shape'])} and gives {data['num_classes']} class probabilities.", "",
        "## Result", "", table(["measure", "value"], rows), "",
        "## Recipe", "", table(["item", "value"], recipe.rows()), "",
        *input_section(data),
        "## Parameters", "", table(["parameter", "value"], [[k, v] for k, v in params.items()]), "",
        "## Data", "", table(["item", "value"], data_rows), "",
        "## Versions and device", "", table(["item", "value"], env), ""])
