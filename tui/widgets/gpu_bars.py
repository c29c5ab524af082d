"""This host's GPUs under the run screen's status line: a compact bar per GPU, as many to a row as fit; nothing
(no row at all) without a GPU or NVML."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine.gpus import GpuMonitor, GpuReader, GpuSample, gpu_bar

GAP = "  "
CELL_MIN = 18  # "GPU0 100% 12.1/80G": narrower than this, a bar goes to the next row


def bar_rows(samples: list[GpuSample], width: int) -> list[str]:
    """The bars in rows of `width` cells: as many side by side as leave each CELL_MIN cells, in equal cells."""
    if not samples:
        return []
    per_row = len(samples)
    while per_row > 1 and (width - len(GAP) * (per_row - 1)) // per_row < CELL_MIN:
        per_row -= 1
    cell = max(1, (width - len(GAP) * (per_row - 1)) // per_row)
    rows = []
    for start in range(0, len(samples), per_row):
        bars = [gpu_bar(sample, cell).ljust(cell) for sample in samples[start:start + per_row]]
        rows.append(GAP.join(bars).rstrip())
    return rows


class GpuBars(Widget):
    """Shows a GpuMonitor's latest samples. The monitor samples in its own thread; `poll()` (the screen's flush
    timer, on the UI thread) only reads `latest`, so the UI never waits on NVML."""

    DEFAULT_CSS = """
    GpuBars { height: 1; padding: 0 1; background: $boost; color: $text-muted; display: none; }
    """

    def __init__(self, reader: GpuReader | None = None, enabled: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.monitor = GpuMonitor(reader) if enabled else None
        self.samples: list[GpuSample] = []

    def on_mount(self) -> None:
        if self.monitor is not None:
            self.monitor.start()

    def on_unmount(self) -> None:
        if self.monitor is not None:
            self.monitor.close(wait=0)

    def poll(self) -> None:
        """Take the monitor's latest samples; a repaint only when they changed, a layout only when the rows did."""
        samples = self.monitor.latest if self.monitor is not None else []
        if samples != self.samples:
            self.samples = samples
            self.fit()
            self.refresh()

    def fit(self) -> None:
        rows = len(bar_rows(self.samples, self.size.width or self.app.size.width - 2))
        self.display = rows > 0
        if rows and self.styles.height is not None and self.styles.height.value != rows:
            self.styles.height = rows

    def on_resize(self) -> None:
        self.fit()

    def render(self) -> Text:
        return Text("\n".join(bar_rows(self.samples, self.size.width)), no_wrap=True, overflow="crop")
