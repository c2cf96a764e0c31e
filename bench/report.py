"""The report of bench.py: the targets (against the floors measured in the same run), the table on stdout and
the machine it ran on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import opendssdirect

import scenarios_phase
from engine_floor import REPO, WARMUP_ROUNDS, fmt_row
from harness import usable_cpus

LEAN_SECTIONS = "power_summary,voltage_profile"

# Targets, against the two floors measured in the same run: T (transport: waitress answering canned bytes) and
# E (engine: the same change with opendssdirect alone). k = (p50 - T) / E.
TARGET_CHANGE_K = 2.5     # each change: p50 <= T(POST) + k E(its kind of change)
TARGET_STATE_K = 0.5      # GET /state: p50 <= T(GET) + k mean(E)
TARGET_REVALIDATE = 1.2   # GET /state answered 304: p50 / T(an empty 304)
TARGET_TAIL = 2.0         # each change: p99 / its own p50
TARGET_SCALING = 1.4      # req/s of 4 clients, each on its own scenario / req/s of 1 client, at least
TARGET_STARTUP_S = 2.0    # Popen -> first 200 from GET /state, worst of the server starts
TARGET_LEAK = 0.10        # |RSS after leak-requests / RSS after the early mark - 1|


def environment() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = usable_cpus()

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
        "numpy": version("numpy"), "cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": usable,
        "platform": platform.platform(), "git_commit": git("rev-parse", "--short", "HEAD").strip(),
        "git_dirty_files": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()],
    }


def cpu_note(cpu: dict[str, float] | None) -> str:
    """A warning when something else on the machine competed for the CPUs while we measured."""
    if not cpu:
        return ""
    other = cpu["other_processes_pct"]
    note = f"\n  [other processes used {other:.0f} % of the CPUs meanwhile"
    return note + ("; figures, tails above all, are disturbed]" if other > 10 else "]")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_report(r: dict[str, Any]) -> None:
    env, cfg = r["environment"], r["config"]
    out = []
    add = out.append
    add("IEEE 123-bus power-flow API benchmark" + ("  [--quick]" if cfg["quick"] else ""))
    add(f"  Python {env['python']} | opendssdirect.py {env['opendssdirect']} | flask {env['flask']} | "
        f"waitress {env['waitress']} | orjson {env['orjson']} | numpy {env['numpy']}")
    add(f"  Engine: {env['engine']}")
    add(f"  CPU: {env['cpu']} | {env['cpu_count']} cores ({env['cpus_usable']} usable) | {env['platform']}")
    dirty = f" (uncommitted changes: {', '.join(env['git_dirty_files'])})" if env["git_dirty_files"] else ""
    add(f"  Code: commit {env['git_commit']}{dirty}")
    add(f"  Requests per endpoint {cfg['requests']} (+{WARMUP_ROUNDS} warm-up rounds), throughput "
        f"{cfg['duration']:g} s per level, leak check {cfg['leak_early']} -> {cfg['leak_requests']} requests")
    add("")
    header = f"  {'':<34} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'min':>8} {'max':>8} {'stdev':>8}"
    f = r["floor"]
    add(f"Load average at start {r['loadavg']['start']}, at end {r['loadavg']['end']}")
    add("")
    add("Engine floor, ms per step (opendssdirect in-process: change + solve + batch read + orjson)"
        + cpu_note(f.get("cpu")))
    add(header)
    add(fmt_row("generator change", f["generator"]))
    add(fmt_row("  new generator", f["generator_new"]))
    add(fmt_row("  existing generator", f["generator_existing"]))
    add(fmt_row("load change (one neighbourhood)", f["load"]))
    idle = f["load_after_idle"]
    add(fmt_row(f"  the same after {idle['idle_ms']:g} ms idle each", idle)
        + f"   {idle['p50'] / f['load']['p50']:.2f}x: what waiting for the client costs the next change")
    for kind in ("generator", "load"):
        c = f[kind]["components_p50_ms"]
        add(f"    {kind} p50 parts: change {c['change']:.3f}, solve {c['solve']:.3f}, "
            f"read+serialise {c['read_serialise']:.3f}")
    add("")
    lat = r["latency"]
    app = lat["app_time"]
    add("HTTP latency, ms (one keep-alive http.client connection; the three requests interleaved)"
        + cpu_note(lat.get("cpu")))
    add(header + ("   app p50" if app.get("available") else ""))

    def app_col(key: str) -> str:
        return f" {app[key]['p50']:>9.1f}" if app.get("available") else ""

    add(fmt_row("POST /add_generator", lat["add_generator"], extra=app_col("add_generator")))
    add(fmt_row("  new generator", lat["add_generator_new"]))
    add(fmt_row("  existing generator", lat["add_generator_existing"]))
    add(fmt_row("POST /modify_load_neighbourhood", lat["modify_load_neighbourhood"],
                extra=app_col("modify_load_neighbourhood")))
    add(fmt_row("GET /state", lat["state"], extra=app_col("state")))
    add(fmt_row("GET /state, If-None-Match: 304", lat["state_304"], extra=app_col("state_304")))
    if lat["health_baseline"].get("n"):
        add(fmt_row("GET /health (HTTP baseline, after)", lat["health_baseline"]))
    add(fmt_row("POST /modify…, summaries only *", lat["lean"])
        + f"   {lat['lean']['p50'] / f['load']['p50']:.2f}x load floor, {lat['lean']['response_bytes']} bytes")
    sizes = lat["response_bytes"]
    add(f"  response bytes: add_generator {sizes['add_generator']}, modify {sizes['modify_load_neighbourhood']}, "
        f"state {sizes['state']}; connections opened: {lat['connections_opened']}")
    add(f"  * ?sections={LEAN_SECTIONS}, after the interleaved requests: no tables built or sent")
    if app.get("available"):
        add("  app p50 = time inside the WSGI app from the server's access log (0.1 ms resolution)")
    add("")
    t = r["transport"]
    add(f"Transport floor T, ms (bench/transport_floor.py: waitress as api.py sets it up, answering every request "
        f"with one {t['response_bytes']}-byte change response, or 304 to If-None-Match; no Flask, no engine; "
        f"same client)")
    add(header)
    add(fmt_row("POST (same bodies as the load changes)", t["post"]))
    add(fmt_row("GET", t["state"]))
    add(fmt_row("GET, If-None-Match: 304 (empty)", t["empty_304"]))
    paced = t["post_paced"]
    add(fmt_row(f"POST, after holding the CPU {paced['hold_ms']:.1f} ms *", paced))
    add(f"  * the time beyond the hold (the API's app p50 for a change): on this machine a client that waited "
        f"milliseconds wakes more slowly; {paced['p50'] - t['post']['p50']:+.3f} ms against the instant floor")
    for key in ("throughput_1_client", "throughput_4_clients"):
        level = t[key]
        add(f"  wrk, {level['clients']} connection{'s' if level['clients'] > 1 else ''}: {level['rps']:.1f} req/s "
            f"(p50 {level['latency']['p50']:.3f} ms)")
    add("")
    add("Where the time goes: p50 = T + k E (T: transport floor, E: engine floor of the same kind of change)")
    for name, p50, transport, engine in (
            ("POST /add_generator", lat["add_generator"]["p50"], t["post"]["p50"], f["generator"]["p50"]),
            ("POST /modify_load_neighbourhood", lat["modify_load_neighbourhood"]["p50"], t["post"]["p50"],
             f["load"]["p50"]),
            ("GET /state", lat["state"]["p50"], t["state"]["p50"], f["mean_p50_ms"])):
        add(f"  {name:<34} {p50:7.3f} ms = T {transport:.3f} + {k_of(p50, transport, engine):.2f} x E {engine:.3f}")
    paced, idle = t["post_paced"], f["load_after_idle"]
    modify = lat["modify_load_neighbourhood"]["p50"]
    add(f"  POST /modify_load_neighbourhood against the floors at the server's pace (T after a {paced['hold_ms']:.1f} ms "
        f"hold, E after {idle['idle_ms']:g} ms idle): k = {k_of(modify, paced['p50'], idle['p50']):.2f}")
    add("")
    add("Targets")
    for x in r["targets"]:
        add(f"  {x['name']:<62} {x['value']:>8.2f} {x['op']} {x['target']:<5g} {x['result']}")
    add("")
    tp = r["throughput"]
    add(f"Throughput: wrk, POST /scenarios/<id>/modify_load_neighbourhood (whole results; x1.05 / x1/1.05 per "
        f"neighbourhood), {max(1, round(cfg['duration']))} s per level, each connection on its own fresh scenario")
    add(f"  {'clients':>7} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  {'server CPU ms/req':>17} "
        f"{'wrk CPUs':>8} {'other CPU':>9}")
    for level in tp["levels"]:
        other = level.get("cpu", {}).get("other_processes_pct")
        add(f"  {level['clients']:>7} {level['requests']:>9} {level['rps']:>9.1f} {level['latency']['p50']:>8.3f} "
            f"{level['latency']['p99']:>8.3f}  {level['server_cpu_ms_per_request']:>17.2f} "
            f"{level['client_cpu_s'] / level['seconds']:>8.2f} {'' if other is None else f'{other:8.0f}%'}")
    add("  other CPU = share of all CPUs used by processes other than this benchmark, wrk and the server")
    add(f"  4 clients / 1 client: {tp['scaling_4']:.2f}; engine floor rate 1 / load floor p50 = "
        f"{tp['floor_rps']:.1f} req/s")
    add("")
    if "scenarios" in r:
        out.extend(scenarios_phase.report_lines(r["scenarios"], header))
        add("")
    st = r["startup"]
    add("Start-up, Popen -> first 200 from GET /state (polled every 10 ms): "
        + ", ".join(f"server {k} {v:.2f} s" for k, v in st["seconds"].items()))
    m = r["memory"]
    add(f"Memory (server A, /proc/<pid>/status): VmRSS after {m['early_mark']} requests {m['rss_early_kB'] / 1024:.1f} MB, "
        f"after {m['late_mark']} {m['rss_late_kB'] / 1024:.1f} MB ({100 * m['rss_change']:+.1f} %); "
        f"peak VmHWM A {m['peak_kB']['A'] / 1024:.1f} MB, B {m['peak_kB']['B'] / 1024:.1f} MB")
    x = r["cross_check"]
    add(f"Cross-check: server state after the latency phase vs engine floor: total power "
        f"{x['server_kW']:.4f} vs {x['floor_kW']:.4f} kW, losses {x['server_losses_kW']:.4f} vs "
        f"{x['floor_losses_kW']:.4f} kW -> {'match' if x['match'] else 'MISMATCH (ratios compare different work)'}")
    fr = r["floor_rerun"]
    add(f"Floor re-run after the HTTP phases: generator p50 {fr['generator_p50']:.3f} ms, load p50 "
        f"{fr['load_p50']:.3f} ms (drift {100 * fr['drift']:+.1f} % of the mean p50)")
    passed = sum(t["result"] == "PASS" for t in r["targets"])
    add(f"Targets: {passed} PASS, {len(r['targets']) - passed} FAIL | total {r['total_seconds']:.1f} s | "
        f"JSON: {cfg['out']}")
    print("\n".join(out), flush=True)


def k_of(p50: float, transport: float, engine: float) -> float:
    """How many engine floors a p50 is above the transport floor: p50 = T + k E."""
    return (p50 - transport) / engine


def build_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    f, lat, t = r["floor"], r["latency"], r["transport"]
    targets = []

    def target(name: str, value: float, op: str, limit: float) -> None:
        ok = value <= limit if op == "<=" else value >= limit
        targets.append({"name": name, "value": value, "op": op, "target": limit, "result": verdict(ok)})

    target("k of POST /add_generator p50 = T(POST) + k E(generator)",
           k_of(lat["add_generator"]["p50"], t["post"]["p50"], f["generator"]["p50"]), "<=", TARGET_CHANGE_K)
    target("k of POST /modify_load_neighbourhood p50 = T(POST) + k E(load)",
           k_of(lat["modify_load_neighbourhood"]["p50"], t["post"]["p50"], f["load"]["p50"]), "<=", TARGET_CHANGE_K)
    target("k of GET /state p50 = T(GET) + k mean E",
           k_of(lat["state"]["p50"], t["state"]["p50"], f["mean_p50_ms"]), "<=", TARGET_STATE_K)
    target("GET /state 304 p50 / T(empty 304) p50", lat["state_304"]["p50"] / t["empty_304"]["p50"], "<=",
           TARGET_REVALIDATE)
    target("POST /add_generator p99 / its p50", lat["add_generator"]["p99"] / lat["add_generator"]["p50"], "<=",
           TARGET_TAIL)
    target("POST /modify_load_neighbourhood p99 / its p50",
           lat["modify_load_neighbourhood"]["p99"] / lat["modify_load_neighbourhood"]["p50"], "<=", TARGET_TAIL)
    target("req/s, 4 clients on own scenarios / 1 client", r["throughput"]["scaling_4"], ">=", TARGET_SCALING)
    target("start-up s, worst of the server starts", max(r["startup"]["seconds"].values()), "<=", TARGET_STARTUP_S)
    target(f"|RSS after {r['memory']['late_mark']} / after {r['memory']['early_mark']} requests - 1|",
           abs(r["memory"]["rss_change"]), "<=", TARGET_LEAK)
    if "scenarios" in r:
        for row in scenarios_phase.targets(r["scenarios"]):
            target(*row)
    return targets
