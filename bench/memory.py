#!/usr/bin/env python3
"""Memory per live scenario, feeder by feeder, and a default server's memory with every live slot filled.

    python bench/memory.py [--scenarios N] [--fill FEEDER …] [--out FILE] [--write-docs-figures [PATH]]

For each feeder (IEEE 13, IEEE 34, our IEEE 123, EPRI ckt5, the IEEE 8500-node feeder; the public decks are read
from ../shared/reference/feeders, as the tests read them):
  1. per scenario: `python api.py --feeder PATH --engine-hosts 2 --state FILE --no-access-log`, then N scenarios
     created one by one (POST /scenarios, then one neighbourhood change, so each is live with a journal). After each,
     the resident memory of the web process (/proc) and of every engine host (the pids GET /health lists) is read.
     The first scenario of each host pays what a host reads once per feeder (its derived model), so the slope of
     the total RSS against the live scenarios is fitted after the first `hosts` scenarios: MB per live scenario.
  2. filled (the feeders named by --fill, default the 8500-node one): a default server (`--state`, the engine hosts
     and study workers at their defaults: the usable cores), a two-bus hosting capacity study first so the study
     workers are up with the feeder compiled, then scenarios created until the live count stops growing (the
     default `--max-live-scenarios` reached: one more evicts the least recently used). Its total RSS: web process,
     hosts and study workers.
Every answer is checked as in bench.py; a wrong one stops the run (exit 1). The JSON goes to --out; with
--write-docs-figures, the figures docs/performance.md and docs/deployment.md quote go to docs/figures/memory.json
(then `python docs/figures/render.py` writes the pages).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_floor import REPO, BenchError  # noqa: E402
from harness import Api, run_main  # noqa: E402
from machine import environment, pool_workers, read_proc_status, usable_cpus  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "memory.json"
DEFAULT_FIGURES = REPO / "docs" / "figures" / "memory.json"
SHARED_FEEDERS = REPO.parent / "shared" / "reference" / "feeders"
#: Feeder name -> (what the docs call it, master file; None is our IEEE 123 deck, the server's default).
FEEDERS: dict[str, tuple[str, Path | None]] = {
    "ieee13": ("IEEE 13", SHARED_FEEDERS / "IEEETestCases/13Bus/IEEE13Nodeckt.dss"),
    "ieee34": ("IEEE 34", SHARED_FEEDERS / "IEEETestCases/34Bus/ieee34Mod1.dss"),
    "ieee123": ("IEEE 123 (ours)", None),
    "ckt5": ("EPRI ckt5", SHARED_FEEDERS / "EPRITestCircuits/ckt5/Master_ckt5.dss"),
    "ieee8500": ("IEEE 8500-node", SHARED_FEEDERS / "IEEETestCases/8500-Node/Master.dss"),
}
HOSTS = 2          # engine hosts of the per-scenario runs
MAX_FILL = 200     # a fill that has not met the live limit by then is a failure
BUDGET_MB = 4000   # issue 29: a default server on the 8500-node feeder, every live slot filled, under 4 GB
MIB = 1024


def memory_gb() -> float:
    """The machine's memory (MemTotal), GB."""
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        return round(int(meminfo.readline().split()[1]) / MIB ** 2, 1)


def feeder_args(name: str) -> tuple[str, ...]:
    master = FEEDERS[name][1]
    return () if master is None else ("--feeder", str(master))


def rss_mb(api: Api) -> dict[str, Any]:
    """Resident memory (MB) of the web process, each engine host and each study worker, and their total."""
    web_pid = api.server.process.pid
    hosts = [host["pid"] for host in api.call("GET", "/health")[1]["hosts"]]
    workers = pool_workers(web_pid)
    web, host_mb, worker_mb = (read_proc_status(web_pid)["VmRSS"] / MIB,
                               [read_proc_status(pid)["VmRSS"] / MIB for pid in hosts],
                               [read_proc_status(pid)["VmRSS"] / MIB for pid in workers])
    return {"web": round(web, 1), "hosts": [round(x, 1) for x in host_mb], "workers": [round(x, 1) for x in worker_mb],
            "total": round(web + sum(host_mb) + sum(worker_mb), 1)}


