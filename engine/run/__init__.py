"""Running a study: the runner (one worker), the pool of worker processes, the watcher of a study run elsewhere,
and what they use: sampling, the kept models, what a worker records on its study."""

from engine.run.keeper import ModelKeeper, remove_leftovers
from engine.run.pool import WorkerPool
from engine.run.runner import StudyRunner
from engine.run.sampling import make_pruner, make_sampler
from engine.run.watcher import StudyWatcher

__all__ = ["ModelKeeper", "StudyRunner", "StudyWatcher", "WorkerPool", "make_pruner", "make_sampler",
           "remove_leftovers"]
