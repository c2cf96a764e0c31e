"""Studies on a Dask distributed cluster: the same tasks, sent to an existing scheduler's workers.

Imported only when a scheduler is named (`--dask-scheduler`, `IEEE123_DASK_SCHEDULER`), so a user who did not
ask for Dask never starts or imports it. Each worker compiles the feeder once (`WarmEngines`, a WorkerPlugin)
and keeps it warm; a task carries the scenario's ops, so any worker can take any task and Dask can reschedule
the tasks of a worker that dies.

The scheduler unpickles every task graph it is sent, so a graph that names our functions makes it import our
code, and the plain `dask scheduler` line of docs/deployment.md does not give it our code. So a task travels as
bytes: Dask is asked to run `pickle.loads` (the standard library's) on a pickle whose reduction is
`run_task(task)`; only a worker, which has our code, unpickles it, and unpickling it runs the task. The scheduler
needs Dask alone. The plugin is pickled by Dask too, but the scheduler keeps it as bytes and only the workers
unpickle it. A task's engine settings carry the feeder's deck (`engine.feeder`): workers need no files of ours.
"""

from __future__ import annotations

import pickle
from concurrent.futures import CancelledError
from typing import Any

from distributed import Client, WorkerPlugin

from studies.executors import ExecutorUnavailable
from studies.tasks import run_task, warm_up
from engine.settings import EngineSettings


class WarmEngines(WorkerPlugin):
    """Compile the feeder in each worker when it starts (or joins), before its first task."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    def setup(self, worker: Any) -> None:
        warm_up(self.settings)


class RunTask:
    """A task whose unpickling runs it: what a worker gets, so the scheduler never needs our code."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return run_task, (self.task,)


def shipped(task: dict[str, Any]) -> bytes:
    """The bytes a worker unpickles into the task's result."""
    return pickle.dumps(RunTask(task), protocol=pickle.HIGHEST_PROTOCOL)


WORKER_FIX = ("start each worker from a checkout of this repository, as docs/deployment.md's \"Running on a "
              "cluster\" says: `PYTHONPATH=. dask worker tcp://SCHEDULER-HOST:8786 --nworkers 2 --nthreads 1`")
SCHEDULER_FIX = ("this server sends each task as bytes only a worker opens, so a scheduler needs Dask alone, of the "
                 "same Python and Dask versions as this machine (pip install -r requirements.txt); start it as "
                 "docs/deployment.md's \"Running on a cluster\" says: `dask scheduler --host 0.0.0.0 --port 8786`")


class DaskExecutor:
    name = "dask"

    def __init__(self, scheduler: str, engine_settings: EngineSettings, connect_timeout_s: float = 5) -> None:
        self.scheduler = scheduler
        try:
            self.client = Client(scheduler, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ExecutorUnavailable(f"--dask-scheduler {scheduler}: no Dask scheduler answered within "
                                      f"{connect_timeout_s:g} s ({error}). Start one with `dask scheduler` and "
                                      f"workers with `dask worker {scheduler}`, or leave the option out to run "
                                      f"studies on this machine.") from error
        try:
            self.client.register_plugin(WarmEngines(engine_settings), name="ieee123-warm-engines")
        except Exception as error:  # a worker's failure arrives as a plain Exception naming the ImportError
            if not (isinstance(error, ImportError) or "No module named" in str(error)):
                raise
            self.client.close()
            raise ExecutorUnavailable(f"--dask-scheduler {scheduler}: a Dask worker could not import this "
                                      f"project's code ({error}); {WORKER_FIX}") from error

    def submit(self, task: dict[str, Any]) -> Any:
        return self.client.submit(pickle.loads, shipped(task), pure=False)

    def workers(self) -> int:
        if self.client.status != "running":
            return 0
        return sum(worker.get("nthreads", 1) for worker in self.client.scheduler_info().get("workers", {}).values())

    def check(self) -> None:
        if self.client.status != "running":
            raise ExecutorUnavailable(f"lost the Dask scheduler at {self.scheduler} (client {self.client.status}); "
                                      f"the study was stopped")

    def explain(self, error: BaseException) -> str | None:
        """A cancelled task or a broken connection (CommClosedError is an OSError) means the scheduler is gone;
        a task dropped otherwise is said so; a scheduler or worker that cannot unpickle a task names the fix."""
        if isinstance(error, ImportError):  # raised by a worker unpickling a task: our code is not on its path
            return f"a Dask worker could not import this project's code ({error}); {WORKER_FIX}"
        if "deserialization of the task graph" in str(error):
            return (f"the Dask scheduler at {self.scheduler} could not unpickle this study's tasks: its environment "
                    f"lacks what they name (its log says which module or version); {SCHEDULER_FIX}")
        if isinstance(error, (OSError, CancelledError)) or self.client.status != "running":
            if isinstance(error, CancelledError) and self.client.status == "running":
                return f"the Dask cluster cancelled a task of this study ({error or 'no reason given'}); run it again"
            return (f"lost the Dask scheduler at {self.scheduler} ({type(error).__name__}: {error}); "
                    f"the study was stopped")
        return None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "scheduler": self.scheduler, "workers": self.workers()}

    def close(self) -> None:
        self.client.close()
