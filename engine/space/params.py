"""Param: one hyperparameter of a search space. A leaf: it imports nothing else of tunedeck's but errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError

KINDS = ("int", "float", "categorical", "fixed")
FIELDS = {"int": {"low", "high", "step", "log"}, "float": {"low", "high", "step", "log"},
          "categorical": {"choices"}, "fixed": {"value"}}


@dataclass
class Param:
    """One hyperparameter: an int or float range, a list of choices, or a fixed value."""

    name: str
    kind: str  # one of KINDS
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list[Any] = field(default_factory=list)
    value: Any = None

    @classmethod
    def from_table(cls, name: str, table: Any) -> Param:
        """One parameter from its TOML table, or a bare value, which fixes it (`epochs = 3`), or a bare list,
        whose items are the choices (`activation = ["relu", "tanh"]`)."""
        where = f"space.{name}"
        if isinstance(table, (list, tuple)):
            return cls(name, "categorical", choices=list(table))
        if not isinstance(table, dict):
            return cls(name, "fixed", value=table)
        table = dict(table)
        kind = table.pop("kind", None)
        if kind is None:
            kind = "categorical" if "choices" in table else "fixed" if "value" in table else "int"
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind: {kind!r} is not allowed; choose one of {', '.join(KINDS)}")
        extra = set(table) - FIELDS[kind]
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}: not a field of a {kind} parameter; "
                              f"allowed: {', '.join(sorted(FIELDS[kind]))}")
        return cls(name, kind, **table)

    def copy(self) -> Param:
        return Param(**vars(self))

    def to_dict(self) -> dict[str, Any]:
        """The TOML table for this parameter (name excluded, empty fields dropped)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high)
            if self.step is not None:
                out["step"] = self.step
            if self.log:
                out["log"] = True
        elif self.kind == "categorical":
            out["choices"] = list(self.choices)
        else:
            out["value"] = self.value
        return out

    def describe(self) -> str:
        """A short human description: `int 2..4 step 1`, `[64, 128]`, `= 0.001`."""
        if self.kind == "categorical":
            return "[" + ", ".join(map(str, self.choices)) + "]"
        if self.kind == "fixed":
            return f"= {self.value}"
        text = f"{self.kind} {self.low}..{self.high}"
        if self.step not in (None, 1):
            text += f" step {self.step}"
        return text + (" log" if self.log else "")

    def extremes(self) -> tuple[Any, Any]:
        """The smallest and largest value a (valid) parameter can give."""
        if self.kind == "fixed":
            return self.value, self.value
        if self.kind == "categorical":
            return min(self.choices), max(self.choices)
        return self.low, self.high

    def first(self) -> Any:
        """One value without a sampler: the fixed value, the first choice or low."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return (self.choices or [None])[0]
        return int(self.low) if self.kind == "int" else self.low


def epochs_ceiling(param: Param) -> int:
    """The most epochs a parameter `epochs` allows."""
    return int(param.extremes()[1])
