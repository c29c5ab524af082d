"""Objective: what a trial's value measures and which way is better. Every "is this better" asks it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
MINIMIZED = ("val_loss",)  # tunedeck's metrics: a loss is minimized, the accuracies maximized


def _number(value: Any) -> float | None:
    """`value` as a finite float, or None (missing, NaN, infinite)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Objective:
    """A metric name and its direction. Missing and non-finite values are never better than a number."""

    metric: str = "val_accuracy"
    maximize: bool = True

    @classmethod
    def of(cls, metric: str) -> Objective:
        """The objective of one of tunedeck's metrics (val_loss is minimized, accuracies maximized)."""
        return cls(metric, metric not in MINIMIZED)

    @property
    def monitored(self) -> Objective:
        """The per-epoch metric a trial of this objective reports, prunes and stops early on (its curve): val
        loss for val_loss, else val accuracy (a test accuracy is measured once, at the end)."""
        return Objective.of("val_loss" if self.metric == "val_loss" else "val_accuracy")

    @property
    def direction(self) -> str:
        """Optuna's word: "maximize" or "minimize"."""
        return "maximize" if self.maximize else "minimize"

    @property
    def mode(self) -> str:
        """Keras' word for a monitored metric: "max" or "min"."""
        return "max" if self.maximize else "min"

    @property
    def label(self) -> str:
        """How people name it: "val accuracy", "val loss"."""
        return self.metric.replace("_", " ")

    def better(self, a: Any, b: Any) -> bool:
        """Whether `a` is strictly better than `b`."""
        a, b = _number(a), _number(b)
        if a is None:
            return False
        if b is None:
            return True
        return a > b if self.maximize else a < b

    def best(self, items: Iterable[T], value: Callable[[T], Any] = lambda item: item) -> T | None:
        """The best item by `value` (the first of equals), or None when none has a number."""
        chosen, chosen_value = None, None
        for item in items:
            if _number(value(item)) is not None and (chosen is None or self.better(value(item), chosen_value)):
                chosen, chosen_value = item, value(item)
        return chosen

    def sort_key(self, value: Any) -> tuple[int, float]:
        """Sorts best first; missing values last."""
        number = _number(value)
        if number is None:
            return (1, 0.0)
        return (0, -number if self.maximize else number)

    def fail_position(self, values: Iterable[Any]) -> float:
        """Where a chart draws a FAIL trial, which has no value: just past the worst end of `values`, apart from
        them and never on the best end."""
        numbers = [n for n in map(_number, values) if n is not None] or [0.0, 1.0]
        low, high = min(numbers), max(numbers)
        margin = 0.05 * ((high - low) or abs(high) or 1.0)
        return low - margin if self.maximize else high + margin
