"""The scenarios phase of bench.py: creation, rebuild, memory per live scenario, parallel scenarios, many scenarios.

bench.py runs this after its throughput phase; it is not a script of its own. It starts three more servers, each
as a user starts it, from an empty temporary directory (state files live in another temporary directory):

  C  `api.py --port N` (defaults: in memory, at most 64 scenarios, every one live): memory per live scenario,
     creation from the base case, then 2 clients on one scenario against 2 clients on two scenarios.
  D  `api.py --port N --state FILE --max-live-scenarios 2 --max-scenarios 1100`: two scenarios of 20 changes take
     turns in the one engine left beside the default scenario's, so each first GET …/state rebuilds its scenario.
  E  `api.py --port N --state FILE --max-scenarios 1100 --max-live-scenarios 32`: --many-scenarios scenarios
     (1000; 50 with --quick), one change each; then stopped and started again on the same file (E2).

Every answer is checked as in the other phases, and every rebuilt state is compared with the state the scenario
reported when its last change was made.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from engine_floor import (GENERATOR_SITES, LOAD_FACTOR, BenchError, FactorAlternator, GeneratorOp, LoadOp,
                          generator_kw, stats_ms)
from harness import Client, Server, Servers, wrk_level
from machine import CpuMeter, cpu_seconds, usable_cpus

LEAN = "?sections=power_summary"
CREATIONS = 20              # timed POST /scenarios, deleted afterwards
LIVE_FOR_MEMORY = 16        # scenarios made live between the two VmRSS readings
JOURNAL_GENERATORS = 10     # per rebuilt scenario: 10 generators + 10 neighbourhood changes = 20 changes
LIVE_GETS_PER_ROUND = 5     # GET …/state of the same scenario once it is live again
MANY_MAX_LIVE, MANY_MAX_SCENARIOS = 32, 1100
SAME_STATE_KW = 1e-6        # a rebuilt state must give the same totals as the original, to this many kW


def lean_summary(body: bytes) -> dict[str, Any]:
    return orjson.loads(body)["results"]["power_summary"]


def check_same_state(got: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    keys = ("total_circuit_power_kW", "total_circuit_power_kVAR", "total_losses_kW")
    if any(abs(got[k] - expected[k]) > SAME_STATE_KW for k in keys):
        raise BenchError(f"{what}: the rebuilt state differs from the one reported after the last change: "
                           f"{ {k: got[k] for k in keys} } vs { {k: expected[k] for k in keys} }")


def listing(client: Client) -> tuple[dict[str, dict[str, Any]], int, int]:
    """GET /scenarios by id, ns elapsed, body bytes."""
    doc, ns, size = client.get("/scenarios")
    return {s["id"]: s for s in doc["scenarios"]}, ns, size


def in_scenario(client: Client, scenario_id: str) -> Client:
    client.prefix = f"/scenarios/{scenario_id}"
    return client


# ----------------------------------------------------------------------------------------------------- server C
def memory_per_live(client: Client, server: Server, neighbourhoods: list[int]) -> tuple[dict[str, Any], list[str]]:
    """VmRSS before and after LIVE_FOR_MEMORY more scenarios go live (each created from base and changed once)."""
    ids = []

    def make(k: int) -> None:
        scenario_id, _, _ = client.create_scenario(f"memory-{k}", LEAN)
        in_scenario(client, scenario_id).modify(LoadOp(neighbourhoods[k % len(neighbourhoods)], LOAD_FACTOR),
                                                query=LEAN)
        client.prefix = ""
        ids.append(scenario_id)

    make(0)  # not counted: first-use allocations (imports, caches) would be charged to the scenarios
    before = server.memory()["VmRSS"]
    for k in range(1, LIVE_FOR_MEMORY + 1):
        make(k)
    after = server.memory()["VmRSS"]
    health = client.get("/health")[0]
    if health.get("live_scenarios") != LIVE_FOR_MEMORY + 2:  # with the default scenario and the uncounted one
        raise BenchError(f"GET /health: expected {LIVE_FOR_MEMORY + 2} live scenarios, got {health}")
    return {"scenarios": LIVE_FOR_MEMORY, "rss_before_kB": before, "rss_after_kB": after,
            "per_live_scenario_kB": (after - before) / LIVE_FOR_MEMORY, "live_scenarios": health["live_scenarios"],
            "method": "VmRSS after minus before, / scenarios; each created from base, then one change"}, ids


def creation(client: Client, n: int) -> dict[str, Any]:
    """n × POST /scenarios from the base case (whole results in the answer, as a plain POST gets), then DELETEs.
    The creation time is a target here (report.py: p50 <= 100 ms); the tests do not time it."""
    created, size = [], 0
    ids = []
    for k in range(n):
        scenario_id, ns, _ = client.create_scenario(f"create-{k}")
        created.append(ns)
        ids.append(scenario_id)
        size = len(client.last_body)
    deleted = [client.delete_scenario(scenario_id) for scenario_id in ids]
    return {"create": {**stats_ms(created), "response_bytes": size}, "delete": stats_ms(deleted)}


def parallel(client: Client, server: Server, duration: float, neighbourhoods: list[int]) -> dict[str, Any]:
    """2 wrk connections on one scenario against 2 each on its own, POST …/modify_load_neighbourhood?sections=
    power_summary, in 8 slots of duration / 4 (whole seconds, at least 1) ordered one, two, two, one twice, so
    that other work on the machine (which comes and goes within seconds) falls on both sides alike."""
    ids = [client.create_scenario(f"parallel-{k}", LEAN)[0] for k in range(2)]
    prefixes = [f"/scenarios/{scenario_id}" for scenario_id in ids]
    for scenario_id in ids:  # warm-up, brought back to factor 1
        warm = FactorAlternator(neighbourhoods)
        for op in [warm.next() for _ in range(20)] + warm.close():
            in_scenario(client, scenario_id).modify(op, query=LEAN)
    client.prefix = ""
    layouts = {"one": [prefixes[0]] * 2, "two": prefixes}
    slots: dict[str, list[dict[str, Any]]] = {"one": [], "two": []}

    def journalled() -> int:
        return sum(client.scenario(scenario_id)["changes"] for scenario_id in ids)

    for name in ("one", "two", "two", "one") * 2:
        changes = journalled()
        meter, server_cpu, began = CpuMeter(), cpu_seconds(server.process.pid), time.perf_counter()
        level = wrk_level(server, layouts[name], duration / 4, LEAN)
        level["wall_s"] = time.perf_counter() - began  # the CPU times below cover starting wrk too
        level["cpu"] = meter.stop()
        level["server_cpu_s"] = cpu_seconds(server.process.pid) - server_cpu
        level["journalled"] = journalled() - changes  # what the server did, counted apart from wrk
        if not level["requests"] <= level["journalled"] <= level["requests"] + 2:
            raise BenchError(f"2 clients on {name}: wrk counted {level['requests']} answers, the scenarios "
                             f"journalled {level['journalled']} changes")
        slots[name].append(level)
    for scenario_id in ids:
        client.delete_scenario(scenario_id)

    def rate(levels: list[dict[str, Any]]) -> float:
        return sum(x["requests"] for x in levels) / sum(x["seconds"] for x in levels)

    out: dict[str, Any] = {"workload": f"POST /scenarios/<id>/modify_load_neighbourhood{LEAN}, 2 wrk connections",
                           "order": "(one, two, two, one) x 2, duration / 4 each"}
    for name, levels in slots.items():
        wall = sum(x["wall_s"] for x in levels)
        requests = sum(x["requests"] for x in levels)
        out[name] = {"scenarios": 1 if name == "one" else 2, "requests": requests,
                     "journalled": sum(x["journalled"] for x in levels),
                     "seconds": sum(x["seconds"] for x in levels), "rps": rate(levels),
                     "latency_p50_ms": float(np.median([x["latency"]["p50"] for x in levels])),
                     "server_cpus": sum(x["server_cpu_s"] for x in levels) / wall,
                     "client_cpus": sum(x["client_cpu_s"] for x in levels) / wall,
                     "server_cpu_ms_per_request": 1000 * sum(x["server_cpu_s"] for x in levels) / requests,
                     "other_processes_pct": float(np.mean([x["cpu"].get("other_processes_pct", 0.0)
                                                           for x in levels])),
                     "slots": levels}
    out["ratio"] = out["two"]["rps"] / out["one"]["rps"]
    # Each round of one, two, two, one on its own: how steady the machine was.
    out["ratio_by_round"] = [rate(slots["two"][k:k + 2]) / rate(slots["one"][k:k + 2]) for k in (0, 2)]
    out["cpus_usable"] = usable_cpus()
    return out


# ----------------------------------------------------------------------------------------------------- server D
def rebuild(client: Client, rounds: int, neighbourhoods: list[int]) -> dict[str, Any]:
    """Two scenarios of 20 changes each (10 new generators, 10 neighbourhoods x1.05) on a server with room for one
    live scenario beside the default: each turn, GET /scenarios shows the next one resting, and its first
    GET …/state (whole results) rebuilds it (compile + 20 changes replayed), evicting the other."""
    expected: dict[str, dict[str, Any]] = {}
    for k in range(2):
        scenario_id, _, _ = client.create_scenario(f"journal-{k}", LEAN)
        sites = GENERATOR_SITES[k * JOURNAL_GENERATORS:(k + 1) * JOURNAL_GENERATORS]
        for j, site in enumerate(sites):
            in_scenario(client, scenario_id).add_generator(GeneratorOp(site[0], site[1], generator_kw(site, j),
                                                                         True))
            client.modify(LoadOp(neighbourhoods[(j + 7 * k) % len(neighbourhoods)], LOAD_FACTOR), query=LEAN)
        expected[scenario_id] = lean_summary(client.last_body)
        client.prefix = ""
    changes = 2 * JOURNAL_GENERATORS
    rebuilt, live, size = [], [], 0
    for _ in range(rounds):
        for scenario_id, summary in expected.items():
            scenarios = listing(client)[0]
            if scenarios[scenario_id]["live"] is not False or scenarios[scenario_id]["changes"] != changes:
                raise BenchError(f"GET /scenarios: expected scenario {scenario_id} resting with {changes} "
                                   f"changes, got {scenarios[scenario_id]}")
            ns, size, got = in_scenario(client, scenario_id).state()
            check_same_state(got, summary, f"GET /scenarios/{scenario_id}/state after a rebuild")
            rebuilt.append(ns)
            live += [client.state()[0] for _ in range(LIVE_GETS_PER_ROUND)]
            client.prefix = ""
    health = client.get("/health")[0]
    if health.get("live_scenarios") != 2 or health.get("durable") is not True:
        raise BenchError(f"GET /health: expected 2 live scenarios and durable true, got {health}")
    out = {"changes": changes, "rebuild": stats_ms(rebuilt), "live": stats_ms(live), "response_bytes": size,
           "method": "first GET /scenarios/<id>/state of a resting scenario (whole results) vs the same GET "
                     "once it is live"}
    out["rebuild_over_live_p50"] = out["rebuild"]["p50"] / out["live"]["p50"]
    return out


# ----------------------------------------------------------------------------------------------------- server E
def many(client: Client, server: Server, count: int, neighbourhoods: list[int]) -> tuple[dict[str, Any],
                                                                                               dict[str, Any]]:
    """`count` scenarios, each created from base and changed once; the listing, one resting scenario rebuilt.
    Returns the figures and, per scenario id, the state reported after its change."""
    rss_start = server.memory()["VmRSS"]
    created, changed = [], []
    expected: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    for k in range(count):
        scenario_id, ns, _ = client.create_scenario(f"many-{k}", LEAN)
        created.append(ns)
        factor = round(1 + (k % 50 + 1) / 100, 2)  # 1.01 .. 1.50: the scenarios differ
        ns, _ = in_scenario(client, scenario_id).modify(LoadOp(neighbourhoods[k % len(neighbourhoods)], factor),
                                                        query=LEAN)
        changed.append(ns)
        expected[scenario_id] = lean_summary(client.last_body)
        client.prefix = ""
    seconds = time.perf_counter() - began
    scenarios, list_ns, list_bytes = listing(client)
    missing = [s for s in expected if s not in scenarios or scenarios[s]["changes"] != 1]
    live_count = sum(s["live"] for s in scenarios.values())
    if len(scenarios) < count + 1 or missing or live_count > MANY_MAX_LIVE:
        raise BenchError(f"GET /scenarios: expected {count + 1} scenarios, at most {MANY_MAX_LIVE} live; got "
                           f"{len(scenarios)}, {live_count} live, {len(missing)} missing or with another journal")
    resting = sorted(s for s in expected if not scenarios[s]["live"])
    pick = random.Random(20261125).choice(resting or sorted(expected))
    ns, _, got = in_scenario(client, pick).state()
    check_same_state(got, expected[pick], f"GET /scenarios/{pick}/state (resting among {count})")
    client.prefix = ""
    health = client.get("/health")[0]
    if health.get("scenarios") != count + 1 or health.get("durable") is not True:
        raise BenchError(f"GET /health: expected {count + 1} scenarios on a durable server, got {health}")
    memory = server.memory()
    return {"count": count, "seconds": seconds, "per_scenario_ms": 1000 * seconds / count,
            "create": stats_ms(created), "change": stats_ms(changed),
            "listed": len(scenarios), "live": live_count, "resting": len(resting),
            "list_ms": list_ns / 1e6, "list_bytes": list_bytes,
            "resting_pick": pick, "resting_get_state_ms": ns / 1e6,
            "rss_start_kB": rss_start, "rss_kB": memory["VmRSS"], "hwm_kB": memory["VmHWM"],
            "health": {k: health.get(k) for k in ("scenarios", "live_scenarios", "durable")}}, expected


def restart(client: Client, server: Server, count: int, pick: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The same state file after a restart: every scenario is listed again, the same resting one rebuilds alike."""
    rss_before_reads = server.memory()["VmRSS"]  # the default scenario live, every other one resting
    scenarios, list_ns, _ = listing(client)
    if len(scenarios) != count + 1:
        raise BenchError(f"GET /scenarios after a restart: expected {count + 1} scenarios, got {len(scenarios)}")
    ns, _, got = in_scenario(client, pick).state()
    check_same_state(got, expected, f"GET /scenarios/{pick}/state after a restart")
    client.prefix = ""
    return {"startup_s": server.startup_s, "listed": len(scenarios), "list_ms": list_ns / 1e6,
            "resting_get_state_ms": ns / 1e6, "rss_at_start_kB": rss_before_reads, "rss_kB": server.memory()["VmRSS"]}


