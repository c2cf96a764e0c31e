#!/usr/bin/env python3
"""Benchmark of the studies (hosting capacity, time series, batch) against engine floors, in one run.

    python bench/studies_bench.py            # full run: every bus, 8760 hours, 200 cases
    python bench/studies_bench.py --quick    # smoke run: a handful of buses, 336 hours, 10 cases

In order:
  1. Floors, in this process with opendssdirect alone (no Flask, none of our classes): the hosting capacity of
     every bus (the same doubling and bisection, the same criteria, each trial rolled back as a dry run is), and
     the 8760-hour series (altdss batch setters for the loads, one solve and a few reads per hour).
  2. Hosting capacity through the API (`python api.py --workers 1`, started as a user starts it): a 4-bus
     warm-up study, then the timed one, its capacities compared with the floor's.
  3. `--workers 2` (the local pool): a 24-hour warm-up series, the timed series (fresh workers), the hosting
     capacity as in 2, a batch of cases (add_generator at N/2 buses x 2 sizes), the series again (on workers that
     ran the other studies, whose engines keep every generator those studies added, disabled), and GET /state
     latency from one keep-alive client, idle and during an all-bus hosting capacity study (cancelled after).
  4. A Dask cluster started here (`dask scheduler`, `dask worker --nworkers 2 --nthreads 1`) and a server with
     --dask-scheduler: the hosting capacity as in 2. Then the Dask per-task overhead: the same tasks through
     distributed.Client and through a ProcessPoolExecutor set up as the local pool.
  5. The floors again: the machine drifts, so each target uses the mean of the two floor runs.
Each timed study runs from POST to the finished job (with its result) in the client's hand: POST ?wait=30,
then GET /jobs/<id> every 20 ms. Each phase records how much CPU processes outside this run used.
A table on stdout; every figure, with the machine, in bench/results/studies-<timestamp>.json.
Exit status 1 when an answer is wrong (an HTTP error, a failed job); a missed target is only reported as FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench/bench.py ahead of the bench/ folder seen from the repo
sys.path.append(str(HERE.parent))  # the repo, for studies.tasks (Dask overhead)
import bench as core  # noqa: E402  (bench/bench.py: Server, Client, check, stats_ms, environment)
import report  # noqa: E402  (bench/report.py: verdict, environment)
from engine_floor import MASTER_FILE, REPO  # noqa: E402
NO_GENERATOR_BUSES = ("610", "94_open", "300_open")
SHAPE_FILE = REPO / "Test_Systems" / "IEEE_123_Bus-G" / "shapes" / "residential.csv"
TAP_STEP_PU = 0.00625
# Hosting capacity criteria: the API's defaults (studies/hosting_capacity.py, Criteria).
STEP_KW, MAX_KW, V_HIGH, V_LOW, THERMAL_PCT, THERMAL_MARGIN = 10.0, 10_000.0, 1.05, 0.95, 100.0, 1.0
BATCH_KW = (100.0, 400.0)  # two sizes per bus
POLL_S = 0.02

# Targets (value <= target).
TARGET_POOL = 1.2    # API wall time / (floor wall time / workers)
TARGET_DASK = 1.25   # Dask wall time / local pool wall time, same number of workers
TARGET_SERIES = 1.3  # API wall time / floor wall time
TARGET_LATENCY = 1.5  # GET /state during a study / idle, p50 and p90


def values(batch_property: Any) -> Any:
    return batch_property() if callable(batch_property) else batch_property


def terminal1_phases(conductors: np.ndarray, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of terminal 1's phase conductors in a flattened two-terminal Currents array, and where each
    element's run starts among them."""
    starts = np.concatenate(([0], np.cumsum(2 * conductors)[:-1]))
    picks = np.concatenate([np.arange(s, s + p) for s, p in zip(starts, phases)])
    return picks, np.concatenate(([0], np.cumsum(phases)[:-1]))


