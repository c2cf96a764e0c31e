#!/usr/bin/env python3
"""Benchmark of the IEEE 123-bus power-flow API against the engine floor (opendssdirect alone, in-process).

    python bench/bench.py            # full run (about 2 minutes on 2 cores)
    python bench/bench.py --quick    # ~40 s smoke run
    python bench/bench.py --requests 500 --duration 3 --many-scenarios 200 --out /tmp/bench.json

What it does, in order (see bench/README.md for the definitions):
  1. Engine floor: the same sequence of changes as the HTTP latency phase, applied in this process with
     opendssdirect only (change, solve, batch reads of voltages / line flows / losses, orjson), timed per step.
  2. Server A (`python api.py --port N` from an empty temporary directory): start-up time, then one keep-alive
     http.client connection measures POST /add_generator, POST /modify_load_neighbourhood and GET /state
     (interleaved), then more requests until --leak-requests in total for the RSS leak check.
  3. Server B (fresh): throughput with 1, 2, 4 and 8 concurrent clients, POST /modify_load_neighbourhood only.
  4. Scenarios (bench/scenarios_phase.py, servers C, D, E): creation time, rebuild time of a 20-change journal,
     memory per live scenario, 2 clients on one scenario against 2 on two, --many-scenarios held by one server.
  5. The floor again (drift check), a table on stdout and every figure in a JSON file.

Every response is checked (HTTP 200, JSON, "status": "success", and the action the request asked for) before
anything is reported; any failure stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The phases share engine_floor (the workload, BenchError, stats_ms), harness (servers, client, wrk) and machine
# (/proc); this module runs them, report.py judges and prints them and docs_figures.py picks the figures the docs
# quote: imports run one way, from here down.
import docs_figures  # noqa: E402
import scenarios_phase  # noqa: E402
from engine_floor import (GENERATOR_SITES, LOAD_FACTOR, REPO, WARMUP_ROUNDS, WARMUP_SITE,  # noqa: E402
                          BenchError, FactorAlternator, GeneratorOp, LoadOp, generator_kw, generator_ops,
                          neighbourhood_ids, run_floor, stats_ms, warmup_generator_ops)
from harness import Client, Server, Servers, check, run_main, wrk_level  # noqa: E402
from machine import CpuMeter, cpu_seconds, environment, loadavg  # noqa: E402
from report import bench_targets, k_of, print_bench  # noqa: E402,F401 (k_of: the tests)

DEFAULT_OUT = REPO / "bench" / "results" / "latest.json"
LEAN_SECTIONS = "power_summary,voltage_profile"


# ----------------------------------------------------------------------------------------------------- phases
def latency_phase(server: Server, gen_warm: list[GeneratorOp], load_warm: list[LoadOp],
                  gen_ops: list[GeneratorOp], load_ops: list[LoadOp]) -> tuple[dict[str, Any], bytes]:
    """Figures, and the body of the last POST /modify_load_neighbourhood response (for the transport floor)."""
    client = Client(server)
    for g, l in zip(gen_warm, load_warm):
        client.add_generator(g)
        client.modify(l)
        client.state()
    first_measured = server.requests  # the access-log line index of the first measured request
    gen, load, state, revalidated = [], [], [], []
    sizes: dict[str, int] = {}
    summary: dict[str, Any] = {}
    for g, l in zip(gen_ops, load_ops):
        ns, sizes["add_generator"] = client.add_generator(g)
        gen.append(ns)
        ns, sizes["modify_load_neighbourhood"] = client.modify(l)
        load.append(ns)
        ns, sizes["state"], summary = client.state()
        state.append(ns)
        revalidated.append(client.revalidate())
    out: dict[str, Any] = {
        "add_generator": stats_ms(gen),
        "add_generator_new": stats_ms([ns for ns, g in zip(gen, gen_ops) if g.new]),
        "add_generator_existing": stats_ms([ns for ns, g in zip(gen, gen_ops) if not g.new]),
        "modify_load_neighbourhood": stats_ms(load),
        "state": stats_ms(state),
        "state_304": stats_ms(revalidated),
        "response_bytes": sizes,
        "connections_opened": client.connects,
        "final_power_summary": summary,
        "samples_us": {k: [round(x / 1e3, 1) for x in v]
                       for k, v in (("add_generator", gen), ("modify_load_neighbourhood", load), ("state", state),
                                    ("state_304", revalidated))},
    }
    out["app_time"] = app_times(server, first_measured, len(gen_ops))
    post_body = client.last_body
    out["health_baseline"] = health_baseline(client, len(gen_ops))
    out["lean"] = lean_phase(client, len(load_ops))
    client.close()
    return out, post_body


def lean_phase(client: Client, n: int) -> dict[str, Any]:
    """POST /modify_load_neighbourhood?sections=power_summary,voltage_profile: what a controller that needs only
    the totals waits for (no target; quoted in the README). Its own factors, undone at the end."""
    alternator = FactorAlternator(neighbourhood_ids(), offset=7)
    query = f"?sections={LEAN_SECTIONS}"
    latencies, size = [], 0
    for _ in range(n):
        ns, size = client.modify(alternator.next(), query=query)
        latencies.append(ns)
    for op in alternator.close():
        client.modify(op, query=query)
    return {**stats_ms(latencies), "response_bytes": size, "sections": LEAN_SECTIONS}


def transport_phase(body: bytes, load_warm: list[LoadOp], load_ops: list[LoadOp], duration: float,
                    hold_ms: float) -> dict[str, Any]:
    """The same client and requests against bench/transport_floor.py: waitress, set up as api.py sets it up,
    answering every request with one real change response. What HTTP alone costs on this machine. Then the same
    POSTs to a floor that holds the CPU for `hold_ms` (the API's app p50 for a change) before each answer."""
    body_dir = Path(tempfile.mkdtemp(prefix="bench-body-"))
    body_file = body_dir / "response.json"
    body_file.write_bytes(body)
    try:
        with Servers() as servers:
            server = servers.start("T", body_file=body_file)
            client = Client(server)
            for op in load_warm:
                client.modify(op)
                client.state()
            post, state, empty = [], [], []
            for op in load_ops:
                post.append(client.modify(op)[0])
                state.append(client.state()[0])
                empty.append(client.revalidate())
            client.close()
            levels = {}
            for n in (1, 4):
                meter = CpuMeter()
                levels[n] = wrk_level(server, [f"/scenarios/floor-{k}" for k in range(n)], duration)
                levels[n]["cpu"] = meter.stop()
            servers.stop(server)
            client = Client(servers.start("Tp", f"{hold_ms:.3f}", body_file=body_file))
            for op in load_warm:
                client.modify(op)
            paced = [client.modify(op)[0] - int(hold_ms * 1e6) for op in load_ops]
            servers.stop(client.server, client)
    finally:
        shutil.rmtree(body_dir, ignore_errors=True)
    return {"post": stats_ms(post), "state": stats_ms(state), "empty_304": stats_ms(empty),
            "post_paced": {**stats_ms(paced), "hold_ms": hold_ms},
            "throughput_1_client": levels[1], "throughput_4_clients": levels[4],
            "response_bytes": len(body), "startup_s": server.startup_s}


def health_baseline(client: Client, n: int) -> dict[str, Any]:
    """GET /health (tiny body, no grid work): the HTTP + Flask round trip every endpoint pays. Optional."""
    latencies = []
    for _ in range(n):
        status, ctype, data, ns = client.call("GET", "/health")
        if status == 404 and not latencies:
            return {"n": 0, "note": "GET /health not found; baseline skipped"}
        check(status, ctype, data, "GET /health")
        client.server.count()
        latencies.append(ns)
    return {**stats_ms(latencies), "response_bytes": len(data)}


#: The requests of one latency round, in order, as the access log shows them, and their keys in the report.
LATENCY_ROUND = (("POST", "/add_generator", "add_generator"),
                 ("POST", "/modify_load_neighbourhood", "modify_load_neighbourhood"),
                 ("GET", "/state", "state"), ("GET", "/state", "state_304"))


def app_times(server: Server, first: int, rounds: int) -> dict[str, Any]:
    """Time inside the WSGI app (from the server's access log), for the measured requests of the latency phase."""
    log = server.access_log()
    size = len(LATENCY_ROUND)
    rows = log[first:first + size * rounds]
    expected = [(method, path) for method, path, _ in LATENCY_ROUND] * rounds
    if len(rows) != len(expected) or any((m, p) != e for (m, p, _, _), e in zip(rows, expected)):
        return {"available": False, "note": "access log lines did not line up with the requests sent"}
    out: dict[str, Any] = {"available": True}
    for k, (_, _, key) in enumerate(LATENCY_ROUND):
        ms = np.array([r[3] for r in rows[k::size]])
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        out[key] = {"p50": float(p50), "p90": float(p90), "p99": float(p99), "resolution_ms": 0.1}
    return out


def throughput_phase(server: Server, duration: float, neighbourhoods: list[int]) -> dict[str, Any]:
    """POST …/modify_load_neighbourhood (whole results) from 1, 2, 4 and 8 wrk connections, each on a scenario of
    its own, made fresh for the level (and deleted after it), so every level starts from the same state. wrk counts
    the answers; the scenarios' journals count the changes the server made, which must agree."""
    client = Client(server)
    warm = FactorAlternator(neighbourhoods)
    for op in [warm.next() for _ in range(20)] + warm.close():
        client.modify(op)
    levels = []
    for n in (1, 2, 4, 8):
        ids = [client.create_scenario(f"throughput-{n}-{k}", query="?sections=power_summary")[0] for k in range(n)]
        meter, server_cpu = CpuMeter(), cpu_seconds(server.process.pid)
        level = wrk_level(server, [f"/scenarios/{scenario_id}" for scenario_id in ids], duration)
        level["cpu"] = meter.stop()
        level["server_cpu_ms_per_request"] = (cpu_seconds(server.process.pid) - server_cpu) * 1000 \
            / level["requests"]
        level["journalled"] = sum(client.scenario(scenario_id)["changes"] for scenario_id in ids)
        if not level["requests"] <= level["journalled"] <= level["requests"] + n:  # answers cut off at the end
            raise BenchError(f"{n} clients: wrk counted {level['requests']} answers, the scenarios journalled "
                             f"{level['journalled']} changes")
        levels.append(level)
        for scenario_id in ids:
            client.delete_scenario(scenario_id)
    client.close()
    return {"workload": "POST /scenarios/<own id>/modify_load_neighbourhood (whole results), wrk", "levels": levels,
            "scaling_4": levels[2]["rps"] / levels[0]["rps"]}


def leak_phase(server: Server, target_requests: int, neighbourhoods: list[int]) -> dict[str, Any]:
    """Single client, mixed workload (modify, update an existing generator, GET /state) up to the target."""
    client = Client(server)
    alternator = FactorAlternator(neighbourhoods, offset=3)
    started, sent = time.perf_counter(), 0
    k = 0
    while server.requests < target_requests:
        kind = k % 3
        if kind == 0:
            client.modify(alternator.next())
        elif kind == 1:
            site = GENERATOR_SITES[(k // 3) % len(GENERATOR_SITES)]
            client.add_generator(GeneratorOp(site[0], site[1], generator_kw(site, k) + 0.5, False))
        else:
            client.state()
        k += 1
        sent += 1
    for op in alternator.close():
        client.modify(op, count=False)
    client.close()
    return {"requests_sent": sent, "seconds": time.perf_counter() - started}


# ----------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the API against the opendssdirect engine floor.")
    parser.add_argument("--requests", type=int, default=None,
                        help="measured requests per endpoint in the latency phase (default 1000; 200 with --quick)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per throughput level (default 5; 1 with --quick)")
    parser.add_argument("--leak-requests", type=int, default=None,
                        help="total requests to server A before the second RSS reading (default 10000; 2000 with "
                             "--quick); the first reading is at a tenth of it, capped at 1000")
    parser.add_argument("--many-scenarios", type=int, default=None, metavar="N",
                        help="scenarios created on one server in the scenarios phase (default 1000; 50 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a ~40 s smoke run (and the studies bench's --quick)")
    parser.add_argument("--no-studies", action="store_true",
                        help="skip bench/studies_bench.py, which otherwise runs last (its JSON beside --out)")
    parser.add_argument("--no-hosts", action="store_true",
                        help="skip bench/hosts_bench.py (single process against --engine-hosts 2; JSON beside --out)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--write-docs-figures", type=Path, nargs="?", const=docs_figures.DEFAULT, default=None,
                        metavar="PATH", help="after the run, write the figures the docs quote (default PATH "
                                             f"{docs_figures.DEFAULT.relative_to(REPO)}; bench/README.md lists them)")
    args = parser.parse_args(argv)
    args.requests = args.requests or (200 if args.quick else 1000)
    args.duration = args.duration or (1.0 if args.quick else 5.0)
    args.leak_requests = args.leak_requests or (2000 if args.quick else 10000)
    args.leak_early = min(1000, args.leak_requests // 10)
    args.many_scenarios = args.many_scenarios or (50 if args.quick else 1000)
    if args.requests < 2 * len(GENERATOR_SITES) or args.leak_early < 1:
        parser.error(f"--requests must be at least {2 * len(GENERATOR_SITES)} and --leak-requests at least 10")
    if not 1 <= args.many_scenarios <= 1000:
        parser.error("--many-scenarios must be from 1 to 1000 (the server runs with --max-scenarios 1100)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    neighbourhoods = neighbourhood_ids()
    gen_warm, gen_ops = warmup_generator_ops(), generator_ops(args.requests)
    load_seq = FactorAlternator(neighbourhoods)
    load_warm = [load_seq.next() for _ in range(WARMUP_ROUNDS)]
    load_ops = [load_seq.next() for _ in range(args.requests)]

    report: dict[str, Any] = {
        "environment": environment(),
        "config": {"requests": args.requests, "duration": args.duration, "leak_requests": args.leak_requests,
                   "leak_early": args.leak_early, "many_scenarios": args.many_scenarios, "quick": args.quick,
                   "out": str(args.out),
                   "generator_sites": GENERATOR_SITES, "warmup_site": WARMUP_SITE, "load_factor": LOAD_FACTOR,
                   "percentiles": "numpy.percentile, linear interpolation", "units": "ms unless named otherwise",
                   "throughput_workload": "POST /scenarios/<fresh id>/modify_load_neighbourhood only"},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg": {"start": loadavg()},
    }
    print(f"benchmark: engine floor ({args.requests} generator + {args.requests} load steps) ...", file=sys.stderr,
          flush=True)
    meter = CpuMeter()
    report["floor"] = run_floor(gen_warm, load_warm, gen_ops, load_ops)
    report["floor"]["cpu"] = meter.stop()

    with Servers() as servers:
        print("benchmark: server A: start-up, latency, leak check ...", file=sys.stderr, flush=True)
        a = servers.start("A", rss_at=(args.leak_early, args.leak_requests))
        meter = CpuMeter()
        report["latency"], post_body = latency_phase(a, gen_warm, load_warm, gen_ops, load_ops)
        report["latency"]["cpu"] = meter.stop()
        floor_totals, summary = report["floor"]["totals"], report["latency"]["final_power_summary"]
        cross = {"server_kW": summary["total_circuit_power_kW"], "floor_kW": floor_totals["total_circuit_power_kW"],
                 "server_losses_kW": summary["total_losses_kW"], "floor_losses_kW": floor_totals["total_losses_kW"]}
        cross["match"] = bool(abs(cross["server_kW"] - cross["floor_kW"]) <= 0.01
                              and abs(cross["server_losses_kW"] - cross["floor_losses_kW"]) <= 0.01)
        report["cross_check"] = cross
        report["leak_phase"] = leak_phase(a, args.leak_requests, neighbourhoods)
        servers.stop(a)

        print("benchmark: transport floor (waitress serving one fixed response) ...", file=sys.stderr, flush=True)
        app_time = report["latency"]["app_time"]
        hold_ms = app_time["modify_load_neighbourhood"]["p50"] if app_time.get("available") else 0.0
        report["transport"] = transport_phase(post_body, load_warm, load_ops, args.duration, hold_ms)

        print(f"benchmark: server B: throughput with 1, 2, 4, 8 clients, each on its own scenario "
              f"({args.duration:g} s per level) ...", file=sys.stderr, flush=True)
        b = servers.start("B")
        report["throughput"] = throughput_phase(b, args.duration, neighbourhoods)
        report["throughput"]["floor_rps"] = 1000.0 / report["floor"]["load"]["p50"]
        servers.stop(b)
    report["servers"] = servers.stops
    report["startup"] = {"seconds": {label: info["startup_s"] for label, info in servers.stops.items()},
                         "method": "Popen to the first HTTP 200 from GET /state, polled every 10 ms"}
    early, late = a.rss_marks.get(args.leak_early), a.rss_marks.get(args.leak_requests)
    if early is None or late is None:
        raise BenchError(f"RSS marks missing: {a.rss_marks}")
    report["memory"] = {
        "early_mark": args.leak_early, "late_mark": args.leak_requests,
        "rss_early_kB": early["VmRSS"], "rss_late_kB": late["VmRSS"],
        "rss_change": late["VmRSS"] / early["VmRSS"] - 1,
        "peak_kB": {label: (servers.stops[label].get("final_memory_kB") or {}).get("VmHWM", 0) for label in "AB"},
        "marks": {str(k): v for k, v in sorted(a.rss_marks.items())},
    }

    report["scenarios"], stops = scenarios_phase.run(args, neighbourhoods)
    report["servers"].update(stops)

    print("benchmark: engine floor re-run ...", file=sys.stderr, flush=True)
    rerun = run_floor(gen_warm, load_warm, gen_ops, load_ops)
    report["floor_rerun"] = {"generator_p50": rerun["generator"]["p50"], "load_p50": rerun["load"]["p50"],
                             "drift": rerun["mean_p50_ms"] / report["floor"]["mean_p50_ms"] - 1}
    report["loadavg"]["end"] = loadavg()
    report["total_seconds"] = time.perf_counter() - began
    report["targets"] = bench_targets(report)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
                                      default=str))
    print_bench(report)
    status = 0
    if not args.no_hosts:
        status = status or run_script("hosts_bench.py", args.out, "-hosts", args.quick, "--duration",
                                      str(args.duration))
    if not args.no_studies and not status:
        status = run_script("studies_bench.py", args.out, "-studies", args.quick)
    if args.write_docs_figures and not status:
        docs_figures.write(args.write_docs_figures, args.out)
    return status


def run_script(script: str, out: Path, suffix: str, quick: bool, *extra: str) -> int:
    """Another bench script as its own process (its own servers, workers and clusters), its JSON beside `out`,
    so that one command gives every figure the docs quote."""
    print(f"\nbenchmark: bench/{script} ...", file=sys.stderr, flush=True)
    command = [sys.executable, str(REPO / "bench" / script), "--out", str(out.with_name(out.stem + suffix + ".json")),
               *extra] + (["--quick"] if quick else [])
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    run_main(main)