# ----------------------------------------------------------------------------------------------------- the phase
def run(args: Any, neighbourhoods: list[int]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Every scenario figure, and each server's stop information (for the report's "servers")."""
    state_dir = Path(tempfile.mkdtemp(prefix="bench-state-"))
    rebuild_file, many_file = state_dir / "rebuild.sqlite", state_dir / "many.sqlite"
    flags = {
        "C": (),
        "D": ("--state", str(rebuild_file), "--max-live-scenarios", "2", "--max-scenarios", str(MANY_MAX_SCENARIOS)),
        "E": ("--state", str(many_file), "--max-scenarios", str(MANY_MAX_SCENARIOS), "--max-live-scenarios",
              str(MANY_MAX_LIVE)),
    }
    out: dict[str, Any] = {"servers": {label: " ".join(["api.py --port N", *f]).replace(str(state_dir) + "/", "")
                                       for label, f in flags.items()}}
    try:
        with Servers() as servers:
            print("benchmark: scenarios, server C: memory per live scenario, creation, 2 clients on 1 vs 2 "
                  "scenarios ...", file=sys.stderr, flush=True)
            c = servers.start("C", *flags["C"])
            client = Client(c)
            out["memory"], memory_ids = memory_per_live(client, c, neighbourhoods)
            out.update(creation(client, CREATIONS))
            for scenario_id in memory_ids:
                client.delete_scenario(scenario_id)
            out["parallel"] = parallel(client, c, args.duration, neighbourhoods)
            servers.stop(c, client)

            rounds = 2 if args.quick else 5
            print(f"benchmark: scenarios, server D: rebuild of a 20-change journal x {2 * rounds} ...",
                  file=sys.stderr, flush=True)
            d = servers.start("D", *flags["D"])
            client = Client(d)
            out["rebuild"] = rebuild(client, rounds, neighbourhoods)
            servers.stop(d, client)

            print(f"benchmark: scenarios, server E: {args.many_scenarios} scenarios, then a restart ...",
                  file=sys.stderr, flush=True)
            e = servers.start("E", *flags["E"])
            client = Client(e)
            out["many"], expected = many(client, e, args.many_scenarios, neighbourhoods)
            servers.stop(e, client)
            out["many"]["state_file_bytes"] = sum(p.stat().st_size for p in state_dir.glob("many.sqlite*"))
            e2 = servers.start("E2", *flags["E"])
            pick = out["many"]["resting_pick"]
            client = Client(e2)
            out["many"]["restart"] = restart(client, e2, args.many_scenarios, pick, expected[pick])
            out["many"]["per_resting_scenario_kB"] = ((out["many"]["restart"]["rss_at_start_kB"]
                                                       - out["many"]["rss_start_kB"]) / args.many_scenarios)
            servers.stop(e2, client)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return out, servers.stops