def nodes_of(api: Api) -> tuple[int, int]:
    """(buses, nodes) of the feeder, from GET /buses."""
    buses = api.call("GET", "/buses")[1]["buses"]
    return len(buses), sum(len(bus["nodes"]) for bus in buses)


def live_scenario(api: Api, label: str) -> int:
    """A new scenario with one change (neighbourhood 1 × 1.01), so it is live with a journal; the live count after."""
    scenario_id = api.client.create_scenario(label, query="?sections=power_summary")[0]  # checked: 201, live
    path = f"/scenarios/{scenario_id}/modify_load_neighbourhood?sections=power_summary"
    action = api.call("POST", path, {"neighbourhood": 1, "factor": 1.01})[1]["action"]
    if action.get("neighbourhood") != 1 or action.get("factor") != 1.01:
        raise BenchError(f"POST {path}: unexpected action {action}")
    return api.call("GET", "/health")[1]["live_scenarios"]


def per_scenario(name: str, scenarios: int) -> dict[str, Any]:
    """RSS after each of `scenarios` live scenarios on `HOSTS` engine hosts; the slope fitted after each host's first."""
    args = ("--no-access-log", "--engine-hosts", str(HOSTS), "--state", "state.sqlite",
            "--max-live-scenarios", str(scenarios + 1), *feeder_args(name))
    with Api(f"memory-{name}", *args) as api:
        buses, nodes = nodes_of(api)
        points = [(1, rss_mb(api))]
        for k in range(scenarios):
            live = live_scenario(api, f"memory-{k}")
            points.append((live, rss_mb(api)))
    fitted = points[HOSTS:]  # from the point where every host holds one scenario's engine
    slope = statistics.linear_regression([p[0] for p in fitted], [p[1]["total"] for p in fitted]).slope
    return {"feeder": FEEDERS[name][0], "buses": buses, "nodes": nodes, "startup_s": round(api.server.startup_s, 2),
            "mb_per_live_scenario": round(slope, 1), "empty_total_mb": points[0][1]["total"],
            "points": [{"live": live, **mb} for live, mb in points]}


def filled(name: str) -> dict[str, Any]:
    """A default server (`--state` only) with its study workers up and every live slot filled: total RSS."""
    hosts = ("--engine-hosts", str(usable_cpus()))  # the product's default, named: the harness's default is 1
    with Api(f"memory-fill-{name}", "--no-access-log", "--state", "state.sqlite", *hosts, *feeder_args(name)) as api:
        buses = [bus["name"] for bus in api.call("GET", "/buses")[1]["buses"]
                 if len(bus["nodes"]) == 3 and bus["kv_base_ln"] > 1.0][-2:]
        api.study("hosting_capacity", {"buses": buses, "step_kw": 500, "max_kw": 1000})
        empty = rss_mb(api)
        live, created = 1, 0
        while created < MAX_FILL:
            now = live_scenario(api, f"fill-{created}")
            created += 1
            if now == live:
                break
            live = now
        else:
            raise BenchError(f"{name}: still below the live limit after {MAX_FILL} scenarios")
        return {"feeder": FEEDERS[name][0], "max_live": live, "engine_hosts": len(empty["hosts"]),
                "workers": len(empty["workers"]), "empty": empty, "filled": rss_mb(api)}


