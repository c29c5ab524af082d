"""A scripted stand-in for a source (a StudyRunner by default): emits given events from the worker thread, obeys
stop() and close()."""

from __future__ import annotations

import threading

from engine import (
    BestChanged,
    EpochEnded,
    ImportancesUpdated,
    StopReason,
    StopRequest,
    StudyFinished,
    StudyStarted,
    TrialFinished,
    TrialStarted,
)

PARAMS = ("layer_num", "first_layer_unit", "batch_size")


def started(n_trials: int = 5) -> StudyStarted:
    return StudyStarted("fake", "sqlite:///fake.db", "mnist-5k", "", 4000, 1000, "CPU", n_trials, 0, PARAMS,
                        "runs/fake/tunedeck.log")


def trial_events(number: int, state: str, value: float | None, curve: tuple[float, ...],
                 error: str = "") -> list:
    params = {"layer_num": 2 + number % 3, "first_layer_unit": 64 * (1 + number % 4), "batch_size": 128}
    events: list = [TrialStarted(number, params, len(curve))]
    events += [EpochEnded(number, i, 0.5, 0.9, 0.4, v, curve[: i + 1]) for i, v in enumerate(curve)]
    events.append(TrialFinished(number, state, value, params, 1.5 + number, test_accuracy=value and value - 0.01,
                                val_accuracy=value, epochs_trained=len(curve), error=error, curve=curve))
    return events


def scripted_study() -> list:
    """Five trials: complete, complete (new best), pruned, failed, complete; importances after three."""
    events = [started()]
    events += trial_events(0, "COMPLETE", 0.91, (0.85, 0.91))
    events.append(BestChanged(0, 0.91, trial_events(0, "COMPLETE", 0.91, ())[-1].params, 0.90))
    events += trial_events(1, "COMPLETE", 0.95, (0.9, 0.95))
    events.append(BestChanged(1, 0.95, trial_events(1, "COMPLETE", 0.95, ())[-1].params, 0.94))
    events += trial_events(2, "PRUNED", 0.5, (0.5,))
    events.append(ImportancesUpdated({"first_layer_unit": 0.7, "layer_num": 0.2, "batch_size": 0.1}))
    events += trial_events(3, "FAIL", None, (), error="loss became nan at epoch 1")
    events += trial_events(4, "COMPLETE", 0.93, (0.88, 0.93))
    return events


class FakeRunner:
    """Emits `script`; with hold=True it then waits for stop() before finishing. A runner by default; with
    owns_workers=True it stands for a pool (which trains nothing itself)."""

    can_retrain = True

    def __init__(self, config, emit, script=None, hold: bool = False, owns_workers: bool = False) -> None:
        self.config = config
        self.emit = emit
        self.script = scripted_study() if script is None else script
        self.hold = hold
        self.owns_workers = owns_workers
        self.trains_here = not owns_workers
        self.stopped: str | None = None
        self.requests: list[StopRequest] = []
        self._stop = threading.Event()

    def stop(self, request: StopRequest) -> None:
        self.requests.append(request)
        self.stopped = "now" if request.now else (self.stopped or "after trial")
        self._stop.set()

    def close(self) -> None:
        self.stopped = "closed"
        self._stop.set()

    def run(self) -> StudyFinished:
        for event in self.script:
            self.emit(event)
        if self.hold:
            self._stop.wait(20)
        finished = (StudyFinished(StopReason.STOPPED, True, 3, 1, 1, "stopped by user") if self.stopped else
                    StudyFinished(StopReason.FINISHED, True, 3, 1, 1, "finished 5 trials"))
        self.emit(finished)
        return finished


def factory(**options):
    """A runner_factory for TunedeckApp that builds FakeRunners and remembers the last one."""
    def make(config, emit):
        make.last = FakeRunner(config, emit, **options)
        return make.last

    make.last = None
    return make


def screen_lines(app) -> list[str]:
    """What the terminal shows, line by line, as plain text (the top screen over the ones below it)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]
