"""Every report of the bench: the targets (each a ratio to a floor measured in the same run, or a limit) and the
tables on stdout, of bench.py (with its scenarios phase and hosts_bench.py) and of studies_bench.py (with
hours_bench.py, inverter_bench.py and stochastic_bench.py). The phases measure; this module judges and prints."""

from __future__ import annotations

from typing import Any

from engine_floor import WARMUP_ROUNDS
from harness import POOL, over_pool_share
from studies_floor import STEP_KW

# bench.py's targets, against the two floors measured in the same run: T (transport: waitress answering canned
# bytes) and E (engine: the same change with opendssdirect alone). k = (p50 - T) / E.
TARGET_CHANGE_K = 2.5     # each change: p50 <= T(POST) + k E(its kind of change)
TARGET_STATE_K = 0.5      # GET /state: p50 <= T(GET) + k mean(E)
TARGET_REVALIDATE = 1.2   # GET /state answered 304: p50 / T(an empty 304)
TARGET_TAIL = 2.0         # each change: p99 / its own p50
TARGET_SCALING = 1.4      # req/s of 4 clients, each on its own scenario / req/s of 1 client, at least
TARGET_STARTUP_S = 2.0    # Popen -> first 200 from GET /state, worst of the server starts
TARGET_LEAK = 0.10        # |RSS after leak-requests / RSS after the early mark - 1|
TARGET_CREATE_P50_MS = 100.0   # POST /scenarios from the base case, p50
TARGET_REBUILD_P50_MS = 100.0  # first GET /scenarios/<id>/state of a resting scenario with 20 changes, p50
TARGET_PARALLEL = 1.4          # req/s of 2 clients on 2 scenarios / req/s of 2 clients on one, at least
# The studies' targets (value <= target).
TARGET_POOL = 1.2    # a study on a pool of N workers: API wall time / (floor wall time / N)
TARGET_DASK = 1.25   # Dask wall time / local pool wall time, same number of workers
TARGET_SERIES = 1.3  # API wall time / floor wall time
TARGET_LATENCY = 1.5  # GET /state during a study / idle, p50 and p90
TARGET_IN_PROCESS = 1.5  # a volt-var change: OpenDSSCircuit.add_generator p50 / its engine floor's p50


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def k_of(p50: float, transport: float, engine: float) -> float:
    """How many engine floors a p50 is above the transport floor: p50 = T + k E."""
    return (p50 - transport) / engine


def fmt_row(name: str, s: dict[str, Any], width: int = 34, extra: str = "") -> str:
    """One row of a table: the figures of engine_floor.stats_ms."""
    return (f"  {name:<{width}} {s['n']:>6} {s['p50']:>8.3f} {s['p90']:>8.3f} {s['p99']:>8.3f} "
            f"{s['min']:>8.3f} {s['max']:>8.3f} {s['stdev']:>8.3f}{extra}")


def cpu_note(cpu: dict[str, float] | None) -> str:
    """A warning when something else on the machine competed for the CPUs while we measured."""
    if not cpu:
        return ""
    other = cpu["other_processes_pct"]
    note = f"\n  [other processes used {other:.0f} % of the CPUs meanwhile"
    return note + ("; figures, tails above all, are disturbed]" if other > 10 else "]")


# ----------------------------------------------------------------------------------------------------- bench.py
def print_bench(r: dict[str, Any]) -> None:
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
    add(f"  * ?sections={lat['lean']['sections']}, after the interleaved requests: no tables built or sent")
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
        out.extend(scenario_lines(r["scenarios"], header))
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


def bench_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """bench.py's targets, each against the floors of the same run; the scenarios' last."""
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
        s = r["scenarios"]
        target("POST /scenarios p50 ms, from base", s["create"]["p50"], "<=", TARGET_CREATE_P50_MS)
        target(f"rebuild p50 ms, {s['rebuild']['changes']}-change journal (first GET …/state)",
               s["rebuild"]["rebuild"]["p50"], "<=", TARGET_REBUILD_P50_MS)
        target("2 clients: req/s on 2 scenarios / on 1 scenario", s["parallel"]["ratio"], ">=", TARGET_PARALLEL)
    return targets


