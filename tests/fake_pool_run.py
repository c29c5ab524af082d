"""`tunedeck run` whose pool starts fake workers (tests/fake_worker.py): `python tests/fake_pool_run.py ARGS...`
runs tui.cli.main(ARGS) as the command line would, so that signals to the pool's parent are tested without
TensorFlow."""

import functools
import sys
from pathlib import Path

import tui.headless
from engine import WorkerPool

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))

if __name__ == "__main__":
    tui.headless.WorkerPool = functools.partial(WorkerPool, command=FAKE_WORKER)
    from tui.cli import main

    sys.exit(main(sys.argv[1:]))
