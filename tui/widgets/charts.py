"""plotext charts: optimization history, per-epoch curves with their median, importances.

Events only append data and mark a chart dirty (O(1)); the run screen's timer redraws dirty charts.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from textual_plotext import PlotextPlot

MAX_POINTS = 1500  # history points drawn; longer studies are thinned evenly
EARLIER_CURVES = 15  # earlier trials' curves drawn behind the running one


def thin(xs: list, ys: list, limit: int = MAX_POINTS) -> tuple[list, list]:
    """At most `limit` evenly spaced points (always keeping the last)."""
    if len(xs) <= limit:
        return xs, ys
    step = len(xs) / limit
    picks = sorted({int(i * step) for i in range(limit)} | {len(xs) - 1})
    return [xs[i] for i in picks], [ys[i] for i in picks]


class ThrottledPlot(PlotextPlot):
    """A plot redrawn (by its screen's timer) only when its data changed."""

    DEFAULT_CSS = "ThrottledPlot { height: 1fr; min-height: 8; }"
    ALLOW_MAXIMIZE = True  # 2-4 zoom a chart to the whole screen
    title = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dirty = True
        self.version = 0
        self._rendered: tuple[tuple, object] | None = None

    def render(self):
        """The plot, rebuilt only when its data, size or theme changed: a repaint caused by another
        widget (the table growing) would otherwise rebuild every plot on every frame."""
        key = (self.version, self.size, self.app.theme)
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, super().render())
        return self._rendered[1]

    def redraw_if_dirty(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        self.version += 1
        self.plt.clear_data()
        self.plt.clear_figure()
        self.plt.title(self.title)
        self.draw()
        self.refresh()

    def draw(self) -> None:
        raise NotImplementedError


class HistoryPlot(ThrottledPlot):
    """Each trial's value (complete, pruned and failed apart) and the best-so-far line."""

    title = "Optimization history"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.points: dict[str, tuple[list[int], list[float]]] = {"COMPLETE": ([], []), "PRUNED": ([], []),
                                                                 "FAIL": ([], [])}
        self.best_x: list[int] = []
        self.best_y: list[float] = []
        self.maximize = True  # a study of val_loss minimizes: its best is the lowest

    def add(self, number: int, state: str, value: float | None) -> None:
        xs, ys = self.points.setdefault(state, ([], []))
        xs.append(number)
        ys.append(value if value is not None else 0.0)
        if state == "COMPLETE" and value is not None and self.improves(value):
            if self.best_y:  # a step, not a slope: the best holds until the trial that beats it
                self.best_x.append(number)
                self.best_y.append(self.best_y[-1])
            self.best_x.append(number)
            self.best_y.append(value)
        self.dirty = True

    def improves(self, value: float) -> bool:
        """Whether a complete trial's value is a new best (the highest, or the lowest for val_loss)."""
        if not self.best_y:
            return True
        return value > self.best_y[-1] if self.maximize else value < self.best_y[-1]

    def draw(self) -> None:
        plt = self.plt
        plt.xlabel("trial")
        styles = {"COMPLETE": ("green", "dot", "complete"), "PRUNED": ("orange", "x", "pruned"),
                  "FAIL": ("red", "x", "failed")}
        for state, (xs, ys) in self.points.items():
            if xs:
                color, marker, label = styles.get(state, ("white", "dot", state.lower()))
                plt.scatter(*thin(xs, ys), color=color, marker=marker, label=label)
        if self.best_x:
            last = max(max(xs, default=0) for xs, _ in self.points.values())
            plt.plot(*thin(self.best_x + [last], self.best_y + [self.best_y[-1]]), color="cyan",
                     label="best", marker="braille")


class CurvePlot(ThrottledPlot):
    """The running trial's per-epoch val accuracy over earlier curves and their per-epoch median."""

    title = "Val accuracy per epoch"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.current: tuple[float, ...] = ()
        self.current_number: int | None = None
        self.current_label = ""
        self.earlier: deque[tuple[float, ...]] = deque(maxlen=EARLIER_CURVES)
        self.by_epoch: list[list[float]] = []  # every finished trial's value at each epoch

    def running(self, number: int, curve: tuple[float, ...], label: str = "") -> None:
        self.current_number, self.current = number, curve
        self.current_label = label or f"trial {number}"
        self.dirty = True

    def finished(self, number: int, curve: tuple[float, ...]) -> None:
        if curve:
            self.earlier.append(curve)
            for epoch, value in enumerate(curve):
                if epoch == len(self.by_epoch):
                    self.by_epoch.append([])
                self.by_epoch[epoch].append(value)
        if number == self.current_number:
            self.current, self.current_number = (), None
        self.dirty = True

    def median(self) -> list[float]:
        return [float(np.median(values)) for values in self.by_epoch]

    def draw(self) -> None:
        plt = self.plt
        plt.xlabel("epoch")
        for curve in self.earlier:
            plt.plot(list(range(1, len(curve) + 1)), list(curve), color="gray", marker="braille")
        median = self.median()
        if median:
            plt.plot(list(range(1, len(median) + 1)), median, color="orange", label="median", marker="braille")
        if self.current:
            plt.plot(list(range(1, len(self.current) + 1)), list(self.current), color="cyan",
                     label=self.current_label, marker="hd")


class ImportancePlot(ThrottledPlot):
    """Parameter importances as horizontal bars."""

    title = "Parameter importances"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.importances: dict[str, float] = {}

    def set(self, importances: dict[str, float]) -> None:
        self.importances = dict(importances)
        self.dirty = True

    def draw(self) -> None:
        if self.importances:
            names = list(self.importances)[::-1]
            self.plt.bar(names, [self.importances[name] for name in names], orientation="horizontal",
                         color="cyan", width=0.5)