def scenario_lines(s: dict[str, Any], header: str) -> list[str]:
    """The scenarios phase's lines of bench.py's table."""
    out = [f"Scenarios, ms (C: {s['servers']['C']}; D: {s['servers']['D']}; E: {s['servers']['E']})", header]
    out.append(fmt_row("C POST /scenarios (from base)", s["create"])
               + f"   {s['create']['response_bytes']} bytes")
    out.append(fmt_row("C DELETE /scenarios/<id>", s["delete"]))
    r = s["rebuild"]
    out.append(fmt_row("D GET …/state, resting: rebuild", r["rebuild"])
                         + f"   {r['changes']} changes replayed, {r['rebuild_over_live_p50']:.0f}x live p50")
    out.append(fmt_row("D GET …/state, live again", r["live"]))
    m = s["memory"]
    out.append(f"  memory per live scenario (C): {m['per_live_scenario_kB'] / 1024:.1f} MB (VmRSS "
               f"{m['rss_before_kB'] / 1024:.1f} -> {m['rss_after_kB'] / 1024:.1f} MB for {m['scenarios']} more "
               f"scenarios, each created and changed once)")
    p = s["parallel"]
    out.append(f"  {p['workload']} (C), {p['order']}:")
    for name in ("one", "two"):
        x = p[name]
        out.append(f"    on {x['scenarios']} scenario{'s' if x['scenarios'] > 1 else ' '} {x['rps']:>8.1f} req/s, p50 "
                   f"{x['latency_p50_ms']:.3f} ms; CPUs used: server {x['server_cpus']:.2f}, wrk "
                   f"{x['client_cpus']:.2f} of {p['cpus_usable']}; server CPU {x['server_cpu_ms_per_request']:.2f} "
                   f"ms per request; other processes {x['other_processes_pct']:.0f}%")
    other = max(p["one"]["other_processes_pct"], p["two"]["other_processes_pct"])
    out.append(f"    ratio {p['ratio']:.2f} (each round of one, two, two, one alone: "
               f"{', '.join(f'{x:.2f}' for x in p['ratio_by_round'])})"
               + (f"  [other processes used up to {other:.0f} % of the CPUs: the ratio is disturbed]"
                  if other > 10 else ""))
    n = s["many"]
    rs = n["restart"]
    out.append(f"  {n['count']} scenarios on one server (E), one change each: {n['seconds']:.1f} s "
               f"({n['per_scenario_ms']:.1f} ms per scenario; POST /scenarios p50 {n['create']['p50']:.1f} ms, "
               f"change p50 {n['change']['p50']:.1f} ms)")
    out.append(f"    GET /scenarios: {n['listed']} listed ({n['live']} live) in {n['list_ms']:.1f} ms, "
               f"{n['list_bytes']} bytes; a resting one rebuilt by GET …/state in {n['resting_get_state_ms']:.1f} ms "
               f"(same state)")
    out.append(f"    VmRSS {n['rss_kB'] / 1024:.1f} MB (peak {n['hwm_kB'] / 1024:.1f} MB; "
               f"{n['rss_start_kB'] / 1024:.1f} MB when it started empty); state file "
               f"{n['state_file_bytes'] / 1024:.0f} KB")
    out.append(f"    restarted on the same file: start-up {rs['startup_s']:.2f} s, VmRSS {rs['rss_at_start_kB'] / 1024:.1f} "
               f"MB with only the default live (+{n['per_resting_scenario_kB']:.0f} KB per resting scenario over "
               f"the empty start); {rs['listed']} listed, the same resting one rebuilt alike in "
               f"{rs['resting_get_state_ms']:.1f} ms")
    return out


def print_hosts(report: dict[str, Any]) -> None:
    print("\nengine hosts: single process | --engine-hosts 2")
    for key in ("single", "hosts_2"):
        r = report[key]
        levels = "  ".join(f"{level['clients']}c {level['rps']:.0f}/s" for level in r["throughput"])
        print(f"  {key:8} start-up {r['startup_s']:.2f} s; change p50 {r['latency']['change']['p50']:.2f} ms, "
              f"GET /state p50 {r['latency']['state']['p50']:.2f} ms; {levels}; 4c/1c {r['scaling']['4']:.2f}x; "
              f"web {r['memory']['web_mb']} MB, hosts {[h['rss_mb'] for h in r['memory']['hosts']]} MB")
        cpu = "  ".join(f"{level['clients']}c web {level['cpu_ms_per_request']['web']:.2f}"
                        + "".join(f" h{k} {ms:.2f}" for k, ms in enumerate(level['cpu_ms_per_request']['hosts']))
                        for level in r["throughput"])
        print(f"           CPU ms per request: {cpu}")
    ratios = report["ratios"]
    print(f"  2 hosts / single: change p50 {ratios['change_p50']:.2f}x, GET /state p50 {ratios['state_p50']:.2f}x")