def per_core(row: dict[str, Any], idle_host_mb: float) -> dict[str, Any]:
    """A filled server's memory split into what each core adds by default (an engine host before it holds an engine,
    a study worker with the feeder compiled) and the rest; how many cores the default fits under BUDGET_MB with."""
    worker_mb = sum(row["filled"]["workers"]) / max(1, len(row["filled"]["workers"]))
    core_mb = idle_host_mb + worker_mb
    rest_mb = row["filled"]["total"] - len(row["filled"]["hosts"]) * idle_host_mb - sum(row["filled"]["workers"])
    return {"idle_host_mb": round(idle_host_mb), "worker_mb": round(worker_mb), "per_core_mb": round(core_mb),
            "rest_mb": round(rest_mb), "budget_mb": BUDGET_MB, "cores_within_budget": int((BUDGET_MB - rest_mb) // core_mb)}


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """What the docs quote, from one run."""
    machine = report["machine"]
    idle_host_mb = min(point["hosts"][-1] for row in report["per_scenario"].values() for point in row["points"][:1])
    return {
        "about": {
            "what": "Memory per live scenario of each feeder and a default server's memory with every live slot "
                    "filled, as docs/performance.md and docs/deployment.md quote them (MB of resident memory).",
            "how to regenerate": "python bench/memory.py --write-docs-figures (about a minute), then python "
                                 "docs/figures/render.py.",
        },
        "run": {"cpu": machine["cpu"], "cpus": machine["cpus_usable"], "memory_gb": machine["memory_gb"],
                "python": machine["python"], "opendssdirect": machine["opendssdirect"], "commit": machine["git_commit"],
                "scenarios": report["scenarios"], "hosts": HOSTS},
        "feeders": [{key: row[key] for key in ("feeder", "buses", "nodes", "mb_per_live_scenario", "empty_total_mb")}
                    for row in report["per_scenario"].values()],
        "filled": {name: {"feeder": row["feeder"], "max_live": row["max_live"], "engine_hosts": row["engine_hosts"],
                          "workers": row["workers"], "empty_mb": row["empty"]["total"],
                          "filled_mb": row["filled"]["total"], "web_mb": row["filled"]["web"],
                          "hosts_mb": round(sum(row["filled"]["hosts"]), 1),
                          "workers_mb": round(sum(row["filled"]["workers"]), 1), **per_core(row, idle_host_mb)}
                   for name, row in report["filled"].items()},
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'feeder':<18}{'buses':>7}{'nodes':>7}{'MB/live scenario':>18}{'empty server MB':>17}")
    for row in report["per_scenario"].values():
        print(f"{row['feeder']:<18}{row['buses']:>7}{row['nodes']:>7}{row['mb_per_live_scenario']:>18.1f}"
              f"{row['empty_total_mb']:>17.0f}")
    for row in report["filled"].values():
        print(f"\n{row['feeder']}, default server ({row['engine_hosts']} hosts, {row['workers']} study workers): "
              f"{row['empty']['total']:.0f} MB with the default scenario, {row['filled']['total']:.0f} MB with "
              f"{row['max_live']} live (web {row['filled']['web']:.0f}, hosts {sum(row['filled']['hosts']):.0f}, "
              f"workers {sum(row['filled']['workers']):.0f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Memory per live scenario and a default server filled.")
    parser.add_argument("--scenarios", type=int, default=6, help="live scenarios per feeder (default 6)")
    parser.add_argument("--feeders", nargs="+", choices=sorted(FEEDERS), default=list(FEEDERS))
    parser.add_argument("--fill", nargs="*", choices=sorted(FEEDERS), default=["ieee8500"],
                        help="feeders whose default server is filled to its live limit (default ieee8500)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--write-docs-figures", nargs="?", type=Path, const=DEFAULT_FIGURES, default=None)
    args = parser.parse_args(argv)
    if args.scenarios < HOSTS + 2:
        parser.error(f"--scenarios: at least {HOSTS + 2}, so that the slope is fitted on 3 points")
    report: dict[str, Any] = {"machine": {**environment(), "memory_gb": memory_gb()}, "scenarios": args.scenarios,
                              "per_scenario": {}, "filled": {}}
    for name in args.feeders:
        report["per_scenario"][name] = per_scenario(name, args.scenarios)
        print(f"{name}: {report['per_scenario'][name]['mb_per_live_scenario']} MB per live scenario", flush=True)
    for name in args.fill:
        report["filled"][name] = filled(name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print_report(report)
    if args.write_docs_figures:
        args.write_docs_figures.write_text(json.dumps(figures(report), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    run_main(main)
