"""One worker process started by a WorkerPool: `python -m engine.run.worker CONFIG.toml`.

The storage URL comes from $TUNEDECK_STORAGE. SIGINT stops after the running trial, a second one (or SIGTERM,
SIGHUP) at the next batch. Exit status: 0 done, 1 the study ended on errors (failed trials), 2 a user error (its
one line on stderr), 3 the worker crashed (its last line names the error and the log with the traceback).
"""

from __future__ import annotations

import signal
import sys

from engine.contract import Cause, Scope, StopRequest, Trainer
from engine.errors import UserError, first_line
from engine.run.runner import StudyRunner
from engine.signals import SignalRelay
from engine.study import load_config

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DONE, STUDY_FAILED, USER_ERROR, CRASHED = 0, 1, 2, 3  # exit statuses
USER_ERROR_PREFIX = "tunedeck worker: error: "
CRASH_PREFIX = "tunedeck worker: crashed: "


def main(argv: list[str], trainer: Trainer | None = None) -> int:
    """Run one worker of the study in config file argv[0] with `trainer` (Keras by default); its exit status."""
    try:
        runner = StudyRunner(load_config(argv[0]), trainer=trainer, poll_seconds=1.0)
    except UserError as exc:
        print(f"{USER_ERROR_PREFIX}{exc}", file=sys.stderr)
        return USER_ERROR
    interrupts = 0

    def on_signal(signum: int) -> None:  # on the relay's thread, not in the handler
        nonlocal interrupts
        interrupts += signum == signal.SIGINT
        now = signum != signal.SIGINT or interrupts > 1
        runner.stop(StopRequest(now, Scope.PROCESS, Cause.USER if signum == signal.SIGINT else Cause.SIGNAL))

    try:
        with SignalRelay(STOP_SIGNALS, on_signal):
            finished = runner.run()
    except UserError as exc:
        print(f"{USER_ERROR_PREFIX}{exc}", file=sys.stderr)
        return USER_ERROR
    except Exception as exc:  # a bug or a broken storage, not a trial's failure: say so, with where to look
        log = runner.config.run_dir / "tunedeck.log"
        print(f"{CRASH_PREFIX}{type(exc).__name__}: {first_line(exc)} (traceback in {log})", file=sys.stderr)
        return CRASHED
    print(f"tunedeck worker: {finished.text}", file=sys.stderr)
    return DONE if finished.ok else STUDY_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
