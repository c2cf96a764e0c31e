"""Studies on a Dask distributed cluster: the same tasks, sent to an existing scheduler's workers.

Imported only when a scheduler is named (`--dask-scheduler`, `IEEE123_DASK_SCHEDULER`), so a user who did not
ask for Dask never starts or imports it. Each worker compiles the feeder once (`WarmEngines`, a WorkerPlugin)
and keeps it warm; a task carries the scenario's ops, so any worker can take any task and Dask can reschedule
the tasks of a worker that dies.
"""

from __future__ import annotations

from concurrent.futures import CancelledError
from typing import Any

from distributed import Client, WorkerPlugin

from studies.executors import ExecutorUnavailable
from studies.tasks import run_task, warm_up


class WarmEngines(WorkerPlugin):
    """Compile the feeder in each worker when it starts (or joins), before its first task."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    def setup(self, worker: Any) -> None:
        warm_up(self.settings)


class DaskExecutor:
    name = "dask"

    def __init__(self, scheduler: str, engine_settings: dict[str, Any], connect_timeout_s: float = 5) -> None:
        self.scheduler = scheduler
        try:
            self.client = Client(scheduler, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ExecutorUnavailable(f"--dask-scheduler {scheduler}: no Dask scheduler answered within "
                                      f"{connect_timeout_s:g} s ({error}). Start one with `dask scheduler` and "
                                      f"workers with `dask worker {scheduler}`, or leave the option out to run "
                                      f"studies on this machine.") from error
        self.client.register_plugin(WarmEngines(engine_settings), name="ieee123-warm-engines")

    def submit(self, task: dict[str, Any]) -> Any:
        return self.client.submit(run_task, task, pure=False)

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
        a task dropped otherwise is said so."""
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