# ----------------------------------------------------------------------------------------------------- studies
def limit(name: str, value: float, target: float, ok: bool | None = None) -> dict[str, Any]:
    """A studies target: `value <= target` (and whatever else `ok` says)."""
    return {"name": name, "value": value, "target": f"<= {target:g}",
            "result": verdict(value <= target if ok is None else ok)}


def print_limits(targets: list[dict[str, Any]]) -> None:
    print(f"\nTargets:\n  {'figure':<36} {'value':>8}  {'target':<9} result")
    for t in targets:
        value = f"{t['value']:.3f}" if isinstance(t["value"], float) else str(t["value"])
        print(f"  {t['name']:<36} {value:>8}  {t['target']:<9} {t['result']}")


def hours_ok(r: dict[str, Any]) -> bool:
    api = r["api"]
    return r["ratio_to_floor_over_2"] <= TARGET_POOL and not api["differ_from_floor"] and api["hours_match_floor"]


def inverters_ok(r: dict[str, Any]) -> tuple[bool, bool]:
    """The volt-var change's target and the volt-var study's."""
    study = r["study"]
    return (r["change"]["in_process_over_floor"] <= TARGET_IN_PROCESS,
            study["ratio_to_floor_over_2"] <= TARGET_POOL and not study["api"]["differ_from_floor"])


def studies_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    floor_s, hc, lat = r["floor"]["hosting_capacity"]["wall_s"], r["hosting_capacity"], r["latency"]
    change_ok, study_ok = inverters_ok(r["inverters"])
    differ = sum(len(run["differ_from_floor"]) + len(run["missing"]) for run in hc.values())
    return [
        limit("HC --workers 1 / floor", over_pool_share(hc["workers_1"]["wall_s"], floor_s, 1), TARGET_POOL),
        limit(f"HC --workers {POOL} / (floor / {POOL})", over_pool_share(hc["workers_2"]["wall_s"], floor_s, POOL),
              TARGET_POOL),
        limit(f"HC Dask {POOL} workers / --workers {POOL}", hc["dask_2"]["wall_s"] / hc["workers_2"]["wall_s"],
              TARGET_DASK),
        limit("time series API / floor", r["time_series"]["wall_s"] / r["floor"]["time_series"]["wall_s"],
              TARGET_SERIES),
        limit("GET /state p50 study / idle", lat["during_study"]["p50"] / lat["idle"]["p50"], TARGET_LATENCY),
        limit("GET /state p90 study / idle", lat["during_study"]["p90"] / lat["idle"]["p90"], TARGET_LATENCY),
        {"name": "HC buses differing from floor", "value": differ, "target": "0", "result": verdict(differ == 0)},
        limit(f"HC 2 hours --workers {POOL} / (floor / {POOL})", r["hours"]["ratio_to_floor_over_2"], TARGET_POOL,
              hours_ok(r["hours"])),
        limit("volt-var change p50 / engine floor", r["inverters"]["change"]["in_process_over_floor"],
              TARGET_IN_PROCESS, change_ok),
        limit(f"HC volt-var --workers {POOL} / (floor / {POOL})", r["inverters"]["study"]["ratio_to_floor_over_2"],
              TARGET_POOL, study_ok),
    ]


def print_studies(r: dict[str, Any]) -> None:
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
    print_hours(r["hours"])
    print_inverters(r["inverters"])
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
    print_limits(r["targets"])
    noisy = {phase: pct for phase, pct in r["other_processes_cpu_pct"].items() if pct > 5}
    print("\nOther processes used " + (", ".join(f"{pct:.0f} % of the CPUs during {phase}" for phase, pct in
                                               noisy.items()) + ": those figures are disturbed" if noisy
                                     else "under 5 % of the CPUs in every phase"))
    print(f"Total run {r['total_s']:.0f} s; JSON: {r['out']}")