# ----------------------------------------------------------------------------------------------------- floors
class Engine:
    """The feeder in one opendssdirect context, compiled and solved."""

    def __init__(self) -> None:
        d = opendssdirect.NewContext()
        d.Basic.AllowChangeDir(False)
        d.Text.Command(f"Compile [{MASTER_FILE}]")
        d.Solution.Mode(0)
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise core.BenchError("floor: the base case did not converge")
        self.d, self.b = d, d.to_altdss()
        self.windings = []
        for control in d.RegControls.AllNames():
            d.RegControls.Name(control)
            self.windings.append((d.RegControls.Transformer(), d.RegControls.Winding()))

    def taps(self) -> list[float]:
        out = []
        for transformer, winding in self.windings:
            self.d.Transformers.Name(transformer)
            self.d.Transformers.Wdg(winding)
            out.append(self.d.Transformers.Tap())
        return out

    def set_taps(self, taps: list[float]) -> None:
        for (transformer, winding), tap in zip(self.windings, taps):
            self.d.Transformers.Name(transformer)
            self.d.Transformers.Wdg(winding)
            self.d.Transformers.Tap(tap)

    def buses(self) -> list[tuple[str, list[int], float]]:
        """(name, sorted nodes, line-to-neutral kV base) of every bus that can host a generator."""
        out = []
        for bus in self.d.Circuit.AllBusNames():
            if bus not in NO_GENERATOR_BUSES:
                self.d.Circuit.SetActiveBus(bus)
                out.append((bus, sorted(self.d.Bus.Nodes()), self.d.Bus.kVBase()))
        return out


