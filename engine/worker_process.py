"""One worker process started by a WorkerPool: `python -m engine.worker_process CONFIG.toml`.

The storage URL comes from $TUNEDECK_STORAGE. SIGINT stops after the running trial, a second one (or SIGTERM)
at the next batch. Exit status: 0 done, 1 the study ended on errors, 2 a user error (its one line on stderr).
"""

from __future__ import annotations

import signal
import sys

from engine.config import load_config
from engine.errors import UserError
from engine.runner import StudyRunner


def main(argv: list[str]) -> int:
    try:
        runner = StudyRunner(load_config(argv[0]), poll_seconds=1.0)
    except UserError as exc:
        print(f"tunedeck worker: error: {exc}", file=sys.stderr)
        return 2
    interrupts = 0

    def on_signal(signum, frame) -> None:
        nonlocal interrupts
        interrupts += 1
        now = interrupts > 1 or signum == signal.SIGTERM
        runner.stop(now=now, everywhere=False, cause="user" if signum == signal.SIGINT else "signal")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        finished = runner.run()
    except UserError as exc:
        print(f"tunedeck worker: error: {exc}", file=sys.stderr)
        return 2
    print(f"tunedeck worker: {finished.reason}", file=sys.stderr)
    return 0 if finished.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
