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
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report  # noqa: E402  (bench/report.py: verdict, environment)
from engine_floor import REPO, BenchError  # noqa: E402
from harness import Client, Server, check, free_port, process_cpu_ticks  # noqa: E402
from studies_floor import Engine, solve_and_judge, terminal1_phases, values  # noqa: E402

# The study: the and README's request, and the API's default limits (studies/limits.py: an element already
# above 100 % in the starting state is pre-existing and never a limit; studies_floor.solve_and_judge).
FULL = {"penetration_pct": {"start": 10, "stop": 200, "step": 10}, "samples": 20, "seed": 1}
QUICK = {"penetration_pct": {"start": 10, "stop": 100, "step": 30}, "samples": 4, "seed": 1}
TARGET_POOL = 1.2  # API wall time / (floor wall time / workers)
POLL_S = 0.02


# ----------------------------------------------------------------------------------------------------- floor
class StochasticFloor(Engine):
    """The feeder in one opendssdirect context; a generator per customer (load) made on first use, where the
    load connects (README: 3-phase on 1.2.3, 1-phase on the load's node, or across its two nodes)."""

    def __init__(self) -> None:
        super().__init__()
        d, b = self.d, self.b
        self.line_picks, self.line_starts = terminal1_phases(np.asarray(values(b.Line.NumConductors)),
                                                      np.asarray(values(b.Line.Phases)))
        self.xf_picks, self.xf_starts = terminal1_phases(np.asarray(values(b.Transformer.NumConductors)),
                                                  np.asarray(values(b.Transformer.Phases)))
        self.norm_amps = np.concatenate([np.asarray(values(b.Line.NormAmps), dtype=float),
                                         np.asarray(values(b.Transformer.NormAmps), dtype=float)])
        self.base_taps = self.taps()
        self.own_v, self.own_loading = np.asarray(d.Circuit.AllBusMagPu()), self.loading()
        self.load_kw = np.asarray(values(b.Load.kW), dtype=float)
        self.connections = [self.connection(bus1, int(phases))
                            for bus1, phases in zip(b.Load.Bus1, values(b.Load.Phases))]
        self.created: set[int] = set()
        self.trials = 0

    def connection(self, bus1: str, phases: int) -> str:
        """The New Generator text (without kW) of a customer's PV."""
        bus, *nodes = bus1.lower().split(".")
        self.d.Circuit.SetActiveBus(bus)
        kv = self.d.Bus.kVBase()
        if phases == 3:
            return f"bus1={bus}.1.2.3 phases=3 kv={kv * math.sqrt(3):.6f}"
        if len(nodes) == 2:
            return f"bus1={bus}.{nodes[0]}.{nodes[1]} phases=1 kv={kv * math.sqrt(3):.6f}"
        return f"bus1={bus}.{nodes[0]} phases=1 kv={kv:.6f}"

    def loading(self) -> np.ndarray:
        line = np.abs(np.asarray(values(self.b.Line.Currents))[self.line_picks])
        xf = np.abs(np.asarray(values(self.b.Transformer.Currents))[self.xf_picks])
        return 100.0 * np.concatenate([np.maximum.reduceat(line, self.line_starts),
                                       np.maximum.reduceat(xf, self.xf_starts)]) / self.norm_amps

    def set_generator(self, customer: int, kw: float, enabled: bool) -> None:
        name = f"f{customer}"
        self.d.Generators.Name(name)
        self.d.Generators.kW(kw)
        self.d.Circuit.SetActiveElement(f"Generator.{name}")
        self.d.CktElement.Enabled(enabled)

    def violation(self, systems: list[tuple[int, float]]) -> str | None:
        """The first kind of violation of one trial (PV at every system at once), or None."""
        d = self.d
        self.trials += 1
        for customer, kw in systems:
            if customer in self.created:
                self.set_generator(customer, kw, True)
            else:
                d.Text.Command(f"New Generator.f{customer} {self.connections[customer]} kw={kw!r} pf=1 model=1 "
                               f"vminpu=0.5 vmaxpu=1.5")
                self.created.add(customer)
        found = solve_and_judge(d, self.own_v, self.own_loading, self.loading)
        for customer, _ in systems:
            self.set_generator(customer, 0.0, False)
        self.set_taps(self.base_taps)
        d.Solution.Solve()
        return found

    def sample(self, seed: int, sample: int, pcts: list[float], ratio: float) -> dict[str, Any]:
        """One sample walked upward to its first failure: the same seeded order and placements as the API's."""
        order = np.random.default_rng([seed, sample]).permutation(len(self.load_kw)).tolist()
        sizes = [(c, float(self.load_kw[c]) * ratio) for c in order if self.load_kw[c] > 0]
        total, last_pass, first_trial = float(self.load_kw.sum()), None, self.trials
        for pct in pcts:
            target, placed, systems = round(pct / 100 * total, 9), 0.0, []
            for customer, full in sizes:
                take = min(full, target - placed)
                if take <= 1e-9:
                    break
                systems.append((customer, take))
                placed += take
            kind = self.violation(systems)
            if kind:
                return {"sample": sample, "last_pass_pct": last_pass, "first_failure_pct": pct, "kind": kind,
                        "trials": self.trials - first_trial}
            last_pass = pct
        return {"sample": sample, "last_pass_pct": last_pass, "first_failure_pct": None, "kind": None,
                "trials": self.trials - first_trial}


