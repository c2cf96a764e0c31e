"""What the bench reads from the machine: memory and CPU time of processes (/proc), the share of the CPUs other
processes used while a phase ran, a server's study workers, and the machine itself (CPU, versions, commit)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in kB."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command's name: state, ppid, … (field 3 of the man page is index 0)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time the processes used so far (all their threads), in seconds."""
    return sum(int(f[11]) + int(f[12]) for f in map(stat_fields, pids)) / CLOCK_TICKS


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks: utime + stime + cutime + cstime) of every process on the machine."""
    table = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                fields = stat_fields(entry.name)
                table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
        except OSError:  # gone meanwhile
            pass
    return table


def pool_workers(server_pid: int) -> list[int]:
    """A server's local pool of study workers: its children spawned by multiprocessing."""
    workers = []
    for pid, (parent, _) in processes().items():
        try:
            if parent == server_pid and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            pass
    return workers


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class CpuMeter:
    """How much of the machine's CPU other processes used while we measured (noise from outside the benchmark):
    the machine's busy ticks from /proc/stat minus those of this process and its descendants (servers, their
    workers and hosts, wrk, a Dask cluster; children reaped meanwhile count through their parent)."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            v = [int(x) for x in stat.readline().split()[1:]]
        table = processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        ours, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            ours += table.get(pid, (0, 0))[1]
            todo += children.get(pid, [])
        return time.perf_counter(), v[0] + v[1] + v[2] + sum(v[5:8]), ours  # user nice system irq softirq steal

    def stop(self) -> dict[str, float]:
        """CPU used, as a percentage of all CPUs over the interval: by everything, by us, by other processes."""
        try:
            end = self._read()
        except OSError:
            return {}
        capacity = (end[0] - self.start[0]) * CLOCK_TICKS * (os.cpu_count() or 1)
        busy, ours = end[1] - self.start[1], end[2] - self.start[2]
        return {"all_pct": 100 * busy / capacity, "bench_and_server_pct": 100 * ours / capacity,
                "other_processes_pct": max(0.0, 100 * (busy - ours) / capacity)}


@contextlib.contextmanager
def other_load(into: dict[str, float], phase: str) -> Iterator[None]:
    """`into[phase]`: the share of the CPUs (%) other processes used while the block ran."""
    meter = CpuMeter()
    yield
    into[phase] = meter.stop().get("other_processes_pct", 0.0)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def environment() -> dict[str, Any]:
    """The machine and the code a run measured."""
    import opendssdirect

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                  timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "python": platform.python_version(), "python_executable": sys.executable,
        "opendssdirect": opendssdirect.__version__,
        "engine": opendssdirect.Basic.Version().split(";")[0].strip(),
        "flask": version("flask"), "waitress": version("waitress"), "orjson": version("orjson"),
        "numpy": version("numpy"), "cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": usable_cpus(),
        "platform": platform.platform(), "git_commit": git("rev-parse", "--short", "HEAD").strip(),
        "git_dirty_files": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()],
    }
