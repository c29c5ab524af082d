"""plotext charts: optimization history, per-epoch curves with their median, importances.

Events only append data and mark a chart dirty (O(1)); the run screen's timer redraws dirty charts, each
built in a worker thread from a copy of its data.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from rich.text import Text
from textual import on
from textual.geometry import Size
from textual.message import Message
from textual_plotext import PlotextPlot

from engine import Objective

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
    """A plot redrawn (by its screen's timer) only when its data changed, built off the event loop.

    plotext builds a chart in pure Python (20-35 ms at 160x48): on the event loop that is a frame in which
    keys wait. A redraw takes a copy of the chart's data (`snapshot`) and builds the text in a worker
    thread, one build at a time per chart; the finished text comes back as a message. Only the first paint
    and a resize build in place, so a chart is never shown at the wrong size."""

    DEFAULT_CSS = "ThrottledPlot { height: 1fr; min-height: 8; }"
    ALLOW_MAXIMIZE = True  # 2-4 zoom a chart to the whole screen
    title = ""

    class Built(Message):
        def __init__(self, text: Text, size: Size) -> None:
            super().__init__()
            self.text, self.size = text, size

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dirty = True
        self.building = False
        self._text: Text | None = None
        self._text_key: tuple | None = None

    def render(self):
        key = (self.size, self.app.theme)
        if self.building and self._text is not None:
            return self._text
        if self._text is None or self._text_key != key:
            self._text, self._text_key = self._build(self.snapshot(), self.size, self.app.theme), key
        return self._text

    def redraw_if_dirty(self) -> None:
        """Start a build in a thread when the data changed and no build is running."""
        if not self.dirty or self.building or not self.size.area:
            return
        self.dirty, self.building = False, True
        snapshot, size, theme = self.snapshot(), self.size, self.app.theme
        self.run_worker(lambda: self.post_message(self.Built(self._build(snapshot, size, theme), size)),
                        thread=True, group=f"plot-{self.id}", exit_on_error=False)

    @on(Built)
    def _built(self, message: Built) -> None:
        message.stop()
        self.building = False
        self._text, self._text_key = message.text, (message.size, self.app.theme)
        self.refresh()

    def _build(self, snapshot: Any, size: Size, theme: str) -> Text:
        """The chart's text for this data and size (plotext only: safe in a thread, one build at a time)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        self.draw(plt, snapshot)
        plt.plotsize(size.width, size.height)
        plt._set_size(size.width, size.height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plt.theme(self._get_plotext_theme_name(theme))
        return Text.from_ansi(plt.build())

    @property
    def idle(self) -> bool:
        """Nothing left to draw: the shown text is the latest data's."""
        return not self.dirty and not self.building

    def snapshot(self) -> Any:
        """A copy of what `draw` reads, taken on the event loop."""
        raise NotImplementedError

    def draw(self, plt: Any, snapshot: Any) -> None:
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
        self.goal = Objective()  # the study's (StudyStarted.goal): a study of val_loss has its best lowest

    def add(self, number: int, state: str, value: float | None) -> None:
        xs, ys = self.points.setdefault(state, ([], []))
        xs.append(number)
        ys.append(value)  # None for a failed trial: drawn apart from the values (see snapshot)
        if state == "COMPLETE" and value is not None and self.improves(value):
            if self.best_y:  # a step, not a slope: the best holds until the trial that beats it
                self.best_x.append(number)
                self.best_y.append(self.best_y[-1])
            self.best_x.append(number)
            self.best_y.append(value)
        self.dirty = True

    def improves(self, value: float) -> bool:
        """Whether a complete trial's value is a new best (the highest, or the lowest for val_loss)."""
        return not self.best_y or self.goal.better(value, self.best_y[-1])

    def snapshot(self) -> Any:
        """A copy to draw from; trials without a value (failed) sit just past the worst end of the others'."""
        values = [y for state, (_, ys) in self.points.items() if state != "FAIL" for y in ys if y is not None]
        fail_y = self.goal.fail_position(values)
        points = {state: (list(xs), [fail_y if y is None else y for y in ys])
                  for state, (xs, ys) in self.points.items()}
        return points, list(self.best_x), list(self.best_y)

    def draw(self, plt: Any, snapshot: Any) -> None:
        """The best line first, the points over it; the key in the axis label (a legend would hide points);
        whole trial numbers on the x axis; failed trials (no value) just past the worst end."""
        points, best_x, best_y = snapshot
        styles = {"COMPLETE": ("green", "dot", "• complete"), "PRUNED": ("orange", "x", "x pruned"),
                  "FAIL": ("red", "x", "x failed (no value)"), "PRIOR": ("blue", "dot", "• prior (warm start)")}
        last = max((max(xs) for xs, _ in points.values() if xs), default=0)
        if best_x:
            plt.plot(*thin(best_x + [last], best_y + [best_y[-1]]), color="cyan", marker="braille")
        key = ["─ best"] if best_x else []
        for state, (xs, ys) in points.items():
            if xs:
                color, marker, label = styles.get(state, ("white", "dot", state.lower()))
                plt.scatter(*thin(xs, ys), color=color, marker=marker)
                key.append(label)
        plt.xlabel("trial" + (f"   {'  '.join(key)}" if key else ""))
        plt.xlim(0, max(last, 1))
        plt.xticks(trial_ticks(last))


def trial_ticks(last: int, most: int = 8) -> list[int]:
    """Whole trial numbers from 0 to `last`, at most about `most` of them, evenly spaced."""
    step = max(1, -(-last // most))
    return list(range(0, max(last, 1) + 1, step))


def medians(by_epoch: list[tuple[list[float], int]]) -> list[float]:
    """The median of the first `count` values of each epoch's list."""
    return [float(np.median(values[:count])) for values, count in by_epoch]


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
        """Each epoch's median over the finished trials' curves."""
        return medians([(values, len(values)) for values in self.by_epoch])

    def snapshot(self) -> Any:
        """O(epochs) on the event loop: each epoch's list only grows, so its length now marks what to take;
        the medians are computed in the build thread."""
        return list(self.earlier), [(values, len(values)) for values in self.by_epoch], self.current, self.current_label

    def draw(self, plt: Any, snapshot: Any) -> None:
        earlier, by_epoch, current, current_label = snapshot
        median = medians(by_epoch)
        plt.xlabel("epoch")
        for curve in earlier:
            plt.plot(list(range(1, len(curve) + 1)), list(curve), color="gray", marker="braille")
        if median:
            plt.plot(list(range(1, len(median) + 1)), median, color="orange", label="median", marker="braille")
        if current:
            plt.plot(list(range(1, len(current) + 1)), list(current), color="cyan", label=current_label, marker="hd")


class ImportancePlot(ThrottledPlot):
    """Parameter importances as horizontal bars."""

    title = "Parameter importances"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.importances: dict[str, float] = {}

    def set(self, importances: dict[str, float]) -> None:
        self.importances = dict(importances)
        self.dirty = True

    def snapshot(self) -> Any:
        return dict(self.importances)

    def draw(self, plt: Any, snapshot: Any) -> None:
        if snapshot:
            names = list(snapshot)[::-1]
            plt.bar(names, [snapshot[name] for name in names], orientation="horizontal", color="cyan", width=0.5)