def penetrations(body: dict[str, Any]) -> list[float]:
    span = body["penetration_pct"]
    count = int(math.floor((span["stop"] - span["start"]) / span["step"] + 1e-9)) + 1
    return [round(span["start"] + k * span["step"], 9) for k in range(count)]


def greedy_bound(trials: list[int], workers: int = 2) -> float:
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


# ----------------------------------------------------------------------------------------------------- load
class OtherLoad:
    """The share of the machine's CPUs used by processes outside this run (this process and its descendants: the
    server, its workers, the cluster) while a study ran: on a shared machine they disturb the figures."""

    def __init__(self) -> None:
        self.start = self.read()

    @staticmethod
    def read() -> tuple[float, int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            v = [int(x) for x in stat.readline().split()[1:]]
        table = {}
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit():
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
            except OSError:  # gone meanwhile
                pass
        ours, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            ours += table.get(pid, (0, 0))[1]
            todo += [child for child, (parent, _) in table.items() if parent == pid]
        return time.perf_counter(), v[0] + v[1] + v[2] + sum(v[5:8]), ours  # user nice system irq softirq steal

    def pct(self) -> float:
        end = self.read()
        capacity = (end[0] - self.start[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        return max(0.0, 100 * ((end[1] - self.start[1]) - (end[2] - self.start[2])) / capacity)


# ----------------------------------------------------------------------------------------------------- the API
class Api:
    """A server started as a user starts it (`python api.py …` from an empty directory) and one keep-alive client."""

    def __init__(self, label: str, *args: str) -> None:
        self.server = Server(label, extra_args=args)
        self.server.start()
        self.client = Client(self.server)

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        status, ctype, data, _ = self.client.call(method, path, None if body is None else orjson.dumps(body))
        return check(200 if status in (200, 202) else status, ctype, data, f"{method} {path}")

    def study(self, body: dict[str, Any]) -> dict[str, Any]:
        """The study run to the end: wall time from POST to the finished job in hand, with its result."""
        started = time.perf_counter()
        job = self.call("POST", "/studies/stochastic_hosting_capacity?wait=30", body)["job"]
        while job["status"] in ("queued", "running"):
            time.sleep(POLL_S)
            job = self.call("GET", f"/jobs/{job['id']}")["job"]
        wall = time.perf_counter() - started
        if job["status"] != "done":
            raise BenchError(f"POST /studies/stochastic_hosting_capacity: job {job['status']}: {job['error']}")
        return {"wall_s": wall, "job": job}

    def stop(self) -> None:
        self.client.close()
        self.server.stop()
        self.server.cleanup()


def cpu_seconds(pids: list[int]) -> float:
    """CPU (user + system) the processes used so far."""
    return sum(process_cpu_ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")


def pool_workers(api: Api) -> list[int]:
    """The local pool's worker processes (children of the server spawned by multiprocessing)."""
    children = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == \
                    api.server.process.pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                children.append(int(entry.name))
        except OSError:
            pass
    return children


def api_run(api: Api, body: dict[str, Any], floor: dict[str, Any], workers: Callable[[], list[int]]
            ) -> dict[str, Any]:
    """A 2-sample warm-up (the workers spawn and compile), then the timed study; the CPU its workers used (which
    other processes on the machine do not change); samples differing from the floor's (last pass, first failure
    and its kind)."""
    warm_up = api.study({**body, "samples": 2, "seed": body["seed"] + 1})
    pids = workers()
    meter, cpu_before = OtherLoad(), cpu_seconds(pids)
    run = api.study(body)
    other, workers_cpu = meter.pct(), cpu_seconds(pids) - cpu_before
    result = run["job"]["result"]
    ours = [{"sample": s["sample"],
             "last_pass_pct": s["last_pass"]["penetration_pct"] if s["last_pass"] else None,
             "first_failure_pct": s["first_failure"]["penetration_pct"] if s["first_failure"] else None,
             "kind": s["first_failure"]["limited_by"]["kind"] if s["first_failure"] else None}
            for s in result["samples"]]
    differ = [{"api": a, "floor": f} for a, f in zip(ours, floor["samples"])
              if a != {k: v for k, v in f.items() if k != "trials"}]
    trials = sum(s["trials"] for s in result["samples"])
    job = run["job"]
    job_s = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
    return {"wall_s": run["wall_s"], "job_s": job_s, "warm_up_s": warm_up["wall_s"], "tasks": job["tasks"]["total"],
            "trials": trials, "workers": len(pids), "workers_cpu_s": workers_cpu,
            "worker_cpu_ms_per_trial": 1000 * workers_cpu / trials,
            "range": {k: result[k] for k in ("min_hc_pct", "min_hc_kW", "max_hc_pct", "max_hc_kW")},
            "differ_from_floor": differ, "other_processes_cpu_pct": other}


# ----------------------------------------------------------------------------------------------------- Dask
def readme_cluster_lines() -> dict[str, str]:
    """The scheduler and worker lines of README's "Running on a cluster", exactly as written."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Running on a cluster", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    return {"scheduler": next(x for x in lines if x.startswith("dask scheduler ")),
            "worker": next(x for x in lines if " dask worker " in f" {x}")}


class ReadmeCluster:
    """README's scheduler and worker lines, typed in the checkout with a free port for 8786 and this machine for
    SCHEDULER-HOST, each in its own session so stop() ends exactly what it started."""

    def __init__(self, workers: int = 2) -> None:
        port = str(free_port())
        self.address = f"tcp://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IEEE123_DASK_SCHEDULER")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.processes = [subprocess.Popen(["bash", "-c", line.replace("SCHEDULER-HOST", "127.0.0.1")
                                            .replace("8786", port)], cwd=REPO, env=env, start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                          for line in readme_cluster_lines().values()]
        with self.client() as client:
            client.wait_for_workers(workers, timeout=60)

    def client(self) -> Any:
        import distributed

        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def worker_pids(self) -> list[int]:
        with self.client() as client:
            return list(client.run(os.getpid).values())

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# ----------------------------------------------------------------------------------------------------- report
def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The floor measured twice (start and end of the run: the machine drifts): its mean wall time, both runs."""
    wall = sum(run["wall_s"] for run in runs) / len(runs)
    return {**runs[0], "wall_s": wall, "runs": [run["wall_s"] for run in runs], "ms_per_trial":
            1000 * wall / runs[0]["trials"]}


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    floor_s, pool, dask = r["floor"]["wall_s"], r["workers_2"], r["dask_2"]
    out = [{"name": "pool of 2 / (floor / 2)", "value": pool["wall_s"] / (floor_s / 2), "target": f"<= {TARGET_POOL}",
            "result": report.verdict(pool["wall_s"] / (floor_s / 2) <= TARGET_POOL)},
           {"name": "Dask 2 workers / (floor / 2)", "value": dask["wall_s"] / (floor_s / 2), "target": "reported",
            "result": "-"}]
    differ = len(pool["differ_from_floor"]) + len(dask["differ_from_floor"])
    out.append({"name": "samples differing from floor", "value": differ, "target": "0",
                "result": report.verdict(differ == 0)})
    return out


def print_report(r: dict[str, Any]) -> None:
    f, body = r["floor"], r["body"]
    span = body["penetration_pct"]
    print(f"\nStochastic hosting capacity, {body['samples']} samples x {len(penetrations(body))} penetrations "
          f"({span['start']:g} to {span['stop']:g} % by {span['step']:g}), seed {body['seed']}   wall s   trials")
    print(f"  {'floor (opendssdirect, 1 process)':<40} {f['wall_s']:7.2f} {f['trials']:>8}   "
          f"({f['ms_per_trial']:.2f} ms per trial; mean of {', '.join(f'{x:.2f}' for x in f['runs'])})")
    for key, label in (("workers_2", "API --workers 2"), ("dask_2", "API --dask-scheduler, README's 2 workers")):
        run = r[key]
        print(f"  {label:<40} {run['wall_s']:7.2f} {run['trials']:>8}   (job {run['job_s']:.2f} s; {run['tasks']} "
              f"tasks; workers' CPU {run['worker_cpu_ms_per_trial']:.2f} ms per trial; other processes "
              f"{run['other_processes_cpu_pct']:.0f} % of the CPUs; {len(run['differ_from_floor'])} samples differ "
              f"from the floor)")
    print(f"  (20 samples of unequal length on 2 workers taking the next when free: at best "
          f"{f['greedy_bound_2_workers']:.3f} x floor / 2, from the floor's own trial counts)")
    rng = r["workers_2"]["range"]
    print(f"  range: min {rng['min_hc_pct']:g} % ({rng['min_hc_kW']:g} kW), max {rng['max_hc_pct']:g} % "
          f"({rng['max_hc_kW']:g} kW)")
    print(f"\nTargets:\n  {'figure':<34} {'value':>8}  {'target':<9} result")
    for t in r["targets"]:
        value = f"{t['value']:.3f}" if isinstance(t["value"], float) else str(t["value"])
        print(f"  {t['name']:<34} {value:>8}  {t['target']:<9} {t['result']}")
    print(f"Total run {r['total_s']:.0f} s; JSON: {r['out']}")


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
    r: dict[str, Any] = {"environment": report.environment(), "body": body}
    print("stochastic: floor ...", file=sys.stderr, flush=True)
    floors = [floor_run(body)]
    try:
        print("stochastic: API --workers 2 ...", file=sys.stderr, flush=True)
        api = Api("workers_2", "--workers", "2")
        try:
            r["workers_2"] = api_run(api, body, floors[0], lambda: pool_workers(api))
        finally:
            api.stop()
        print("stochastic: README's Dask cluster ...", file=sys.stderr, flush=True)
        cluster = ReadmeCluster(2)
        try:
            api = Api("dask_2", "--dask-scheduler", cluster.address)
            try:
                r["dask_2"] = api_run(api, body, floors[0], cluster.worker_pids)
            finally:
                api.stop()
        finally:
            cluster.stop()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    floors.append(floor_run(body))
    r["floor"] = mean_of(floors)
    r["targets"] = targets(r)
    r["total_s"], r["out"] = time.perf_counter() - started, str(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    print_report(r)
    wrong = r["workers_2"]["differ_from_floor"] or r["dask_2"]["differ_from_floor"]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
