"""One row of the search-space editor: a parameter's kind and the fields that kind uses."""

from __future__ import annotations

import re
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, Static

from engine import Param
from engine.errors import plain
from engine.space import KINDS
from tui.form import param_fields

NUMBER = r"[-+0-9.eE]*"
NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
MOST_CHOICES = 12  # an int range this small becomes its every value when it turns categorical
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

    def __init__(self, param: Param, fields: dict[str, Any] | None = None) -> None:
        """A row for `param`, showing `fields` (its text as a user left it) when given."""
        self.initial = fields or param_fields(param)
        super().__init__(id=f"row-{param.name}", classes=f"kind-{self.initial['kind']}")
        self.param = param.name
        self.kind = self.initial["kind"]  # shown now: a change starts the new kind from this one's values
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
            self.carry_values(str(event.value))

    def carry_values(self, kind: str) -> None:
        """A kind change keeps what was typed: the new kind's empty fields start from the others (a range's low
        becomes the fixed value, a small int range its choices, choices a range), and every field stays for a
        change back."""
        fields, previous, self.kind = self.fields(), self.kind, kind
        numbers = [float(c) for c in fields["choices"].replace(",", " ").split() if NUMBER_TEXT.fullmatch(c)]
        seeds: dict[str, str] = {}
        if kind == "fixed":
            seeds["value"] = fields["low"] or fields["choices"].split(",")[0].strip()
        elif kind == "categorical":
            seeds["choices"] = (range_choices(fields, previous == "int") if previous in ("int", "float")
                                else fields["value"])
        elif numbers:
            seeds |= {"low": plain(min(numbers)), "high": plain(max(numbers))}
        elif fields["value"]:
            seeds |= {"low": fields["value"], "high": fields["value"]}
        for part, text in seeds.items():
            box = self.query_one(f"#{self.param}-{part}", Input)
            if not box.value and text:
                box.value = text

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


def range_choices(fields: dict[str, Any], whole: bool) -> str:
    """An int range's every value (when there are few), else its two ends, as choices text."""
    try:
        low, high = float(fields["low"]), float(fields["high"])
        step = float(fields["step"] or 1)
    except ValueError:
        return ""
    if whole and step > 0 and (high - low) / step < MOST_CHOICES:
        return ", ".join(plain(low + i * step) for i in range(int((high - low) / step) + 1))
    return f"{plain(low)}, {plain(high)}"
