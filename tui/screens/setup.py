"""The setup screen: model, dataset, search space and study settings; load/save TOML; start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Header, Input, Label, Select, Static

from engine import StudyConfig
from engine.data import BUILTIN, availability
from engine.errors import plain
from engine.gpus import Gpu, cpu_cores, plan_warnings, plan_workers, visible_gpus
from engine.models import BUILTIN_SPECS, is_model_file, spec_for
from engine.store import mask_url, url_from_env
from engine.study import FIELD_HELP, JIT_COMPILE, OBJECTIVES, PRUNERS, SAMPLERS
from tui.form import check_form, param_fields
from tui.guard import guarded
from tui.screens.modals import ConfirmScreen
from tui.screens.setup_files import ConfigFileActions, show_error
from tui.widgets.data_summary import DataSummary
from tui.widgets.footer import PriorityFooter
from tui.widgets.param_row import ParamRow

PATH_OPTION = "path"
FILE_OPTION = "file"
MODEL_OPTIONS = [(name.upper(), name) for name in BUILTIN_SPECS] + [("model file…", FILE_OPTION)]


def dataset_options() -> list[tuple[str, str]]:
    """The built-in datasets with their availability, then a local path."""
    return [(f"{name}  ({availability(name)})", name) for name in BUILTIN] + [("local file or IDX dir…", PATH_OPTION)]


def field(label: str, widget, key: str) -> Vertical:
    """A labelled form field with its inline error line (the config file's help as tooltip)."""
    widget.tooltip = FIELD_HELP.get(key)
    return Vertical(Label(label), widget, Static("", id=f"err-{key}", classes="error"), classes="field",
                    id=f"field-{key}")


def has_password(url: str) -> bool:
    """Whether a storage URL carries a password (its field then hides what is typed)."""
    return mask_url(url) != url


def storage_placeholder() -> str:
    """What an empty storage field means: the environment's URL (masked), else SQLite."""
    from_env = url_from_env()
    return f"$TUNEDECK_STORAGE: {mask_url(from_env)}" if from_env else "SQLite in the output dir"


class SetupScreen(ConfigFileActions, Screen):
    """Every setting of a study, editable from the keyboard; Start is refused while a field is invalid."""

    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="setup.start", priority=True),
        Binding("ctrl+o", "load", "Load config", id="setup.load"),
        Binding("ctrl+s", "save", "Save config", id="setup.save"),
        Binding("ctrl+d", "defaults", "Default space", id="setup.defaults", priority=True,
                tooltip="Reset the search space to the model's defaults (asks when it was edited)"),
    ]

    def __init__(self, config: StudyConfig, config_path: str = "tunedeck.toml") -> None:
        super().__init__()
        self.config = config
        self.config_path = config_path  # the file the app was opened with, or where the form is saved
        self.errors: dict[str, str] = {}
        self.model_state = (config.model, "") if is_model_file(config.model) else ("", "")  # (file, its error)
        self.spaces: dict[str, dict[str, dict[str, Any]]] = {}  # each model's space as the user left it
        self.shown_model = str(Path(config.model).expanduser().absolute()) if is_model_file(config.model) \
            else config.model  # whose space the rows are
        self.pristine: tuple | None = None  # the form as loaded or saved: edits since are asked about

    def compose(self) -> ComposeResult:
        c = self.config
        is_path = c.dataset not in BUILTIN
        is_file = is_model_file(c.model)
        yield Header()
        with VerticalScroll(id="form"):
            yield Label("Model and data", classes="section")
            with Horizontal(classes="fields"):
                yield field("Model", Select(MODEL_OPTIONS, value=FILE_OPTION if is_file else c.model,
                                            allow_blank=False, compact=True, id="model"), "model")
                yield field("Model file (.py)", Input(c.model if is_file else "", compact=True, id="model_path",
                                                      placeholder="~/models/my_model.py"), "model_path")
                yield field("Dataset", Select(dataset_options(), value=PATH_OPTION if is_path else c.dataset,
                                              allow_blank=False, compact=True, id="dataset"), "dataset")
                yield field("Path (.npz or IDX dir)", Input(c.dataset if is_path else "", compact=True, id="path",
                                                           placeholder="~/data/mnist.npz"), "path")
                yield field("Subset (0 = all)", Input(str(c.subset or ""), type="integer", compact=True, id="subset",
                                                      placeholder="all", valid_empty=True), "subset")
            yield DataSummary(id="data-info")
            yield Label("Search space", classes="section")
            yield Vertical(*[ParamRow(param) for param in c.space], id="space")
            yield Label("Study", classes="section")
            with Horizontal(classes="fields"):
                yield field("Trials", Input(str(c.n_trials), type="integer", compact=True, id="n_trials"), "n_trials")
                yield field("Timeout (s)", Input(str(c.timeout or ""), type="number", compact=True, id="timeout",
                                                 placeholder="none", valid_empty=True), "timeout")
                yield field("Sampler", Select([(s, s) for s in SAMPLERS], value=c.sampler, allow_blank=False,
                                              compact=True, id="sampler"), "sampler")
                yield field("Seed", Input(str(c.seed), type="integer", compact=True, id="seed"), "seed")
            with Horizontal(classes="fields"):
                yield field("Pruner", Select([(p, p) for p in PRUNERS], value=c.pruner, allow_blank=False, compact=True,
                                             id="pruner"), "pruner")
                yield field("Objective", Select([(o, o) for o in OBJECTIVES], value=c.objective,
                                                allow_blank=False, compact=True, id="objective"), "objective")
                yield field("Early stop after", Input(str(c.patience), type="integer", compact=True, id="patience",
                                                      placeholder="epochs; 0 = off"), "patience")
                yield field("Halve LR after", Input(str(c.lr_patience), type="integer", compact=True, id="lr_patience",
                                                    placeholder="epochs; 0 = off"), "lr_patience")
            with Horizontal(classes="fields"):
                yield field("Study name", Input(c.study_name, compact=True, id="study_name",
                                                placeholder="<model>-<dataset>"), "study_name")
                yield field("Storage URL", Input(c.storage, compact=True, id="storage",
                                                 password=has_password(c.storage), placeholder=storage_placeholder()),
                            "storage")
                yield field("Output dir", Input(c.out_dir, compact=True, id="out_dir"), "out_dir")
            with Horizontal(classes="fields"):
                yield field("Artifacts (models for any machine)", Input(c.artifacts, compact=True, id="artifacts",
                                                                         placeholder="beside the storage file"),
                            "artifacts")
                yield field("Warm start from", Input(c.warm_start, compact=True, id="warm_start",
                                                     placeholder="another study's name"), "warm_start")
            yield Label("Workers", classes="section")
            with Horizontal(classes="fields"):
                yield field("Workers", Input(str(c.workers or ""), compact=True, id="workers",
                                             placeholder="N or auto", valid_empty=True), "workers")
                yield field("GPUs", Input(c.gpus, compact=True, id="gpus", placeholder="e.g. 0,1 or 0,0,1,1"), "gpus")
                yield field("Heartbeat (s)", Input(str(c.heartbeat), type="integer", compact=True, id="heartbeat"),
                            "heartbeat")
                yield field("Storage retry (s)", Input(plain(c.storage_retry), type="number", compact=True,
                                                       id="storage_retry"), "storage_retry")
            with Horizontal(classes="fields"):
                yield field("Precision", Checkbox("mixed fp16", c.mixed_precision, id="mixed_precision"),
                            "mixed_precision")
                yield field("XLA (jit_compile)", Select([(j, j) for j in JIT_COMPILE], value=c.jit_compile,
                                                        allow_blank=False, compact=True, id="jit_compile"),
                            "jit_compile")
                yield field("Trial limit (s)", Input(plain(c.trial_timeout) if c.trial_timeout else "", type="number",
                                                     compact=True, id="trial_timeout", placeholder="none",
                                                     valid_empty=True), "trial_timeout")
                yield field("Max failures", Input(str(c.max_failures), type="integer", compact=True, id="max_failures",
                                                  placeholder="in a row; 0 = never stop"), "max_failures")
            yield Static("looking for GPUs…", id="gpu-note", classes="note")
            yield Label("Config file", classes="section")
            with Horizontal(classes="fields"):
                yield field("Path", Input(self.config_path, compact=True, id="config_path"), "config")
                yield Button("Load (^o)", id="load")
                yield Button("Save (^s)", id="save")
                yield Button("Start (^r)", id="start", variant="success")
        yield PriorityFooter()

    def on_mount(self) -> None:
        self.title = "tunedeck · setup"
        self.sub_title = "Tab moves between fields · ctrl+r starts"
        self.query_one("#field-path").display = self.query_one("#dataset", Select).value == PATH_OPTION
        self.query_one("#field-model_path").display = self.query_one("#model", Select).value == FILE_OPTION
        self.query_one("#model", Select).focus()
        self.validate()
        self.find_gpus()
        self.describe_data()
        self.call_after_refresh(self.remember_form)

    def remember_form(self) -> None:
        """The form as it is now counts as saved: ctrl+o asks before replacing edits made after this."""
        self.pristine = self.form_state()

    def form_state(self) -> tuple:
        return self.form_values(), self.space_fields()

    @property
    def edited(self) -> bool:
        return self.pristine is not None and self.form_state() != self.pristine

    @work(thread=True, group="gpus", exit_on_error=False)
    def find_gpus(self) -> None:
        """Look for the visible GPUs (nvidia-smi, off the UI thread); the app keeps them for the worker plan."""
        gpus = visible_gpus()
        self.app.call_from_thread(self.found_gpus, gpus)

    def found_gpus(self, gpus: list[Gpu]) -> None:
        self.app.gpus_here = gpus
        self.show_plan()

    def show_plan(self) -> None:
        """Under the Workers fields: the GPUs found and the workers a start would run on them."""
        gpus = getattr(self.app, "gpus_here", None)
        if gpus is None:
            return
        found = ("GPUs: " + "; ".join(f"{gpu.entry}: {gpu.name or gpu.label}" for gpu in gpus) if gpus else
                 f"No GPU found: workers share this machine's {cpu_cores()} CPU cores")
        values = self.form_values()
        workers = values["workers"].strip()
        gpu_list = [gpu.strip() for gpu in values["gpus"].split(",") if gpu.strip()]
        try:
            count = workers if workers == "auto" else int(workers or 0)
        except ValueError:
            count = -1
        if count != "auto" and count < 0:
            plan_text = "Workers: a number or auto"
        else:
            plan = plan_workers(count, gpu_list, gpus)
            plan_text = f"Start runs {plan.text}" + ("" if plan.in_processes else ", in this app")
            plan_text += "".join(f"; {warning}" for warning in plan_warnings(plan, gpu_list, gpus))
        self.query_one("#gpu-note", Static).update(f"{found}. {plan_text}.")

    # --- the model file and the data --------------------------------------------------------
    def model_choice(self) -> str:
        """mlp, cnn, or the model file's absolute path."""
        if self.query_one("#model", Select).value != FILE_OPTION:
            return str(self.query_one("#model", Select).value)
        text = self.query_one("#model_path", Input).value.strip()
        return str(Path(text).expanduser().absolute()) if text else ""

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_model_file(self, path: str) -> None:
        """Import a model file off the UI thread (it imports Keras, and runs the user's code), then show its
        SPACE as the search space."""

        try:
            space = spec_for(path).default_space()
        except Exception as exc:  # noqa: BLE001 - a ConfigError naming the file, or the user's own error
            self.app.call_from_thread(self.model_failed, path, str(exc))
            return
        self.app.call_from_thread(self.model_loaded, path, space)

    def model_failed(self, path: str, message: str) -> None:
        self.model_state = (path, message)
        self.validate()

    async def model_loaded(self, path: str, space) -> None:
        self.model_state = (path, "")
        if self.model_choice() == path and self.shown_model != path:
            await self.show_space_of(path, space)
        self.validate()

    def describe_data(self) -> None:
        values = self.form_values()
        dataset = values["path"].strip() if values["dataset"] == PATH_OPTION else values["dataset"]
        subset = values["subset"].strip()
        self.query_one(DataSummary).show_for(dataset, int(subset) if subset.isdigit() else 0)

    # --- reading and checking the form -------------------------------------------------
    def form_values(self) -> dict[str, Any]:
        values = {key: self.query_one(f"#{key}", Select).value for key in ("dataset", "sampler", "pruner",
                                                                              "objective", "jit_compile")}
        values["model"] = self.model_choice()
        for key in ("path", "subset", "n_trials", "timeout", "seed", "patience", "lr_patience", "study_name", "storage",
                    "out_dir", "workers", "gpus", "heartbeat", "storage_retry", "trial_timeout", "max_failures",
                    "artifacts", "warm_start"):
            values[key] = self.query_one(f"#{key}", Input).value
        values["mixed_precision"] = self.query_one("#mixed_precision", Checkbox).value
        return values

    def space_fields(self) -> dict[str, dict[str, Any]]:
        """The search space's rows as typed; rows being replaced (another model's) are left out."""
        return {row.param: row.fields() for row in self.query(ParamRow) if row.ready}

    def validate(self) -> StudyConfig | None:
        """Check every field; show each error under its field; return the config when all are valid. A model
        file is checked once it is loaded (in a thread)."""
        model = self.model_choice()
        if is_model_file(model) and self.model_state[0] != model:
            config, self.errors = None, {"model": f"model: reading {Path(model).name}…"}
        elif not model and self.query_one("#model", Select).value == FILE_OPTION:
            config, self.errors = None, {"model": "model: enter the path of a model file (.py)"}
        elif is_model_file(model) and self.model_state[1]:
            config, self.errors = None, {"model": self.model_state[1]}
        else:
            config, self.errors = check_form(self.form_values(), self.space_fields())
        for error in self.query(".error"):
            show_error(error, self.errors.get(error.id.removeprefix("err-"), ""))
        for row in self.query(ParamRow):
            row.show_error(self.errors.get(f"space.{row.param}", ""))
        leftovers = [msg for key, msg in self.errors.items()
                     if not key.startswith("space.") and not self.query(f"#err-{key}")]
        show_error(self.query_one("#err-config", Static), "\n".join(leftovers))
        return config

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @guarded
    def _changed(self, event: Input.Changed | Checkbox.Changed) -> None:
        if isinstance(event, Input.Changed) and event.input.id == "storage":
            event.input.password = has_password(event.value)
        if isinstance(event, Input.Changed) and event.input.id == "model_path" and is_model_file(self.model_choice()):
            self.load_model_file(self.model_choice())
        if isinstance(event, Input.Changed) and event.input.id in ("path", "subset"):
            self.describe_data()
        if isinstance(event, Input.Changed) and event.input.id in ("workers", "gpus"):
            self.show_plan()
        self.validate()

    @on(Select.Changed)
    @guarded
    async def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "model":
            self.query_one("#field-model_path").display = event.value == FILE_OPTION
            model = self.model_choice()
            if model in BUILTIN_SPECS and model != self.shown_model:
                await self.show_space_of(model, spec_for(model).default_space())
            elif is_model_file(model):
                self.load_model_file(model)
        if event.select.id == "dataset":
            self.query_one("#field-path").display = event.value == PATH_OPTION
            self.describe_data()
        self.validate()

    async def show_space_of(self, model: str, defaults) -> None:
        """Switching model keeps the space shown as it was edited, for a switch back; the new model's space is
        the one it was left with, else its defaults."""
        self.spaces[self.shown_model] = self.space_fields()
        self.shown_model = model
        await self.replace_space(defaults, self.spaces.get(model, {}))

    async def replace_space(self, space, fields: dict[str, dict[str, Any]] | None = None) -> None:
        container = self.query_one("#space", Vertical)
        for row in container.query(ParamRow):
            row.ready = False
        await container.remove_children()
        await container.mount_all([ParamRow(param, (fields or {}).get(param.name)) for param in space])

    # --- actions ----------------------------------------------------------------------
    @guarded
    def action_start(self) -> None:
        config = self.validate()
        if config is None:
            reasons = "\n".join(self.errors.values())
            self.notify(f"Cannot start:\n{reasons}", title="Invalid fields", severity="error", timeout=8)
            return
        self.app.start_study(config)

    @guarded
    def action_defaults(self) -> None:
        """ctrl+d (in a text field too: it does not delete there): the model's default space, asked first when
        the rows were edited."""
        model = self.model_choice()
        if not (model in BUILTIN_SPECS or (is_model_file(model) and self.model_state == (model, ""))):
            return  # a model file not loaded yet has no defaults to show
        space = spec_for(model).default_space()  # a loaded model file's spec is cached

        async def reset(yes: bool | None = True) -> None:
            if yes:
                await self.replace_space(space)
                self.validate()

        if self.space_fields() == {param.name: param_fields(param) for param in space}:
            self.notify("The search space is the model's defaults already", timeout=3)
            return
        self.app.push_screen(ConfirmScreen("Replace the edited search space with the model's defaults?"), reset)

    @on(Button.Pressed)
    @guarded
    def _button(self, event: Button.Pressed) -> None:
        {"start": self.action_start, "load": self.action_load, "save": self.action_save}[event.button.id]()

