"""Jobs: a study running in the background, with progress, a result, and cancellation.

Each job has a runner thread that feeds its plan's tasks to the executor (a few per worker at a time, so a
cancellation or another job is never stuck behind a long queue), takes the results as they come, and updates
the progress. Jobs live in memory: a restart forgets them.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections import deque
from typing import Any

from scenarios.journal import utc_now
from studies.executors import Executor
from studies.plans import Plan

KEEP_FINISHED = 100  # finished jobs kept for GET /jobs/<id>; older ones are forgotten first
POLL_S = 0.1


class StudyError(Exception):
    """A study request refused: unknown job (404), too many jobs (429), a bad size or value (422)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


class Job:
    def __init__(self, plan: Plan) -> None:
        self.id = secrets.token_urlsafe(12)
        self.plan = plan
        self.kind = plan.kind
        self.status = "queued"
        self.tasks_done = 0
        self.created_at = utc_now()
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self.error: str | None = None
        self.result: dict[str, Any] | None = None
        self.cancel_requested = threading.Event()
        self.finished = threading.Event()

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        return self.tasks_done / self.plan.total if self.plan.total else 0.0

    def describe(self, with_result: bool = False) -> dict[str, Any]:
        described = {"id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
                     "tasks": {"done": self.tasks_done, "total": self.plan.total}, "scenario": self.plan.scenario,
                     "sequence": self.plan.sequence, "created_at": self.created_at, "started_at": self.started_at,
                     "finished_at": self.finished_at, "error": self.error}
        if with_result and self.status == "done":
            described["result"] = self.result
        return described


class JobManager:
    def __init__(self, executor: Executor, max_jobs: int = 4) -> None:
        self.executor = executor
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, plan: Plan) -> Job:
        with self._lock:
            active = sum(job.status in ("queued", "running") for job in self._jobs.values())
            if active >= self.max_jobs:
                raise StudyError(429, f"jobs: {active} studies are queued or running, the limit is {self.max_jobs}; "
                                      f"wait for one to finish, cancel one (DELETE /jobs/<id>), or start the server "
                                      f"with --max-jobs N", field="jobs")
            job = Job(plan)
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True).start()
        return job

    def _forget_old(self) -> None:
        finished = [job for job in self._jobs.values() if job.finished.is_set()]
        for job in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise StudyError(404, f"job: no job {job_id!r}; GET /jobs lists them (finished jobs are kept until "
                                  f"{KEEP_FINISHED} newer ones have finished, and not across restarts)", field="job")
        return job

    def list(self) -> list[dict[str, Any]]:
        return [job.describe() for job in list(self._jobs.values())]

    def cancel(self, job_id: str, wait_s: float = 1.5) -> Job:
        job = self.get(job_id)
        job.cancel_requested.set()
        job.finished.wait(wait_s)
        return job

    # ------------------------------------------------------------------ the runner
    def _run(self, job: Job) -> None:
        job.status, job.started_at = "running", utc_now()
        finished: queue.Queue = queue.Queue()
        pending = deque(job.plan.first_tasks())
        in_flight: dict[Any, dict[str, Any]] = {}
        limit = 2 * max(1, self.executor.workers())
        try:
            while pending or in_flight:
                if job.cancel_requested.is_set():
                    self._stop(in_flight)
                    job.status = "cancelled"
                    return
                while pending and len(in_flight) < limit:
                    task = pending.popleft()
                    future = self.executor.submit(task)
                    in_flight[future] = task
                    future.add_done_callback(finished.put)
                try:
                    future = finished.get(timeout=POLL_S)
                except queue.Empty:
                    self.executor.check()  # a lost cluster fails the job instead of leaving it waiting
                    continue
                task = in_flight.pop(future)
                pending.extend(job.plan.take(task, future.result()))
                job.tasks_done += 1
            job.result = job.plan.result()
            job.status = "done"
        except Exception as error:  # a task failed, a worker died, a cluster was lost: the job fails, the server lives
            self._stop(in_flight)
            job.error = self.executor.explain(error) or f"{type(error).__name__}: {error}"
            job.status = "failed"
        finally:
            job.finished_at = utc_now()
            job.finished.set()

    @staticmethod
    def _stop(in_flight: dict[Any, dict[str, Any]]) -> None:
        for future in in_flight:
            future.cancel()

    def close(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel_requested.set()
        deadline = time.monotonic() + 2
        for job in list(self._jobs.values()):
            job.finished.wait(max(0.0, deadline - time.monotonic()))
        self.executor.close()
