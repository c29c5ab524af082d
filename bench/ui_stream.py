"""Stream a fake engine's 10,000 trials into the app running headless.

The fake engine paces itself (default 100 trials a second, each trial's events in a burst); a real
study runs far below one trial a second. Prints the per-event handling time (median and p99) at the
start and at the end of the stream, the worst key-press latency
during the stream, and peak memory, as a final JSON line.
Usage: python bench/ui_stream.py [--quick] [--trials N] [--epochs E]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import threading
import time

from textual import events

from engine import (
    BestChanged,
    EpochEnded,
    ImportancesUpdated,
    StopReason,
    StopRequest,
    StudyConfig,
    StudyFinished,
    StudyStarted,
    TrialFinished,
    TrialStarted,
)
from tui.app import TunedeckApp
from tui.screens.run import RunScreen
from tui.widgets.trial_table import TrialTable

PARAMS = ("layer_num", "epochs", "first_layer_unit", "batch_size")
WINDOW = 2000  # events measured at the start and at the end of the stream


class StreamingRunner:
    """A fake StudyRunner: emits `n_trials` trials of `epochs` epochs, `rate` trials a second.

    Between trials it sleeps, releasing the GIL as a real engine does while TensorFlow trains."""

    trains_here = True
    owns_workers = False
    can_retrain = False

    def __init__(self, config, emit, n_trials: int, epochs: int, rate: float) -> None:
        self.emit, self.n_trials, self.epochs, self.period = emit, n_trials, epochs, 1.0 / rate
        self._stop = threading.Event()
        self.emitted = 0

    def stop(self, request: StopRequest) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()

    def run(self) -> StudyFinished:
        emit = self.emit
        emit(StudyStarted("stream", "sqlite:///:memory:", "fake", "", 4000, 1000, "CPU", self.n_trials, 0, PARAMS,
                          "-"))
        best = -1.0
        next_trial = time.perf_counter()
        for number in range(self.n_trials):
            next_trial += self.period
            time.sleep(max(0.0, next_trial - time.perf_counter()))
            if self._stop.is_set():
                break
            params = {"layer_num": 2 + number % 3, "epochs": self.epochs, "first_layer_unit": 64 << (number % 4),
                      "batch_size": 32 << (number % 3)}
            emit(TrialStarted(number, params, self.epochs))
            curve = tuple(0.5 + 0.4 * (1 - 1 / (epoch + 2)) + 0.001 * (number % 50) for epoch in range(self.epochs))
            for epoch in range(self.epochs):
                emit(EpochEnded(number, epoch, 0.3, 0.9, 0.3, curve[epoch], curve[: epoch + 1]))
            state = ("COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "FAIL")[number % 5]
            value = None if state == "FAIL" else curve[-1]
            emit(TrialFinished(number, state, value, params, 1.0 + number % 7, value, value, self.epochs,
                               "boom" if state == "FAIL" else "", curve))
            if state == "COMPLETE" and value > best:
                best = value
                emit(BestChanged(number, value, params, value))
            if number % 25 == 0:
                emit(ImportancesUpdated({name: 1 / (i + 1) for i, name in enumerate(PARAMS)}))
            self.emitted += 1
        finished = StudyFinished(StopReason.FINISHED, True, self.n_trials, 0, 0, "stream done")
        emit(finished)
        return finished


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered) * 1000, 4),
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 4)}


async def measure(n_trials: int, epochs: int, rate: float) -> dict:
    costs: list[float] = []
    original = RunScreen.handle_event

    def timed(self, event):
        start = time.perf_counter()
        original(self, event)
        costs.append(time.perf_counter() - start)

    RunScreen.handle_event = timed
    runners: list[StreamingRunner] = []

    def factory(config, emit):
        runners.append(StreamingRunner(config, emit, n_trials, epochs, rate))
        return runners[-1]

    posted: list[float] = []
    handled: list[float] = []
    original_down = TrialTable.action_cursor_down

    def timed_down(self):
        handled.append(time.perf_counter())
        original_down(self)

    TrialTable.action_cursor_down = timed_down
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    app = TunedeckApp(StudyConfig(out_dir="/tmp/tunedeck-bench"), runner_factory=factory)
    started = time.perf_counter()
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("ctrl+r")
            while not (isinstance(app.screen, RunScreen) and app.screen.state in ("finished", "error")):
                if isinstance(app.screen, RunScreen) and app.screen.state == "running":
                    # a real key event, as the terminal driver posts it, through the app's bindings
                    posted.append(time.perf_counter())
                    app.post_message(events.Key("down", None))
                await asyncio.sleep(0.05)
            await pilot.pause(0.2)
            rows = app.screen.query_one("#trials").row_count
    finally:
        RunScreen.handle_event = original
        TrialTable.action_cursor_down = original_down
    key_latency = [done - sent for sent, done in zip(posted, handled, strict=False)]
    assert len(handled) == len(posted), f"{len(posted)} keys sent, {len(handled)} handled"
    elapsed = time.perf_counter() - started
    window = min(WINDOW, len(costs) // 2)
    return {"bench": "ui_stream", "trials": n_trials, "epochs": epochs, "rate_trials_per_s": rate,
            "events": len(costs), "table_rows": rows,
            "seconds": round(elapsed, 2), "events_per_s": round(len(costs) / elapsed),
            "start": summary(costs[:window]), "end": summary(costs[-window:]),
            "key_latency_max_ms": round(max(key_latency) * 1000, 1),
            "key_latency_median_ms": round(statistics.median(key_latency) * 1000, 1),
            "key_latency_p99_ms": round(sorted(key_latency)[int(len(key_latency) * 0.99)] * 1000, 1),
            "key_presses": len(key_latency),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_before_mb": round(rss_before / 1024),
            "goals": {"median_ms": 1.0, "key_latency_p99_ms": 50, "key_latency_max_ms": 100}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 trials: under a minute")
    parser.add_argument("--rate", type=float, default=100.0, help="trials a second (a real study: < 1)")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    n_trials = args.trials or (2000 if args.quick else 10_000)
    print(json.dumps(asyncio.run(measure(n_trials, args.epochs, args.rate))))


if __name__ == "__main__":
    main()