def print_hours(r: dict[str, Any]) -> None:
    floor, api = r["floor"], r["api"]
    print(f"\nHosting capacity at {', '.join(f'{k} ({v})' for k, v in floor['hours'].items())}, {floor['buses']} "
          f"buses x 2 hours      wall s   trials")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {floor['wall_s']:7.2f} {floor['trials']:>8}   (mean of "
          f"{', '.join(f'{w:.2f}' for w in floor['runs'])})")
    print(f"  {'API --workers 2':<36} {api['wall_s']:7.2f} {api['trials']:>8}   ({api['tasks']} tasks; "
          f"{len(api['differ_from_floor'])} buses differ from the floor; hours as the floor's: "
          f"{api['hours_match_floor']})")
    print(f"  API / (floor / {POOL}) = {r['ratio_to_floor_over_2']:.3f} (target <= {TARGET_POOL:g}): "
          f"{verdict(hours_ok(r))}")


def print_inverters(r: dict[str, Any]) -> None:
    c, s = r["change"], r["study"]
    change_ok, study_ok = inverters_ok(r)
    print("\nVolt-var change (new definition, light load)       n      p50      p90      p99      min      max    stdev")
    print(fmt_row("engine floor (opendssdirect)", c["floor"], 36,
                  f"   (p50 of the two runs {', '.join(f'{x:.3f}' for x in c['floor']['runs_p50'])})"))
    print(fmt_row("OpenDSSCircuit.add_generator + JSON", c["in_process"], 36))
    print(fmt_row("POST …/add_generator (HTTP)", c["http"], 36))
    print(f"  in-process / floor = {c['in_process_over_floor']:.3f} (target <= {TARGET_IN_PROCESS:g}): "
          f"{verdict(change_ok)}; "
          f"HTTP / floor = {c['http_over_floor']:.3f}")
    f, a = s["floor"], s["api"]
    print(f"\nHosting capacity with volt-var, {f['buses']} buses, step {STEP_KW:g} kW      wall s   trials")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {f['wall_s']:7.2f} {f['trials']:>8}   (mean of "
          f"{', '.join(f'{w:.2f}' for w in f['runs'])})")
    print(f"  {'API --workers 2':<36} {a['wall_s']:7.2f} {a['trials']:>8}   ({a['tasks']} tasks; "
          f"{len(a['differ_from_floor'])} buses differ from the floor)")
    print(f"  API / (floor / {POOL}) = {s['ratio_to_floor_over_2']:.3f} (target <= {TARGET_POOL:g}): "
          f"{verdict(study_ok)}")


def stochastic_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    floor_s, pool, dask = r["floor"]["wall_s"], r["workers_2"], r["dask_2"]
    differ = len(pool["differ_from_floor"]) + len(dask["differ_from_floor"])
    return [limit(f"pool of {POOL} / (floor / {POOL})", over_pool_share(pool["wall_s"], floor_s, POOL), TARGET_POOL),
            {"name": f"Dask {POOL} workers / (floor / {POOL})", "value": over_pool_share(dask["wall_s"], floor_s, POOL),
             "target": "reported", "result": "-"},
            {"name": "samples differing from floor", "value": differ, "target": "0", "result": verdict(differ == 0)}]


