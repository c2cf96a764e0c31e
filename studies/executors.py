"""Where tasks run: the seam between a study and its workers.

An executor takes a task (a plain dict) and returns a future with the task's result; it says how many workers
it has and what it is. The local pool is a `ProcessPoolExecutor` of spawned worker processes, each compiling
the feeder once at start and keeping it warm. A cluster executor only has to offer the same four methods.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from studies.tasks import run_task, warm_up
from engine.settings import EngineSettings


class Executor(Protocol):
    def submit(self, task: dict[str, Any]) -> Any:
        """A future (with add_done_callback, result, cancel) of run_task(task)."""

    def workers(self) -> int: ...

    def check(self) -> None:
        """Raise ExecutorUnavailable when no work can run (a lost cluster)."""

    def explain(self, error: BaseException) -> str | None:
        """What a task's failure means for the study when it is the executor's doing (a dead worker, a lost
        cluster), or None for an error of the task itself."""

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def start_worker(settings: EngineSettings) -> None:
    """A local worker process: lower priority than the web server (studies fill the cores, requests are still
    answered at once), then the feeder compiled before the first task."""
    if hasattr(os, "nice"):
        os.nice(10)
    warm_up(settings)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LocalPool:
    """Worker processes on this machine (spawned, so they share nothing with the server's threads)."""

    name = "local"

    def __init__(self, engine_settings: EngineSettings, workers: int | None = None) -> None:
        self.engine_settings = engine_settings
        self._workers = workers or usable_cores()
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _ready_pool(self) -> ProcessPoolExecutor:
        """The pool, started on first use (and again after a worker died: a broken pool takes no work)."""
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self._workers,
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=start_worker, initargs=(self.engine_settings,))
            return self._pool

    def submit(self, task: dict[str, Any]) -> Future:
        pool = self._ready_pool()
        try:
            return pool.submit(run_task, task)
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return self._ready_pool().submit(run_task, task)

    def workers(self) -> int:
        return self._workers

    def check(self) -> None:
        """The local pool can always take work (a dead worker is replaced on the next submit)."""

    def explain(self, error: BaseException) -> str | None:
        if isinstance(error, BrokenProcessPool):
            return ("a worker process stopped unexpectedly (killed, or out of memory) while running this study; "
                    "the study was stopped and the workers restarted: run it again")
        return None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self._workers}

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None



class ExecutorUnavailable(Exception):
    """The executor cannot take work: a scheduler that does not answer, or one lost."""
