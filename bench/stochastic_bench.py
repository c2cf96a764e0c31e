#!/usr/bin/env python3
"""Benchmark of the stochastic hosting capacity (20 samples x 20 penetrations) against its engine floor.

    python bench/stochastic_bench.py            # full run: 20 samples, 10 to 200 % by 10
    python bench/stochastic_bench.py --quick    # smoke run: 4 samples, 10 to 100 % by 30

In order:
  1. The floor, in this process with opendssdirect alone (no Flask, none of our classes): the same samples (the
     same seeded customer orders, the same placements), each walked upward to its first failure, each trial
     solved and read as a dry run is (then the generators off, the regulator taps back, solved again).
  2. `python api.py --workers 2` (the local pool), started as a user starts it: a 2-sample warm-up, then the
     timed study, its samples compared with the floor's.
  3. A Dask cluster started with README's own lines ("Running on a cluster": `dask scheduler …`,
     `PYTHONPATH=. dask worker … --nworkers 2 --nthreads 1`, in the checkout, no PYTHONPATH for the scheduler)
     and `python api.py --dask-scheduler …`: the same study.
  4. The floor again: the machine drifts, so the target uses the mean of the two floor runs.
Target: the local pool of 2 takes at most 1.2 x (floor / 2). The Dask figure is reported, not judged.
A table on stdout; every figure in bench/results/stochastic-<timestamp>.json (or --out).
Exit status 1 when an answer is wrong (an HTTP error, a failed job, a sample differing from the floor).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from engine_floor import REPO  # noqa: E402
from harness import POOL, Api, DaskCluster, mean_of, run_main  # noqa: E402
from machine import CpuMeter, cpu_seconds, environment, pool_workers  # noqa: E402
from report import print_stochastic, stochastic_targets  # noqa: E402
from studies_floor import StochasticFloor, samples_differing  # noqa: E402

# The study: the and README's request, and the API's default limits (studies/limits.py: an element already
# above 100 % in the starting state is pre-existing and never a limit; the floor judges as the tests' reference).
ROUTE = "stochastic_hosting_capacity"
FULL = {"penetration_pct": {"start": 10, "stop": 200, "step": 10}, "samples": 20, "seed": 1}
QUICK = {"penetration_pct": {"start": 10, "stop": 100, "step": 30}, "samples": 4, "seed": 1}


def penetrations(body: dict[str, Any]) -> list[float]:
    span = body["penetration_pct"]
    count = int(math.floor((span["stop"] - span["start"]) / span["step"] + 1e-9)) + 1
    return [round(span["start"] + k * span["step"], 9) for k in range(count)]


def greedy_bound(trials: list[int], workers: int = POOL) -> float:
    """How far from an even split 20 samples of unequal length must fall on 2 workers that take the next sample
    when free (as the pool does), in trials of equal cost: the makespan / (all trials / workers). Everything
    else the pool adds has the rest of the 1.2 target."""
    free = [0] * workers
    for count in trials:
        free[free.index(min(free))] += count
    return max(free) / (sum(trials) / workers)


def floor_run(body: dict[str, Any]) -> dict[str, Any]:
    """Wall time of the trials (the compile apart: the server's workers are warm), trials, a row per sample."""
    started = time.perf_counter()
    floor = StochasticFloor()
    compiled = time.perf_counter()
    pcts, ratio = penetrations(body), max(1.0, body["penetration_pct"]["stop"] / 100)
    rows = [floor.sample(body["seed"], k, pcts, ratio) for k in range(body["samples"])]
    done = time.perf_counter()
    return {"wall_s": done - compiled, "compile_s": compiled - started, "trials": floor.trials,
            "ms_per_trial": 1000 * (done - compiled) / floor.trials, "samples": rows,
            "greedy_bound_2_workers": greedy_bound([row["trials"] for row in rows])}


# ----------------------------------------------------------------------------------------------------- the API
def api_run(api: Api, body: dict[str, Any], floor: dict[str, Any], workers: Callable[[], list[int]]
            ) -> dict[str, Any]:
    """A 2-sample warm-up (the workers spawn and compile), then the timed study; the CPU its workers used (which
    other processes on the machine do not change); samples differing from the floor's (last pass, first failure
    and its kind)."""
    warm_up = api.study(ROUTE, {**body, "samples": 2, "seed": body["seed"] + 1})
    pids = workers()
    meter, cpu_before = CpuMeter(), cpu_seconds(*pids)
    run = api.study(ROUTE, body)
    other, workers_cpu = meter.stop().get("other_processes_pct", 0.0), cpu_seconds(*pids) - cpu_before
    result = run["job"]["result"]
    differ = samples_differing(result["samples"], floor["samples"])
    trials = sum(s["trials"] for s in result["samples"])
    return {"wall_s": run["wall_s"], "job_s": run["job_s"], "warm_up_s": warm_up["wall_s"], "tasks": run["tasks"],
            "trials": trials, "workers": len(pids), "workers_cpu_s": workers_cpu,
            "worker_cpu_ms_per_trial": 1000 * workers_cpu / trials,
            "range": {k: result[k] for k in ("min_hc_pct", "min_hc_kW", "max_hc_pct", "max_hc_kW")},
            "differ_from_floor": differ, "other_processes_cpu_pct": other}


# ----------------------------------------------------------------------------------------------------- Dask
def readme_cluster_lines() -> list[str]:
    """The scheduler and worker lines of the docs' "Running on a cluster" (README.md or docs/*.md), exactly as
    written."""
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in page.read_text(encoding="utf-8").split("```bash\n")[1:]:
            lines = [line.strip() for line in block.split("```", 1)[0].splitlines() if line.strip()]
            scheduler = [x for x in lines if x.startswith("dask scheduler ")]
            worker = [x for x in lines if " dask worker " in f" {x}"]
            if scheduler and worker:
                return [scheduler[0], worker[0]]
    raise RuntimeError("no page gives the lines that start a Dask cluster (dask scheduler …, dask worker …)")


def readme_cluster() -> DaskCluster:
    """The docs' scheduler and worker lines, typed in the checkout with a free port for 8786 and this machine for
    SCHEDULER-HOST, no PYTHONPATH for the scheduler."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IEEE123_DASK_SCHEDULER")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return DaskCluster([line.replace("SCHEDULER-HOST", "127.0.0.1").replace("8786", "{port}")
                        for line in readme_cluster_lines()], env)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 samples x 4 penetrations")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/stochastic-<timestamp>.json)")
    args = parser.parse_args(argv)
    args.out = args.out or REPO / "bench" / "results" / f"stochastic-{time.strftime('%Y%m%d-%H%M%S')}.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    body = QUICK if args.quick else FULL
    started = time.perf_counter()
    r: dict[str, Any] = {"environment": environment(), "body": body, "penetrations_pct": penetrations(body)}
    print("stochastic: floor ...", file=sys.stderr, flush=True)
    floors = [floor_run(body)]
    print(f"stochastic: API --workers {POOL} ...", file=sys.stderr, flush=True)
    with Api("workers_2", "--workers", str(POOL)) as api:
        r["workers_2"] = api_run(api, body, floors[0], lambda: pool_workers(api.server.process.pid))
    print("stochastic: README's Dask cluster ...", file=sys.stderr, flush=True)
    with readme_cluster() as cluster, Api("dask_2", "--dask-scheduler", cluster.address) as api:
        r["dask_2"] = api_run(api, body, floors[0], cluster.worker_pids)
    floors.append(floor_run(body))
    r["floor"] = mean_of(floors)
    r["targets"] = stochastic_targets(r)
    r["total_s"], r["out"] = time.perf_counter() - started, str(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    print_stochastic(r)
    wrong = r["workers_2"]["differ_from_floor"] or r["dask_2"]["differ_from_floor"]
    return 1 if wrong else 0


if __name__ == "__main__":
    run_main(main)