def print_stochastic(r: dict[str, Any]) -> None:
    f, body = r["floor"], r["body"]
    span = body["penetration_pct"]
    print(f"\nStochastic hosting capacity, {body['samples']} samples x {len(r['penetrations_pct'])} penetrations "
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
    print_limits(r["targets"])
    print(f"Total run {r['total_s']:.0f} s; JSON: {r['out']}")


# ----------------------------------------------------------------------------------------------------- scale.py
TARGET_SCALE_K = 1.5          # each request path: p50 <= T + 1.5 E, at every size
TARGET_SCALE_STARTUP = 2.0    # start-up <= 2 (compile + first solve) + the server's fixed start
#: A path's log-log slope of p50 against nodes may exceed its floor's by this much: two fits over 5-8 feeders
#: whose p50s move by 10-30 % from run to run on this machine differ by about that much with no change in the code.
SCALE_SLOPE_TOLERANCE = 0.1


def slope(nodes: list[float], ms: list[float]) -> float:
    """The least-squares slope of log(ms) against log(nodes): 1 is linear, 2 quadratic."""
    import numpy as np

    return float(np.polyfit(np.log(nodes), np.log(ms), 1)[0])


def scale_judged(r: dict[str, Any]) -> None:
    """Add to each feeder `judged` (per path: p50, E, T, floor E + T, ratio (p50 - T) / E, target, within) and to
    the run `fixed_start_ms` and `slopes` (per path: ours, floor, within)."""
    feeders = r["feeders"]
    base = min(feeders, key=lambda f: f["nodes"])  # IEEE 13 in a full run: its start-up minus its engine part
    fixed = base["paths"]["startup"]["ours"]["p50"] - base["paths"]["startup"]["engine"]["p50"]
    r["fixed_start_ms"] = {"ms": fixed, "from": base["name"]}
    for f in feeders:
        f["judged"] = {}
        for path, got in f["paths"].items():
            p50, e = got["ours"]["p50"], got["engine"]["p50"]
            if path == "startup":
                t, target = 0.0, TARGET_SCALE_STARTUP * e + fixed
                ratio = (p50 - fixed) / e
            else:
                t = got["transport"]["p50"]
                target, ratio = t + TARGET_SCALE_K * e, k_of(p50, t, e)
            f["judged"][path] = {"p50_ms": p50, "engine_ms": e, "transport_ms": t, "floor_ms": e + t,
                                 "ratio": ratio, "target_ms": target, "within": p50 <= target}
    r["slopes"] = {}
    if len(feeders) < 2:
        return
    nodes = [f["nodes"] for f in feeders]
    for path in feeders[0]["judged"]:
        ours = slope(nodes, [f["judged"][path]["p50_ms"] for f in feeders])
        floor = slope(nodes, [f["judged"][path]["floor_ms"] for f in feeders])
        r["slopes"][path] = {"ours": ours, "floor": floor, "within": ours <= floor + SCALE_SLOPE_TOLERANCE}


def print_scale(r: dict[str, Any]) -> None:
    env = r["machine"]
    print(f"\nscale: {env['cpu']} ({env['cpus_usable']} usable CPUs), Python {env['python']}, OpenDSSDirect.py "
          f"{env['opendssdirect']}, commit {env['git_commit']}; {r['seconds']:.0f} s")
    print(f"start-up target: 2 x (compile + first solve) + {r['fixed_start_ms']['ms']:.0f} ms (the server's fixed "
          f"start, from {r['fixed_start_ms']['from']}); each path: p50 <= T + {TARGET_SCALE_K} E; "
          f"ratio = (p50 - T) / E (start-up: (p50 - fixed) / E)")
    for f in r["feeders"]:
        b = f["bytes"]
        print(f"\n{f['label']}: {f['buses']:,} buses, {f['nodes']:,} nodes, {f['rounds']} rounds; GET /state "
              f"{b['state']['plain']:,} B (gzip {b['state']['gzip']:,}), a change {b['change']['plain']:,} B "
              f"(gzip {b['change']['gzip']:,}); other processes {f['cpu'].get('other_processes_pct', 0):.0f} % CPU")
        print(f"  {'path':<18}{'p50 ms':>10}{'E ms':>10}{'T ms':>9}{'ratio':>8}{'target ms':>11}  verdict   bytes")
        for path, j in f["judged"].items():
            size = f["paths"][path].get("answer_bytes")
            print(f"  {path:<18}{j['p50_ms']:>10.2f}{j['engine_ms']:>10.2f}{j['transport_ms']:>9.2f}"
                  f"{j['ratio']:>8.2f}{j['target_ms']:>11.2f}  {verdict(j['within']):<8}"
                  f"{'' if size is None else f'{size:>9,}'}")
    if r["slopes"]:
        print(f"\nslope of p50 against nodes (log-log, over {len(r['feeders'])} feeders): ours vs the floor "
              f"(+{SCALE_SLOPE_TOLERANCE} allowed)")
        for path, s in r["slopes"].items():
            print(f"  {path:<18}{s['ours']:>8.2f}{s['floor']:>8.2f}  {verdict(s['within'])}")
