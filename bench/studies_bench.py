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
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bench's modules
sys.path.append(str(HERE.parent))  # the repo, for studies.tasks (Dask overhead)
import hours_bench  # noqa: E402  (hosting capacity at two named hours against its floor)
import inverter_bench  # noqa: E402  (a volt-var change and a volt-var hosting capacity study against their floors)
from engine_floor import REPO, BenchError, stats_ms  # noqa: E402
from harness import POOL, Api, DaskCluster, mean_of, run_main  # noqa: E402
from machine import cpu_seconds, environment, other_load, pool_workers  # noqa: E402
from report import print_studies, studies_targets  # noqa: E402
from studies_floor import STEP_KW, Engine, hosting_capacity_floor, series_floor  # noqa: E402

BATCH_KW = (100.0, 400.0)  # two sizes per bus


# ----------------------------------------------------------------------------------------------------- the API
def hosting_capacity_api(api: Api, buses: list[str], floor: dict[str, Any],
                         worker_pids: Callable[[], list[int]]) -> dict[str, Any]:
    """A warm-up study of 4 buses (spawns and compiles the workers), then the timed one; the CPU its workers
    used; every bus whose capacity differs from the floor's."""
    first_four = [row["bus"] for row in floor["rows"][:4]]
    warm_up = api.study("hosting_capacity", {"buses": first_four, "step_kw": STEP_KW})
    pids = worker_pids()
    cpu_before = cpu_seconds(*pids)
    run = api.study("hosting_capacity", {"buses": buses, "step_kw": STEP_KW})
    workers_cpu = cpu_seconds(*pids) - cpu_before
    rows = [row for row in run["job"]["result"]["buses"] if row["reason"] is None]
    by_bus = {row["bus"]: row for row in floor["rows"]}
    differ = [{"bus": r["bus"], "api_kW": r["hosting_capacity_kW"], "api_kind": r["limited_by"]["kind"],
               "floor_kW": by_bus.get(r["bus"], {}).get("hosting_capacity_kW"),
               "floor_kind": by_bus.get(r["bus"], {}).get("kind")}
              for r in rows if r["hosting_capacity_kW"] != by_bus.get(r["bus"], {}).get("hosting_capacity_kW")]
    trials = sum(r["trials"] for r in rows)
    return {"wall_s": run["wall_s"], "job_s": run["job_s"], "warm_up_s": warm_up["wall_s"],
            "tasks": run["tasks"], "buses": len(rows), "trials": trials, "workers": len(pids), "workers_cpu_s": workers_cpu,
            "worker_cpu_ms_per_trial": 1000 * workers_cpu / trials, "differ_from_floor": differ,
            "missing": sorted(set(by_bus) - {r["bus"] for r in rows})}


