#!/usr/bin/env python3
"""Engine hosts bench: the single process against --engine-hosts 2, in the same run.

    python bench/hosts_bench.py [--quick] [--duration S] [--requests N] [--out FILE]

For each server (`python api.py`, then `python api.py --engine-hosts 2`):
  1. start-up: Popen to the first 200 from GET /state (harness.Server);
  2. latency: one keep-alive connection alternates POST /modify_load_neighbourhood (whole results) and GET /state,
     N of each, p50/p90 in ms;
  3. throughput: wrk with 1, 2, 4 and 8 connections, each on a fresh scenario of its own (bench/wrk_changes.lua);
  4. memory: RSS of the web process and of each host (GET /health lists the hosts' pids);
  and at each level the CPU ms per request of the web process and of each host (/proc), where the time goes.
Every answer is checked as in bench.py; a wrong one stops the run (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_floor import REPO, FactorAlternator, neighbourhood_ids, stats_ms  # noqa: E402
from harness import Client, Server, Servers, run_main, wrk_level  # noqa: E402
from machine import cpu_seconds  # noqa: E402
from report import print_hosts  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "hosts.json"
LEVELS = (1, 2, 4, 8)


def latency(server: Server, requests: int, neighbourhoods: list[int]) -> dict[str, Any]:
    client = Client(server)
    ops = FactorAlternator(neighbourhoods)
    changes, states = [], []
    for k in range(requests + 20):  # the first 20 of each warm up
        change_ns, _ = client.modify(ops.next())
        state_ns, _, _ = client.state()
        if k >= 20:
            changes.append(change_ns)
            states.append(state_ns)
    for op in ops.close():
        client.modify(op)
    client.close()
    return {"change": stats_ms(changes), "state": stats_ms(states)}


def throughput(server: Server, duration: float) -> list[dict[str, Any]]:
    """wrk levels, each with the CPU ms per request of the web process and of each host (where the time goes)."""
    client = Client(server)
    levels = []
    pids = [server.process.pid, *(host["pid"] for host in client.get("/health")[0]["hosts"])]
    for n in LEVELS:
        ids = [client.create_scenario(f"hosts-{n}-{k}", query="?sections=power_summary")[0] for k in range(n)]
        before = [cpu_seconds(pid) for pid in pids]
        level = wrk_level(server, [f"/scenarios/{scenario_id}" for scenario_id in ids], duration)
        per_request = [(cpu_seconds(pid) - cpu) * 1000 / level["requests"] for pid, cpu in zip(pids, before)]
        levels.append({**{key: level[key] for key in ("clients", "requests", "seconds", "rps", "latency")},
                       "cpu_ms_per_request": {"web": per_request[0], "hosts": per_request[1:]},
                       "wrk_cpu_s": level["client_cpu_s"]})
        for scenario_id in ids:
            client.delete_scenario(scenario_id)
    client.close()
    return levels


def memory(server: Server) -> dict[str, Any]:
    """RSS (MB) of the web process and of each engine host after the levels (their scenarios deleted, the default
    live): what each process keeps after work."""
    client = Client(server)
    hosts = client.get("/health")[0]["hosts"]
    client.close()
    web = server.memory()["VmRSS"] / 1024
    return {"web_mb": round(web, 1), "hosts": [{"host": h["host"], "rss_mb": h["rss_mb"],
                                                 "scenarios": len(h["scenarios"])} for h in hosts]}


def run_server(label: str, extra: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    with Servers() as servers:
        server = servers.start(label, "--no-access-log", "--threads", "8", *extra)
        result: dict[str, Any] = {"args": list(extra), "startup_s": server.startup_s}
        result["latency"] = latency(server, args.requests, neighbourhood_ids())
        result["throughput"] = throughput(server, args.duration)
        result["memory"] = memory(server)
        servers.stop(server)
    rps = {level["clients"]: level["rps"] for level in result["throughput"]}
    result["scaling"] = {str(n): rps[n] / rps[1] for n in LEVELS}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Single process against --engine-hosts 2.")
    parser.add_argument("--quick", action="store_true", help="1 s per level, 100 requests per latency")
    parser.add_argument("--duration", type=float, default=None, help="seconds per wrk level (default 5)")
    parser.add_argument("--requests", type=int, default=None, help="latency samples per request kind (default 500)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.duration = args.duration or (1.0 if args.quick else 5.0)
    args.requests = args.requests or (100 if args.quick else 500)
    report = {"single": run_server("single", ("--engine-hosts", "1"), args),
              "hosts_2": run_server("hosts-2", ("--engine-hosts", "2"), args)}
    single, hosted = report["single"], report["hosts_2"]
    report["ratios"] = {"change_p50": hosted["latency"]["change"]["p50"] / single["latency"]["change"]["p50"],
                        "state_p50": hosted["latency"]["state"]["p50"] / single["latency"]["state"]["p50"],
                        "scaling_4_hosts_2": hosted["scaling"]["4"], "scaling_4_single": single["scaling"]["4"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print_hosts(report)
    return 0


if __name__ == "__main__":
    run_main(main)
