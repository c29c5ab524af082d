"""WorkerPool: N worker processes on this machine (spread over its GPUs: engine.gpus.WorkerPlan), watched as one study.

TensorFlow trains one model at a time per process; a small model uses a few percent of a large GPU, so several
workers may share one (each with memory growth on). The
workers share the study through its storage like any other workers, so workers started by hand, on other
machines, join the same study; the pool's view (a StudyWatcher) shows all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from engine.contract import AFTER_TRIAL, EngineError, Event, Scope, StopReason, StopRequest, StudyFinished
from engine.errors import UserError
from engine.files import write_text_atomically
from engine.logs import log_to_file
from engine.run.watcher import StudyWatcher
from engine.run.worker import CRASH_PREFIX, CRASHED, STUDY_FAILED, USER_ERROR, USER_ERROR_PREFIX
from engine.study import StudyConfig, dump_config

EXIT_WAIT_SECONDS = 30  # after the study ends, how long the workers get to leave before they are left alone
WORKER_COMMAND = (sys.executable, "-m", "engine.run.worker")  # + the config file


class WorkerPool:
    """Starts `n_workers` worker processes (`python -m engine.run.worker CONFIG`) and follows the study they share,
    as a source (engine.contract.Source)."""

    trains_here = False
    owns_workers = True
    can_retrain = True

    def __init__(self, config: StudyConfig, emit: Callable[[Event], None] | None = None, n_workers: int = 2,
                 gpus: Sequence[str] = (), poll_seconds: float = 1.0, detach: bool = False,
                 command: Sequence[str] = WORKER_COMMAND) -> None:
        self.config = config
        self.command = list(command)  # the worker program; tests give one with a fake trainer
        self.emit = emit or (lambda event: None)
        self.n_workers = n_workers
        self.gpus = list(gpus)
        self.poll_seconds = poll_seconds
        self.detach = detach  # workers in their own session: they outlive this process if it leaves them
        self.processes: list[subprocess.Popen] = []
        self.stopped_here: StopRequest | None = None  # a stop of this pool's own workers (signals)
        self.watcher = StudyWatcher(config.storage_url, config.name, self._relay, poll_seconds, alive=self.alive,
                                    storage_retry=config.storage_retry)

    def _relay(self, event: Event) -> None:
        """The watcher's events, but for its StudyFinished: the pool emits its own once it knows how its workers
        left (a stop it asked for, a worker that crashed)."""
        if not isinstance(event, StudyFinished):
            self.emit(event)

    def alive(self) -> bool:
        return any(process.poll() is None for process in self.processes)

    def log_path(self, index: int) -> Path:
        return self.config.run_dir / f"worker-{index}.log"

    def start(self) -> None:
        """Start the workers. The storage URL reaches them in the environment, never on a command line."""
        run_dir = self.config.make_run_dir()
        config_path = run_dir / "workers.toml"
        storage = self.config.storage
        self.config.storage = ""  # the file holds no URL (and so no password)
        try:
            write_text_atomically(config_path, dump_config(self.config))
        finally:
            self.config.storage = storage
        for index in range(self.n_workers):
            env = {**os.environ, "TUNEDECK_STORAGE": self.config.storage_url}
            if self.gpus:  # memory growth: workers that share a GPU take only what they use
                env.update(CUDA_VISIBLE_DEVICES=self.gpus[index % len(self.gpus)], TF_FORCE_GPU_ALLOW_GROWTH="true",
                           CUDA_DEVICE_ORDER="PCI_BUS_ID")  # the indexes nvidia-smi gave
            with open(self.log_path(index), "ab") as log:
                self.processes.append(subprocess.Popen(
                    [*self.command, str(config_path)], env=env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def run(self) -> StudyFinished:
        """Start the workers, follow the study until it ends, then wait for the workers to leave. A worker
        that stopped on a user's mistake raises it as a UserError (the same one line it printed)."""
        self.start()
        try:
            with log_to_file(self.config.run_dir / "tunedeck.log"):  # beside its workers' lines
                finished = self.watcher.run()
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C or a signal before the study began: stop them, as asked
            self.stop(StopRequest(now=True, scope=Scope.PROCESS))
            raise
        except Exception as exc:  # the view's own trouble is never a reason to stop training
            self.emit(EngineError(f"the view stopped ({type(exc).__name__}: {exc}); the workers go on: "
                                  f"`tunedeck watch` shows them, `tunedeck stop` stops them"))
            raise
        if finished.reason == StopReason.CLOSED:
            self.emit(finished)
            return finished  # the view was closed; the workers go on
        if finished.reason == StopReason.WORKERS_EXITED and self.stopped_here is not None:  # they did as asked
            finished = replace(finished, reason=StopReason.STOPPED, ok=True, detail=self.stopped_here.text())
        crashes = []
        for index, process in enumerate(self.processes):
            try:
                code = process.wait(EXIT_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                continue
            if code == USER_ERROR and self.last_line(index).startswith(USER_ERROR_PREFIX):
                raise UserError(self.last_line(index).removeprefix(USER_ERROR_PREFIX))
            if code not in (0, STUDY_FAILED):
                crashes.append(self.crash_text(index, code))
        for crash in crashes:
            self.emit(EngineError(crash))
        if crashes:  # distinct from a study that ended on failed trials
            finished = replace(finished, reason=StopReason.WORKER_CRASHED, ok=False,
                               detail=f"{finished.text}; {crashes[0]}")
        self.emit(finished)
        return finished

    def crash_text(self, index: int, code: int) -> str:
        """Why worker `index` ended with status `code`, in one line naming its log."""
        line = self.last_line(index)
        if code == CRASHED and line.startswith(CRASH_PREFIX):
            return f"worker {index} crashed: {line.removeprefix(CRASH_PREFIX)}"
        if code < 0:
            return f"worker {index} was killed by {signal.Signals(-code).name} (log: {self.log_path(index)})"
        return f"worker {index} exited with status {code}: {line} (log: {self.log_path(index)})"

    def last_line(self, index: int) -> str:
        """The last line a worker wrote (its error, when it failed)."""
        try:
            lines = self.log_path(index).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(no output)"

    def stop(self, request: StopRequest = AFTER_TRIAL) -> None:
        """The whole study: a request every worker (here or elsewhere) reads from the storage. This process: signal
        this pool's workers (SIGINT: after the running trial; SIGTERM: now)."""
        if request.scope == Scope.STUDY:
            self.watcher.stop(request)
            return
        self.stopped_here = request if self.stopped_here is None else self.stopped_here.merged(request)
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if request.now else signal.SIGINT)

    def close(self) -> None:
        """Stop watching; the workers go on (started in their own session, they outlive this process)."""
        self.watcher.close()
