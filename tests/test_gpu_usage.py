"""GPU use on screen: the monitor, NVML's reader (faked: no GPU here), the bars, the run screen and the headless
display, all with an injected reader."""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import types

import pytest
from rich.console import Console
from test_tui import wait_for
from tui_fakes import FakeRunner, factory, screen_lines

from engine import StudyConfig
from engine.gpus import GpuMonitor, GpuSample, gpu_bar, nvml_reader
from engine.gpus import usage as usage_module
from tui import headless
from tui.app import TunedeckApp
from tui.headless import RunDisplay, run_headless
from tui.screens.run import RunScreen
from tui.widgets.gpu_bars import GpuBars, bar_rows

H100 = GpuSample(0, "NVIDIA H100 80GB HBM3", 63, 12.1 * 1024, 80 * 1024, 61)
IDLE = GpuSample(1, "NVIDIA H100 80GB HBM3", 0, 0.5 * 1024, 80 * 1024, 34)


def deadline(predicate, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


class CountingReader:
    def __init__(self, samples=(H100,), fail_after: int | None = None) -> None:
        self.samples = list(samples)
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self) -> list[GpuSample]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("GPU has fallen off the bus")
        return self.samples


# --- the monitor ---------------------------------------------------------------------------------------------
def test_the_monitor_samples_in_its_thread_and_close_stops_it():
    reader, seen = CountingReader(), []
    monitor = GpuMonitor(reader, interval=0.01, on_sample=seen.append).start()
    deadline(lambda: reader.calls >= 3)
    assert monitor.latest == [H100] and seen[0] == [H100]
    started = time.monotonic()
    monitor.close()
    assert not monitor.alive and time.monotonic() - started < 1.0
    calls = reader.calls
    time.sleep(0.05)  # nothing is read once closed (a check of absence, not a wait on a condition)
    assert reader.calls == calls and monitor.latest == []


def test_close_is_prompt_with_a_long_interval():
    monitor = GpuMonitor(CountingReader(), interval=60).start()
    deadline(lambda: monitor.latest)
    started = time.monotonic()
    monitor.close()
    assert not monitor.alive and time.monotonic() - started < 1.0  # an Event wait, not a sleep


def test_a_failing_reader_stops_the_monitor_quietly_and_logs_once(caplog):
    reader = CountingReader(fail_after=2)
    logger = logging.getLogger("tunedeck")
    propagate, logger.propagate = logger.propagate, False  # a run's log file may have turned it off already
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="tunedeck"):
            monitor = GpuMonitor(reader, interval=0.01).start()
            deadline(lambda: not monitor.alive)
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate
    assert monitor.latest == [] and reader.calls == 3
    failures = [r for r in caplog.records if "GPU monitor stopped" in r.getMessage()]
    assert len(failures) == 1 and "fallen off the bus" in failures[0].getMessage()
    monitor.close()  # closing a stopped monitor is harmless


def test_a_failing_callback_stops_the_monitor_too(caplog):
    def broken(samples):
        raise ValueError("no")

    monitor = GpuMonitor(CountingReader(), interval=0.01, on_sample=broken).start()
    deadline(lambda: not monitor.alive)
    assert monitor.latest == []


def test_without_nvml_the_default_monitor_reads_nothing():
    monitor = GpuMonitor().start()  # NVML, opened in its thread: none on this machine (or real GPUs)
    deadline(lambda: not monitor.alive or monitor.latest)
    monitor.close()
    assert all(isinstance(sample, GpuSample) for sample in monitor.latest)


# --- NVML's reader ---------------------------------------------------------------------------------------------
def test_nvml_reader_never_raises():
    reader = nvml_reader()
    assert reader is None or callable(reader)


class NVMLError(Exception):
    pass


def fake_pynvml(init_fails: bool = False) -> types.ModuleType:
    """The few pynvml calls the reader makes, for two GPUs; the second reports no temperature (a MIG-like board)."""
    module = types.ModuleType("pynvml")
    module.NVMLError = NVMLError
    module.NVML_TEMPERATURE_GPU = 0
    module.inits = 0

    def init():
        module.inits += 1
        if init_fails:
            raise NVMLError("Driver Not Loaded")

    def temperature(handle, sensor):
        if handle == 1:
            raise NVMLError("Not Supported")
        return 61

    module.nvmlInit = init
    module.nvmlDeviceGetCount = lambda: 2
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetName = lambda handle: b"NVIDIA H100 80GB HBM3" if handle == 0 else "NVIDIA A100"
    module.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=63 if handle == 0 else 5)
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=12 * 1024**3, total=80 * 1024**3)
    module.nvmlDeviceGetTemperature = temperature
    return module


@pytest.fixture
def fresh_nvml(monkeypatch):
    monkeypatch.setattr(usage_module, "_nvml_ready", None)

    def install(module):
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    yield install


def test_nvml_reader_reads_each_gpu_with_init_once(fresh_nvml):
    module = fresh_nvml(fake_pynvml())
    reader = nvml_reader()
    assert nvml_reader() is not None and module.inits == 1
    first, second = reader()
    assert first == GpuSample(0, "NVIDIA H100 80GB HBM3", 63, 12 * 1024, 80 * 1024, 61)
    assert second.name == "NVIDIA A100" and second.temperature_c is None