class HostingCapacityFloor(Engine):
    """Each trial: set kW, enable, solve, read voltages and terminal-1 currents; then disable, restore the
    regulator taps, solve (as a dry run rolls back)."""

    def __init__(self) -> None:
        super().__init__()
        b = self.b
        self.line_picks, self.line_starts = terminal1_phases(np.asarray(values(b.Line.NumConductors)),
                                                             np.asarray(values(b.Line.Phases)))
        self.xf_picks, self.xf_starts = terminal1_phases(np.asarray(values(b.Transformer.NumConductors)),
                                                         np.asarray(values(b.Transformer.Phases)))
        self.norm_amps = np.concatenate([np.asarray(values(b.Line.NormAmps), dtype=float),
                                         np.asarray(values(b.Transformer.NormAmps), dtype=float)])
        self.base_taps = self.taps()
        self.own_v, self.own_loading = np.asarray(self.d.Circuit.AllBusMagPu()), self.loading()
        self.created: set[str] = set()
        self.trials = 0

    def loading(self) -> np.ndarray:
        line = np.abs(np.asarray(values(self.b.Line.Currents))[self.line_picks])
        xf = np.abs(np.asarray(values(self.b.Transformer.Currents))[self.xf_picks])
        return 100.0 * np.concatenate([np.maximum.reduceat(line, self.line_starts),
                                       np.maximum.reduceat(xf, self.xf_starts)]) / self.norm_amps

    def set_generator(self, name: str, kw: float, enabled: bool) -> None:
        self.d.Generators.Name(name)
        self.d.Generators.kW(kw)
        self.d.Circuit.SetActiveElement(f"Generator.{name}")
        self.d.CktElement.Enabled(enabled)

    def violation(self, bus: str, nodes: list[int], kv: float, kw: float) -> str | None:
        """The first kind of violation of one trial, or None."""
        d, name = self.d, f"hc_{bus}_{''.join(map(str, nodes))}"
        self.trials += 1
        if name in self.created:
            self.set_generator(name, kw, True)
        else:
            d.Text.Command(f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={len(nodes)} "
                           f"kv={kv:.6f} kw={kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
            self.created.add(name)
        try:
            d.Solution.Solve()
            converged = d.Solution.Converged()
        except opendssdirect.DSSException:
            converged = False
        v = np.asarray(d.Circuit.AllBusMagPu())
        if not converged or not np.all(np.isfinite(v)) or v.max() > 2.0:
            found = "not_converged"
        elif np.any(v > V_HIGH):
            found = "voltage_high"
        elif np.any((v < V_LOW) & (v < self.own_v)):
            found = "voltage_low"
        else:
            loading = self.loading()
            hot = (loading > THERMAL_PCT) & (loading > self.own_loading + THERMAL_MARGIN)
            found = "thermal" if np.any(hot) else None
        self.set_generator(name, 0.0, False)
        self.set_taps(self.base_taps)
        d.Solution.Solve()
        return found

    def capacity(self, bus: str, nodes: list[int], kv_ln: float) -> dict[str, Any]:
        """Doubling from one step until a trial violates (or MAX_KW passes), then bisection."""
        if {1, 2, 3} <= set(nodes):
            use, kv = [1, 2, 3], kv_ln * 3 ** 0.5
        else:
            use, kv = nodes[:1], kv_ln
        first_trial = self.trials
        steps_max = max(1, int(MAX_KW / STEP_KW + 1e-9))
        passing, failing, bound, steps = 0, None, None, 1
        while failing is None:
            steps = min(steps, steps_max)
            found = self.violation(bus, use, kv, steps * STEP_KW)
            if found:
                failing, bound = steps, found
            else:
                passing = steps
                if steps == steps_max:
                    break
                steps *= 2
        while failing is not None and failing - passing > 1:
            middle = (passing + failing) // 2
            found = self.violation(bus, use, kv, middle * STEP_KW)
            if found:
                failing, bound = middle, found
            else:
                passing = middle
        return {"bus": bus, "phases": len(use), "hosting_capacity_kW": passing * STEP_KW,
                "kind": bound or "max_kw", "trials": self.trials - first_trial}


def hosting_capacity_floor(buses: list[str] | None) -> dict[str, Any]:
    """Wall time of the trials (the compile apart: the server's workers are warm), trials, a row per bus."""
    started = time.perf_counter()
    floor = HostingCapacityFloor()
    compiled = time.perf_counter()
    rows = [floor.capacity(*bus) for bus in floor.buses() if buses is None or bus[0] in buses]
    done = time.perf_counter()
    return {"wall_s": done - compiled, "compile_s": compiled - started, "buses": len(rows), "trials": floor.trials,
            "ms_per_trial": 1000 * (done - compiled) / floor.trials, "rows": rows}


def series_floor(hours: int) -> dict[str, Any]:
    """Each hour: every load's kW and kvar = base x the residential multiplier (altdss batch setters), solve, read
    total power, losses, min/max voltage and the taps. The taps carry over from hour to hour."""
    compiled = time.perf_counter()
    engine = Engine()
    started = time.perf_counter()
    d, b = engine.d, engine.b
    base_kw, base_kvar = np.asarray(values(b.Load.kW), dtype=float), np.asarray(values(b.Load.kvar), dtype=float)
    multipliers = np.loadtxt(SHAPE_FILE)[:hours]
    rows = []
    for m in multipliers:
        b.Load.kW = base_kw * m
        b.Load.kvar = base_kvar * m
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise core.BenchError("series floor: an hour did not converge")
        v = np.asarray(d.Circuit.AllBusMagPu())
        rows.append({"substation_kW": -d.Circuit.TotalPower()[0], "losses_kW": d.Circuit.Losses()[0] / 1000,
                     "min_voltage_pu": float(v.min()), "max_voltage_pu": float(v.max()),
                     "taps": [round((tap - 1.0) / TAP_STEP_PU) for tap in engine.taps()]})
    return {"wall_s": time.perf_counter() - started, "compile_s": started - compiled, "hours": hours, "rows": rows}


# ----------------------------------------------------------------------------------------------------- the API
class Api:
    """A server started as a user starts it, and one keep-alive client."""

    def __init__(self, label: str, *args: str) -> None:
        self.server = core.Server(label, extra_args=args)
        self.server.start()
        self.client = core.Client(self.server)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], int]:
        status, ctype, data, ns = self.client.call(method, path, None if body is None else orjson.dumps(body))
        document = core.check(200 if status in (200, 202) else status, ctype, data, f"{method} {path}")
        return status, document, ns

    def study(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run a study to the end: wall time from POST to the finished job in hand, with its result."""
        started = time.perf_counter()
        job = self.call("POST", f"/studies/{route}?wait=30", body)[1]["job"]
        while job["status"] in ("queued", "running"):
            time.sleep(POLL_S)
            job = self.call("GET", f"/jobs/{job['id']}")[1]["job"]
        wall = time.perf_counter() - started
        if job["status"] != "done":
            raise core.BenchError(f"POST /studies/{route}: job {job['status']}: {job['error']}")
        return {"wall_s": wall, "job": job, "tasks": job["tasks"]["total"]}

    def stop(self) -> dict[str, Any]:
        self.client.close()
        info = self.server.stop()
        self.server.cleanup()
        return info


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks: utime + stime + cutime + cstime) of every process on the machine."""
    table = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
        except OSError:  # gone meanwhile
            pass
    return table


def cpu_seconds(pids: list[int]) -> float:
    return sum(core.process_cpu_ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """The share of the machine's CPUs that processes outside this run used during each phase (other people's
    work on a shared machine disturbs the figures): the machine's busy ticks minus those of this process and its
    descendants (their reaped children included)."""

    def __init__(self) -> None:
        self.pct: dict[str, float] = {}

    @staticmethod
    def read() -> tuple[float, int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            v = [int(x) for x in stat.readline().split()[1:]]
        table = processes()
        ours, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            ours += table.get(pid, (0, 0))[1]
            todo += [child for child, (parent, _) in table.items() if parent == pid]
        return time.perf_counter(), v[0] + v[1] + v[2] + sum(v[5:8]), ours  # user nice system irq softirq steal

    @contextlib.contextmanager
    def during(self, phase: str) -> Iterator[None]:
        start = self.read()
        yield
        end = self.read()
        capacity = (end[0] - start[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        self.pct[phase] = max(0.0, 100 * ((end[1] - start[1]) - (end[2] - start[2])) / capacity)


def job_seconds(job: dict[str, Any]) -> float:
    """The job's own started_at to finished_at (ms resolution): the run without HTTP and polling."""
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def hosting_capacity_api(api: Api, buses: list[str], floor: dict[str, Any],
                         worker_pids: Callable[[], list[int]]) -> dict[str, Any]:
    """A warm-up study of 4 buses (spawns and compiles the workers), then the timed one; the CPU its workers
    used; every bus whose capacity differs from the floor's."""
    first_four = [row["bus"] for row in floor["rows"][:4]]
    warm_up = api.study("hosting_capacity", {"buses": first_four, "step_kw": STEP_KW})
    pids = worker_pids()
    cpu_before = cpu_seconds(pids)
    run = api.study("hosting_capacity", {"buses": buses, "step_kw": STEP_KW})
    workers_cpu = cpu_seconds(pids) - cpu_before
    rows = [row for row in run["job"]["result"]["buses"] if row["reason"] is None]
    by_bus = {row["bus"]: row for row in floor["rows"]}
    differ = [{"bus": r["bus"], "api_kW": r["hosting_capacity_kW"], "api_kind": r["limited_by"]["kind"],
               "floor_kW": by_bus.get(r["bus"], {}).get("hosting_capacity_kW"),
               "floor_kind": by_bus.get(r["bus"], {}).get("kind")}
              for r in rows if r["hosting_capacity_kW"] != by_bus.get(r["bus"], {}).get("hosting_capacity_kW")]
    trials = sum(r["trials"] for r in rows)
    return {"wall_s": run["wall_s"], "job_s": job_seconds(run["job"]), "warm_up_s": warm_up["wall_s"],
            "tasks": run["tasks"], "buses": len(rows), "trials": trials, "workers": len(pids), "workers_cpu_s": workers_cpu,
            "worker_cpu_ms_per_trial": 1000 * workers_cpu / trials, "differ_from_floor": differ,
            "missing": sorted(set(by_bus) - {r["bus"] for r in rows})}


def series_api(api: Api, hours: int, floor: dict[str, Any]) -> dict[str, Any]:
    run = api.study("time_series", {"hours": hours, "start_hour": 0})
    rows = run["job"]["result"]["hours"]
    if len(rows) != hours:
        raise core.BenchError(f"time series: {len(rows)} hours, expected {hours}")
    pairs = list(zip(rows, floor["rows"]))
    return {"wall_s": run["wall_s"], "job_s": job_seconds(run["job"]), "tasks": run["tasks"], "hours": hours,
            "max_abs_diff_substation_kW": max(abs(r["substation_kW"] - f["substation_kW"]) for r, f in pairs),
            "max_abs_diff_losses_kW": max(abs(r["losses_kW"] - f["losses_kW"]) for r, f in pairs),
            "max_abs_diff_voltage_pu": max(max(abs(r["min_voltage_pu"] - f["min_voltage_pu"]),
                                               abs(r["max_voltage_pu"] - f["max_voltage_pu"])) for r, f in pairs),
            "hours_taps_differ": sum(list(r["taps"].values()) != f["taps"] for r, f in pairs)}


def batch_api(api: Api, buses: list[tuple[str, list[int], float]]) -> dict[str, Any]:
    cases = [{"name": f"{bus} {kw:g} kW", "changes": [{"op": "add_generator", "bus_name": bus, "kw": kw,
                                                       "phases": 3 if {1, 2, 3} <= set(nodes) else 1}]}
             for bus, nodes, _ in buses for kw in BATCH_KW]
    run = api.study("batch", {"cases": cases})
    rows = run["job"]["result"]["cases"]
    errors = [row for row in rows if row["error"]]
    if len(rows) != len(cases) or errors:
        raise core.BenchError(f"batch: {len(rows)} rows for {len(cases)} cases, errors {errors[:3]}")
    return {"wall_s": run["wall_s"], "job_s": job_seconds(run["job"]), "tasks": run["tasks"], "cases": len(cases),
            "ms_per_case": 1000 * run["wall_s"] / len(cases)}


def state_latency(api: Api, n: int) -> dict[str, Any]:
    samples = []
    for _ in range(n):
        status, document, ns = api.call("GET", "/state")
        if status != 200 or "results" not in document:
            raise core.BenchError(f"GET /state: HTTP {status}")
        samples.append(ns)
    return core.stats_ms(samples)


def latency_api(api: Api, n: int) -> dict[str, Any]:
    """GET /state from one keep-alive client, idle, then while an all-bus hosting capacity study runs (the study
    is cancelled once the sample is taken)."""
    state_latency(api, 20)  # warm-up
    idle = state_latency(api, n)
    job = api.call("POST", "/studies/hosting_capacity", {"buses": ["all"], "step_kw": STEP_KW})[1]["job"]
    time.sleep(0.5)  # the tasks are on the workers
    busy = state_latency(api, n)
    job = api.call("GET", f"/jobs/{job['id']}")[1]["job"]
    ran_throughout = job["status"] == "running"
    api.call("DELETE", f"/jobs/{job['id']}")
    return {"idle": idle, "during_study": busy, "study_ran_throughout": ran_throughout,
            "study_progress_at_end": job["progress"]}


# ----------------------------------------------------------------------------------------------------- Dask
class DaskCluster:
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1` on this machine, PYTHONPATH the repo."""

    def __init__(self, workers: int = 2) -> None:
        self.address = f"tcp://127.0.0.1:{core.free_port()}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        dask = [sys.executable, "-m", "dask"]
        quiet = {"cwd": REPO, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port",
                                           self.address.rsplit(":", 1)[1], "--no-dashboard"], **quiet)
        self.workers = subprocess.Popen([*dask, "worker", self.address, "--nworkers", str(workers), "--nthreads",
                                         "1", "--no-dashboard"], **quiet)
        with self.client() as client:
            client.wait_for_workers(workers, timeout=60)

    def client(self) -> Any:
        import distributed

        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def stop(self) -> None:
        for process in (self.workers, self.scheduler):
            process.terminate()
        for process in (self.workers, self.scheduler):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def per_task_ms(submit: Callable[[Callable, Any], Any], n: int, function: Callable, argument: Any
                ) -> dict[str, float]:
    """ms per task, wall time from the first submit to the last result in hand, divided by n: one at a time
    (submit, wait for its result, submit the next) and all n submitted at once."""
    for future in [submit(function, argument) for _ in range(4)]:  # warm-up
        future.result()
    started = time.perf_counter()
    for _ in range(n):
        submit(function, argument).result()
    one_at_a_time = time.perf_counter() - started
    started = time.perf_counter()
    for future in [submit(function, argument) for _ in range(n)]:
        future.result()
    return {"one_at_a_time_ms": 1000 * one_at_a_time / n, "all_at_once_ms": 1000 * (time.perf_counter() - started) / n}


def dask_overhead(cluster: DaskCluster, n: int, bus: tuple[str, list[int], float]) -> dict[str, Any]:
    """The same tasks from this process through distributed.Client (the cluster's 2 workers) and through a
    ProcessPoolExecutor of 2 spawned workers set up as the server's local pool (warm engine): `abs(-1)` (nothing
    to do), and a 1-bus hosting capacity task with max_kw = step_kw (one trial: two solves)."""
    from studies.executors import start_worker
    from studies.tasks import engine_settings, run_task

    settings = engine_settings(None, (0.95, 1.05))
    name, nodes, _ = bus
    one_trial = {"kind": "hosting_capacity", "engine": settings, "ops": [], "work": {
        "index": 0, "buses": [[name, 3 if {1, 2, 3} <= set(nodes) else 1]],
        "criteria": {"step_kw": STEP_KW, "max_kw": STEP_KW}}}
    tasks = {"trivial": (abs, -1), "one_trial_hc": (run_task, one_trial)}
    out: dict[str, Any] = {"tasks": n}
    with cluster.client() as client:
        out["dask"] = {kind: per_task_ms(lambda f, a: client.submit(f, a, pure=False), n, *task)
                       for kind, task in tasks.items()}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker,
                             initargs=(settings,)) as pool:
        out["process_pool"] = {kind: per_task_ms(pool.submit, n, *task) for kind, task in tasks.items()}
    out["dask_minus_pool_ms"] = {kind: {how: out["dask"][kind][how] - out["process_pool"][kind][how]
                                        for how in ("one_at_a_time_ms", "all_at_once_ms")} for kind in tasks}
    return out


# ----------------------------------------------------------------------------------------------------- report
def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    floor_s, hc, lat = r["floor"]["hosting_capacity"]["wall_s"], r["hosting_capacity"], r["latency"]
    rows = [
        ("HC --workers 1 / floor", hc["workers_1"]["wall_s"] / floor_s, TARGET_POOL),
        ("HC --workers 2 / (floor / 2)", hc["workers_2"]["wall_s"] / (floor_s / 2), TARGET_POOL),
        ("HC Dask 2 workers / --workers 2", hc["dask_2"]["wall_s"] / hc["workers_2"]["wall_s"], TARGET_DASK),
        ("time series API / floor", r["time_series"]["wall_s"] / r["floor"]["time_series"]["wall_s"], TARGET_SERIES),
        ("GET /state p50 study / idle", lat["during_study"]["p50"] / lat["idle"]["p50"], TARGET_LATENCY),
        ("GET /state p90 study / idle", lat["during_study"]["p90"] / lat["idle"]["p90"], TARGET_LATENCY),
    ]
    out = [{"name": name, "value": value, "target": f"<= {target:g}", "result": report.verdict(value <= target)}
           for name, value, target in rows]
    differ = sum(len(run["differ_from_floor"]) + len(run["missing"]) for run in hc.values())
    out.append({"name": "HC buses differing from floor", "value": differ, "target": "0",
                "result": report.verdict(differ == 0)})
    return out


def print_report(r: dict[str, Any]) -> None:
    env, fl, hc = r["environment"], r["floor"], r["hosting_capacity"]
    print(f"\nMachine: {env['cpu']}, {env['cpus_usable']} usable of {env['cpu_count']} CPUs, Python {env['python']}, "
          f"OpenDSSDirect.py {env['opendssdirect']} ({env['engine'].split(' revision')[0]})")
    f = fl["hosting_capacity"]
    runs = ", ".join(f"{run:.2f}" for run in f["runs"])
    print(f"\nHosting capacity, {f['buses']} buses, step {STEP_KW:g} kW      wall s   trials  CPU ms/trial")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {f['wall_s']:7.2f} {f['trials']:>8} {f['ms_per_trial']:>13.2f}"
          f"   (mean of {runs})")
    for key, label in (("workers_1", "API --workers 1"), ("workers_2", "API --workers 2"),
                       ("dask_2", "API --dask-scheduler, 2 workers")):
        run = hc[key]
        print(f"  {label:<36} {run['wall_s']:7.2f} {run['trials']:>8} {run['worker_cpu_ms_per_trial']:>13.2f}"
              f"   (job {run['job_s']:.2f} s, 4-bus warm-up {run['warm_up_s']:.2f} s, "
              f"{len(run['differ_from_floor'])} buses differ from the floor)")
        for d in run["differ_from_floor"]:
            print(f"      bus {d['bus']}: API {d['api_kW']} kW ({d['api_kind']}), floor {d['floor_kW']} kW "
                  f"({d['floor_kind']})")
    fts = fl["time_series"]
    print(f"\nTime series, {fts['hours']} hours        wall s   (floor: mean of "
          f"{', '.join(f'{run:.2f}' for run in fts['runs'])})")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {fts['wall_s']:7.2f}")
    for key, label in (("time_series", "API, fresh workers"), ("time_series_after_studies", "API, after HC + batch")):
        ts = r[key]
        print(f"  {label:<36} {ts['wall_s']:7.2f}   (job {ts['job_s']:.2f} s, {ts['tasks']} chunks; max |API - floor|: "
              f"{ts['max_abs_diff_substation_kW']:.1e} kW, {ts['max_abs_diff_voltage_pu']:.1e} pu; "
              f"{ts['hours_taps_differ']} hours with other taps)")
    b = r["batch"]
    print(f"\nBatch, {b['cases']} cases (--workers 2, after the HC study): {b['wall_s']:.2f} s, "
          f"{b['ms_per_case']:.2f} ms per case ({b['tasks']} tasks)")
    lat = r["latency"]
    print(f"\nGET /state, ms            {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8}")
    for key in ("idle", "during_study"):
        s = lat[key]
        print(f"  {key:<22} {s['n']:>6} {s['p50']:>8.3f} {s['p90']:>8.3f} {s['p99']:>8.3f}")
    if not lat["study_ran_throughout"]:
        print("  [the study finished before the sample did]")
    o = r["dask_overhead"]
    print(f"\nPer-task time, ms ({o['tasks']} tasks, 2 workers)   one at a time   all at once")
    for kind in ("trivial", "one_trial_hc"):
        for executor in ("dask", "process_pool"):
            s = o[executor][kind]
            print(f"  {kind + ', ' + executor:<40} {s['one_at_a_time_ms']:>10.3f} {s['all_at_once_ms']:>12.3f}")
    print(f"\nTargets:\n  {'figure':<34} {'value':>8}  {'target':<8} result")
    for t in r["targets"]:
        value = f"{t['value']:.3f}" if isinstance(t["value"], float) else str(t["value"])
        print(f"  {t['name']:<34} {value:>8}  {t['target']:<8} {t['result']}")
    noisy = {phase: pct for phase, pct in r["other_processes_cpu_pct"].items() if pct > 5}
    print("\nOther processes used " + (", ".join(f"{pct:.0f} % of the CPUs during {phase}" for phase, pct in
                                               noisy.items()) + ": those figures are disturbed" if noisy
                                     else "under 5 % of the CPUs in every phase"))
    print(f"Total run {r['total_s']:.0f} s; JSON: {r['out']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 buses, 336 hours, 10 cases, 60 requests, 40 tasks")
    parser.add_argument("--buses", type=int, help="hosting capacity of the first N buses (default all)")
    parser.add_argument("--hours", type=int, help="time series hours (default 8760)")
    parser.add_argument("--cases", type=int, help="batch cases, two sizes per bus (default 200)")
    parser.add_argument("--requests", type=int, help="GET /state per latency sample (default 300)")
    parser.add_argument("--tasks", type=int, help="tasks per Dask overhead figure (default 200)")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/studies-<timestamp>.json)")
    args = parser.parse_args(argv)
    for name, full, quick in (("buses", None, 6), ("hours", 8760, 336), ("cases", 200, 10), ("requests", 300, 60),
                              ("tasks", 200, 40)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.out = args.out or REPO / "bench" / "results" / f"studies-{time.strftime('%Y%m%d-%H%M%S')}.json"
    return args


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A floor measured twice (start and end of the run: the machine drifts): its mean wall time, both runs."""
    wall = sum(run["wall_s"] for run in runs) / len(runs)
    out = {**runs[0], "wall_s": wall, "runs": [run["wall_s"] for run in runs]}
    if "trials" in out:
        out["ms_per_trial"] = 1000 * wall / out["trials"]
    return out


def pool_workers(api: Api) -> list[int]:
    """The local pool's worker processes (children of the server spawned by multiprocessing)."""
    return [pid for pid, (parent, _) in processes().items()
            if parent == api.server.process.pid and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    hostable = Engine().buses()
    chosen = hostable if args.buses is None else hostable[:args.buses]
    selected = None if args.buses is None else [bus for bus, _, _ in chosen]
    hc_buses = ["all"] if selected is None else selected
    r: dict[str, Any] = {"environment": report.environment(), "config": {k: str(v) for k, v in vars(args).items()},
                         "hosting_capacity": {}}
    other, hc, servers = OtherLoad(), r["hosting_capacity"], {}
    print(f"floors: hosting capacity of {len(chosen)} buses, {args.hours}-hour series ...", flush=True)
    with other.during("floor HC"):
        hc_floors = [hosting_capacity_floor(selected)]
    with other.during("floor series"):
        ts_floors = [series_floor(args.hours)]
    try:
        print("API --workers 1 ...", flush=True)
        api = Api("workers_1", "--workers", "1")
        try:
            with other.during("HC --workers 1"):
                hc["workers_1"] = hosting_capacity_api(api, hc_buses, hc_floors[0], lambda: pool_workers(api))
        finally:
            servers["workers_1"] = api.stop()
        print("API --workers 2 ...", flush=True)
        api = Api("workers_2", "--workers", "2")
        try:
            api.study("time_series", {"hours": 24, "start_hour": 0})  # warm-up
            with other.during("series"):
                r["time_series"] = series_api(api, args.hours, ts_floors[0])
            with other.during("HC --workers 2"):
                hc["workers_2"] = hosting_capacity_api(api, hc_buses, hc_floors[0], lambda: pool_workers(api))
            with other.during("batch"):
                r["batch"] = batch_api(api, hostable[:args.cases // 2])
            r["time_series_after_studies"] = series_api(api, args.hours, ts_floors[0])
            with other.during("latency"):
                r["latency"] = latency_api(api, args.requests)
        finally:
            servers["workers_2"] = api.stop()
        print("Dask cluster ...", flush=True)
        cluster = DaskCluster(2)
        try:
            with cluster.client() as client:
                dask_pids = list(client.run(os.getpid).values())
            api = Api("dask_2", "--dask-scheduler", cluster.address)
            try:
                with other.during("HC Dask"):
                    hc["dask_2"] = hosting_capacity_api(api, hc_buses, hc_floors[0], lambda: dask_pids)
            finally:
                servers["dask_2"] = api.stop()
            with other.during("Dask overhead"):
                r["dask_overhead"] = dask_overhead(cluster, args.tasks, chosen[0])
        finally:
            cluster.stop()
    except core.BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("floors again (drift) ...", flush=True)
    with other.during("floors again"):
        hc_floors.append(hosting_capacity_floor(selected))
        ts_floors.append(series_floor(args.hours))
    r["floor"] = {"hosting_capacity": mean_of(hc_floors), "time_series": mean_of(ts_floors)}
    del r["floor"]["time_series"]["rows"]  # compared with the API's above, not kept
    r["servers"], r["other_processes_cpu_pct"] = servers, other.pct
    r["targets"] = targets(r)
    r["total_s"] = time.perf_counter() - started
    r["out"] = str(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    print_report(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
