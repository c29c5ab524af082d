"""One row of the search-space editor: a parameter's kind and the fields that kind uses."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, Static

from engine import Param
from engine.space import KINDS
from tui.form import param_fields

NUMBER = r"[-+0-9.eE]*"
ANY = None  # choices and fixed values may be strings too: relu, tanh


class ParamRow(Vertical):
    """Name, kind select, then low/high/step/log, choices or value, depending on the kind."""

    DEFAULT_CSS = """
    ParamRow { height: auto; }
    ParamRow > Horizontal { height: auto; }
    ParamRow .name { width: 18; }
    ParamRow Select { width: 16; margin-right: 1; }
    ParamRow Input { width: 10; margin-right: 1; }
    ParamRow .choices, ParamRow .value { width: 32; }
    ParamRow Checkbox, ParamRow Checkbox:focus { width: 10; height: 1; border: none; padding: 0; }
    ParamRow .row-error { color: $error; padding-left: 18; height: auto; }
    ParamRow.kind-int .choices, ParamRow.kind-int .value,
    ParamRow.kind-float .choices, ParamRow.kind-float .value,
    ParamRow.kind-categorical .range, ParamRow.kind-categorical .value,
    ParamRow.kind-fixed .range, ParamRow.kind-fixed .choices { display: none; }
    """

    def __init__(self, param: Param) -> None:
        super().__init__(id=f"row-{param.name}", classes=f"kind-{param.kind}")
        self.param = param.name
        self.initial = param_fields(param)
        self.ready = False  # its inputs are mounted (and it is not being removed): its fields can be read

    def on_mount(self) -> None:
        self.ready = True

    def compose(self) -> ComposeResult:
        f = self.initial
        with Horizontal():
            yield Label(self.param, classes="name")
            yield Select([(kind, kind) for kind in KINDS], value=f["kind"], allow_blank=False, compact=True,
                         classes="kind", id=f"{self.param}-kind")
            for part in ("low", "high", "step"):
                yield self._input(part, part, f"range {part}")
            yield Checkbox("log", f["log"], classes="range log", id=f"{self.param}-log")
            yield self._input("choices", "e.g. 64, 128, 256", "choices", ANY)
            yield self._input("value", "value", "value", ANY)
        yield Static("", classes="row-error")

    def _input(self, part: str, placeholder: str, classes: str, restrict: str | None = NUMBER) -> Input:
        return Input(self.initial[part], placeholder=placeholder, restrict=restrict, classes=classes, compact=True,
                     id=f"{self.param}-{part}")

    def on_select_changed(self, event: Select.Changed) -> None:
        if "kind" in event.select.classes:
            for kind in KINDS:
                self.set_class(kind == event.value, f"kind-{kind}")

    def fields(self) -> dict[str, Any]:
        """The row's current text, keyed like `tui.form.param_fields`."""
        def text(part: str) -> str:
            return self.query_one(f"#{self.param}-{part}", Input).value

        return {"kind": self.query_one(f"#{self.param}-kind", Select).value, "low": text("low"),
                "high": text("high"), "step": text("step"),
                "log": self.query_one(f"#{self.param}-log", Checkbox).value,
                "choices": text("choices"), "value": text("value")}

    def show_error(self, message: str) -> None:
        error = self.query_one(".row-error", Static)
        error.update(message)
        error.display = bool(message)
