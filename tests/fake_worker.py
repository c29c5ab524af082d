"""A pool's worker program with the fake trainer: `python tests/fake_worker.py CONFIG.toml` (WorkerPool(command=...)).

It is engine.run.worker (signals, exit status) with a trainer that trains nothing: what is tested is the pool."""

import sys

from fakes import FakeTrainer

from engine.run.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], trainer=FakeTrainer(epoch_seconds=0.05)))