def test_nvml_reader_is_none_when_nvml_does_not_start(fresh_nvml):
    fresh_nvml(fake_pynvml(init_fails=True))
    assert nvml_reader() is None


def test_nvml_reader_is_none_without_pynvml(fresh_nvml):
    fresh_nvml(None)  # a None entry in sys.modules makes `import pynvml` fail
    assert nvml_reader() is None


# --- the text ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width, text", [
    (80, "GPU0 ▇▇▇▇▇▇▁▁▁▁ 63% 12.1/80G 61°C NVIDIA H100 80GB HBM3"),
    (40, "GPU0 ▇▇▇▇▇▇▁▁▁▁ 63% 12.1/80G 61°C"),
    (28, "GPU0 ▇▇▇▁▁ 63% 12.1/80G 61°C"),
    (27, "GPU0 63% 12.1/80G 61°C"),
    (21, "GPU0 63% 12.1/80G"),
    (16, "GPU0 63%"),
    (5, "GPU0"),
    (3, "GPU"),
    (0, ""),
])
def test_gpu_bar_degrades_with_the_width(width, text):
    assert gpu_bar(H100, width) == text
    assert len(gpu_bar(H100, width)) <= width


def test_gpu_bar_without_utilisation_or_temperature():
    quiet = GpuSample(3, "MIG 1g.10gb", None, 2048, 10240, None)
    assert gpu_bar(quiet, 40) == "GPU3 2.0/10G"
    assert gpu_bar(GpuSample(0, "", 100, 120 * 1024, 141 * 1024, 90), 29) == "GPU0 ▇▇▇▇▇ 100% 120/141G 90°C"


def test_bars_share_a_row_while_each_keeps_its_figures():
    assert bar_rows([], 78) == []
    first, second = "GPU0 ▇▇▇▇▇▇▁▁▁▁ 63% 12.1/80G 61°C", "GPU1 ▁▁▁▁▁▁▁▁▁▁ 0% 0.5/80G 34°C"
    assert bar_rows([H100, IDLE], 78) == [first.ljust(38) + "  " + second]  # two equal cells of 38
    eight = [GpuSample(i, "", 10 * i, 1024, 80 * 1024, 40) for i in range(8)]
    rows = bar_rows(eight, 78)  # four to a row at 80 columns
    assert len(rows) == 2 and all(len(row) <= 78 for row in rows) and rows[1].startswith("GPU4 40% 1.0/80G")


# --- the run screen --------------------------------------------------------------------------------------------
async def test_the_run_screen_shows_a_bar_per_gpu_from_an_injected_reader(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory(hold=True))
    app.gpu_reader = CountingReader([H100, IDLE])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.query_one(GpuBars).display)
        await pilot.pause(0.1)
        bars = app.screen.query_one(GpuBars)
        assert bars.region.height == 1 and bars.region.y == app.screen.query_one("#status").region.y + 1
        shown = "\n".join(screen_lines(app))
        assert "GPU0" in shown and "63% 12.1/80G 61°C" in shown and "GPU1" in shown
        monitor = bars.monitor
        await pilot.press("s")  # stop, then quit: the monitor goes with the screen
        await pilot.press("q")
        await pilot.pause(0.2)
    deadline(lambda: not monitor.alive)


async def test_without_a_reader_the_run_screen_draws_no_gpu_row(tmp_path):
    app = TunedeckApp(StudyConfig(out_dir=str(tmp_path)), runner_factory=factory())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "finished")
        bars = app.screen.query_one(GpuBars)
        assert bars.monitor is None and not bars.display and bars.region.height == 0
        assert "GPU" not in "\n".join(screen_lines(app))


# --- the headless display --------------------------------------------------------------------------------------
def rendered(display: RunDisplay, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(display)
    return console.file.getvalue()


def test_the_headless_display_shows_a_line_per_gpu_under_the_progress():
    display = RunDisplay(gpus=lambda: [H100, IDLE])
    lines = rendered(display).splitlines()
    assert lines[1].startswith("GPU0 ▇▇▇▇▇▇▁▁▁▁ 63% 12.1/80G 61°C") and lines[2].startswith("GPU1 ▁▁▁")
    assert "GPU" not in rendered(RunDisplay())
    narrow = [line for line in rendered(RunDisplay(gpus=lambda: [H100]), width=20).splitlines() if "GPU" in line]
    assert narrow == ["GPU0 63% 12.1/80G"]


def test_run_headless_shows_the_gpus_and_closes_its_monitor(tmp_path, monkeypatch, capsys):
    reader = CountingReader([H100])
    shown = threading.Event()

    class Runner(FakeRunner):
        def run(self):  # the study lasts until the display has shown this host's GPU
            deadline(lambda: "GPU0" in rendered(self.emit.__self__))
            shown.set()
            return super().run()

    monkeypatch.setattr(headless, "StudyRunner", Runner)
    monkeypatch.setattr(headless, "export_report", lambda url, name, path, plots: path)
    config = StudyConfig(out_dir=str(tmp_path), study_name="gpus")
    assert run_headless(config, None, gpu_reader=reader) == 0
    assert shown.is_set()
    calls = reader.calls
    time.sleep(0.05)  # closed: no read after the run
    assert reader.calls == calls
    assert "finished 5 trials" in capsys.readouterr().out