def series_api(api: Api, hours: int, floor: dict[str, Any]) -> dict[str, Any]:
    run = api.study("time_series", {"hours": hours, "start_hour": 0})
    rows = run["job"]["result"]["hours"]
    if len(rows) != hours:
        raise BenchError(f"time series: {len(rows)} hours, expected {hours}")
    pairs = list(zip(rows, floor["rows"]))
    return {"wall_s": run["wall_s"], "job_s": run["job_s"], "tasks": run["tasks"], "hours": hours,
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
        raise BenchError(f"batch: {len(rows)} rows for {len(cases)} cases, errors {errors[:3]}")
    return {"wall_s": run["wall_s"], "job_s": run["job_s"], "tasks": run["tasks"], "cases": len(cases),
            "ms_per_case": 1000 * run["wall_s"] / len(cases)}


def state_latency(api: Api, n: int) -> dict[str, Any]:
    samples = []
    for _ in range(n):
        status, document, ns = api.call("GET", "/state")
        if status != 200 or "results" not in document:
            raise BenchError(f"GET /state: HTTP {status}")
        samples.append(ns)
    return stats_ms(samples)


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
def local_cluster() -> DaskCluster:
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1` on this machine, PYTHONPATH the repo."""
    dask = f"{shlex.quote(sys.executable)} -m dask"
    return DaskCluster([f"{dask} scheduler --host 127.0.0.1 --port {{port}} --no-dashboard",
                        f"{dask} worker tcp://127.0.0.1:{{port}} --nworkers {POOL} --nthreads 1 --no-dashboard"],
                       env={**os.environ, "PYTHONPATH": str(REPO)})


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
    from engine.settings import EngineSettings
    from studies.tasks import run_task

    settings = EngineSettings()
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    hostable = Engine().buses()
    chosen = hostable if args.buses is None else hostable[:args.buses]
    selected = None if args.buses is None else [bus for bus, _, _ in chosen]
    hc_buses = ["all"] if selected is None else selected
    r: dict[str, Any] = {"environment": environment(), "config": {k: str(v) for k, v in vars(args).items()},
                         "hosting_capacity": {}, "servers": {}, "other_processes_cpu_pct": {}}
    hc, servers, other = r["hosting_capacity"], r["servers"], r["other_processes_cpu_pct"]
    print(f"floors: hosting capacity of {len(chosen)} buses, {args.hours}-hour series ...", flush=True)
    with other_load(other, "floor HC"):
        hc_floors = [hosting_capacity_floor(selected)]
    with other_load(other, "floor series"):
        ts_floors = [series_floor(args.hours)]
    print("API --workers 1 ...", flush=True)
    api = Api("workers_1", "--workers", "1")
    try:
        with other_load(other, "HC --workers 1"):
            hc["workers_1"] = hosting_capacity_api(api, hc_buses, hc_floors[0],
                                                   lambda: pool_workers(api.server.process.pid))
    finally:
        servers["workers_1"] = api.stop()
    print(f"API --workers {POOL} ...", flush=True)
    api = Api("workers_2", "--workers", str(POOL))
    try:
        api.study("time_series", {"hours": 24, "start_hour": 0})  # warm-up
        with other_load(other, "series"):
            r["time_series"] = series_api(api, args.hours, ts_floors[0])
        with other_load(other, "HC --workers 2"):
            hc["workers_2"] = hosting_capacity_api(api, hc_buses, hc_floors[0],
                                                   lambda: pool_workers(api.server.process.pid))
        print("hosting capacity at two named hours (floor, API --workers 2, floor) ...", flush=True)
        with other_load(other, "HC hours"):
            r["hours"] = hours_bench.hours_phase(api, selected)
        with other_load(other, "batch"):
            r["batch"] = batch_api(api, hostable[:args.cases // 2])
        r["time_series_after_studies"] = series_api(api, args.hours, ts_floors[0])
        with other_load(other, "latency"):
            r["latency"] = latency_api(api, args.requests)
        r["inverters"] = inverter_bench.inverter_phase(api, selected, 40 if args.quick else 200)
    finally:
        servers["workers_2"] = api.stop()
    print("Dask cluster ...", flush=True)
    with local_cluster() as cluster:
        dask_pids = cluster.worker_pids()
        api = Api("dask_2", "--dask-scheduler", cluster.address)
        try:
            with other_load(other, "HC Dask"):
                hc["dask_2"] = hosting_capacity_api(api, hc_buses, hc_floors[0], lambda: dask_pids)
        finally:
            servers["dask_2"] = api.stop()
        with other_load(other, "Dask overhead"):
            r["dask_overhead"] = dask_overhead(cluster, args.tasks, chosen[0])
    print("floors again (drift) ...", flush=True)
    with other_load(other, "floors again"):
        hc_floors.append(hosting_capacity_floor(selected))
        ts_floors.append(series_floor(args.hours))
    r["floor"] = {"hosting_capacity": mean_of(hc_floors), "time_series": mean_of(ts_floors)}
    del r["floor"]["time_series"]["rows"]  # compared with the API's above, not kept
    r["targets"] = studies_targets(r)
    r["total_s"] = time.perf_counter() - started
    r["out"] = str(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    print_studies(r)
    return subprocess.call([sys.executable, str(HERE / "stochastic_bench.py"), "--out", str(args.out.with_name(
        args.out.stem + "-stochastic.json"))] + (["--quick"] if args.quick else []))  # bench/stochastic_bench.py


if __name__ == "__main__":
    run_main(main)
