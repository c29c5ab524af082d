"""A pool's worker program with the fake trainer: `python tests/fake_worker.py [crash] CONFIG.toml`
(WorkerPool(command=...)). It is engine.run.worker (signals, exit status) with a trainer that trains nothing, or,
given `crash`, one that fails with an error of its own (not a trial's): what is tested is the pool."""

import sys

from fakes import FakeTrainer

from engine.run.worker import main


class CrashingTrainer(FakeTrainer):
    def train(self, trial, params, emit, stop_now):
        raise RuntimeError("boom: a bug in the worker")


if __name__ == "__main__":
    crash = sys.argv[1] == "crash"
    trainer = CrashingTrainer() if crash else FakeTrainer(epoch_seconds=0.05)
    sys.exit(main(sys.argv[2:] if crash else sys.argv[1:], trainer=trainer))
