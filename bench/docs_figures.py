"""The figures the docs quote (docs/performance.md and docs/deployment.md, through docs/figures/render.py), taken
from the bench's JSON and written to docs/figures/bench.json, key for key.

    python bench/bench.py --write-docs-figures          # a full run, then the file from it
    python bench/docs_figures.py RUN.json [RUN.json …]  # the file from runs already made (bench.py's --out files)

A run is bench.py's JSON with its siblings (RUN-hosts.json, RUN-studies.json, RUN-studies-stochastic.json, as
bench.py writes them). Over several runs a figure is a [low, high] range; from one run, a number. The keys the
bench does not measure (the profile of a change, the reasoning about cores, figures from runs of a script alone)
are kept as the file has them; bench/README.md lists which are which.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from engine_floor import REPO
from report import (TARGET_CHANGE_K, TARGET_CREATE_P50_MS, TARGET_DASK, TARGET_IN_PROCESS, TARGET_LATENCY,
                    TARGET_PARALLEL, TARGET_POOL, TARGET_REBUILD_P50_MS, TARGET_REVALIDATE, TARGET_SCALING,
                    TARGET_SERIES, TARGET_STATE_K, k_of)
from studies_floor import STEP_KW

DEFAULT = REPO / "docs" / "figures" / "bench.json"
SIBLINGS = {"hosts": "-hosts", "studies": "-studies", "stochastic": "-studies-stochastic"}


def load_run(path: Path) -> dict[str, Any]:
    """bench.py's JSON and its siblings', by part ("grid", "hosts", "studies", "stochastic")."""
    run = {"grid": json.loads(path.read_text(encoding="utf-8"))}
    for part, suffix in SIBLINGS.items():
        sibling = path.with_name(path.stem + suffix + ".json")
        if sibling.exists():
            run[part] = json.loads(sibling.read_text(encoding="utf-8"))
    return run


def spread(values: list[float], digits: int = 2) -> float | list[float]:
    """One number from one run, a [low, high] range over several (rounded as the docs quote them)."""
    low, high = (round(x, digits or None) for x in (min(values), max(values)))
    return low if low == high else [low, high]


def leaves(tree: Any, path: tuple[str, ...] = ()) -> set[str]:
    """The dotted keys of a figures tree (a list is one figure: a range, or a row of numbers)."""
    if isinstance(tree, dict):
        return {leaf for key, value in tree.items() for leaf in leaves(value, (*path, key))}
    return {".".join(path)}


def grid(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """bench.py's figures: the latency table, the floors at the server's pace, throughput, scenarios."""
    def each(pick: Any, digits: int = 2) -> float | list[float]:
        return spread([pick(run["grid"]) for run in runs], digits)

    def p(key: str, *path: str) -> dict[str, Any]:
        def walk(r: dict[str, Any]) -> dict[str, Any]:
            for step in (key, *path):
                r = r[step]
            return r
        return {"p50": each(lambda r: walk(r)["p50"]), "p99": each(lambda r: walk(r)["p99"])}

    def k(route: str, transport: str, engine: Any) -> Any:
        return each(lambda r: k_of(r["latency"][route]["p50"], r["transport"][transport]["p50"], engine(r)), 1)

    figures = {
        "grid": {
            "engine_floor": {"generator": p("floor", "generator"), "load": p("floor", "load")},
            "transport_floor": {**{key: p("transport", key) for key in ("post", "state", "empty_304")},
                                "response_kB": each(lambda r: r["transport"]["response_bytes"] / 1000, 0)},
            "add_generator": {**p("latency", "add_generator"), "k_target": TARGET_CHANGE_K,
                              "k": k("add_generator", "post", lambda r: r["floor"]["generator"]["p50"])},
            "modify_load_neighbourhood": {**p("latency", "modify_load_neighbourhood"), "k_target": TARGET_CHANGE_K,
                                          "k": k("modify_load_neighbourhood", "post",
                                                 lambda r: r["floor"]["load"]["p50"])},
            "state": {**p("latency", "state"), "k": k("state", "state", lambda r: r["floor"]["mean_p50_ms"]),
                      "k_target": TARGET_STATE_K},
            "state_304": {**p("latency", "state_304"), "times_t_target": TARGET_REVALIDATE,
                          "times_t": each(lambda r: r["latency"]["state_304"]["p50"]
                                          / r["transport"]["empty_304"]["p50"], 1)},
            "lean": p("latency", "lean"),
        },
        "where_time_goes": {
            "server_change": each(lambda r: r["latency"]["app_time"]["modify_load_neighbourhood"]["p50"], 1),
            "floor_after_idle_times": each(lambda r: r["floor"]["load_after_idle"]["p50"] / r["floor"]["load"]["p50"],
                                           1),
            "idle_ms": each(lambda r: r["floor"]["load_after_idle"]["idle_ms"], 0),
            "wake_client": each(lambda r: r["transport"]["post_paced"]["p50"] - r["transport"]["post"]["p50"], 1),
            "k_paced": each(lambda r: k_of(r["latency"]["modify_load_neighbourhood"]["p50"],
                                           r["transport"]["post_paced"]["p50"], r["floor"]["load_after_idle"]["p50"]),
                            1),
        },
        "throughput": {
            "rps": {str(level["clients"]): spread([run["grid"]["throughput"]["levels"][i]["rps"] for run in runs], 0)
                    for i, level in enumerate(runs[0]["grid"]["throughput"]["levels"])},
            "scaling_4": each(lambda r: r["throughput"]["scaling_4"]), "scaling_4_target": TARGET_SCALING,
            "startup_s": spread([s for run in runs for s in run["grid"]["startup"]["seconds"].values()], 1),
            "memory_after_1000_MB": each(lambda r: r["memory"]["rss_early_kB"] / 1024, 0),
            "memory_growth_10000_pct": each(lambda r: 100 * r["memory"]["rss_change"], 1),
        },
    }
    s = lambda r: r["scenarios"]  # noqa: E731
    figures["scenarios"] = {
        "create_p50": each(lambda r: s(r)["create"]["p50"], 0), "create_target": TARGET_CREATE_P50_MS,
        "rebuild_changes": runs[0]["grid"]["scenarios"]["rebuild"]["changes"],
        "rebuild_p50": each(lambda r: s(r)["rebuild"]["rebuild"]["p50"], 0), "rebuild_target": TARGET_REBUILD_P50_MS,
        "live_p50": each(lambda r: s(r)["rebuild"]["live"]["p50"], 1),
        "memory_per_live_MB": each(lambda r: s(r)["memory"]["per_live_scenario_kB"] / 1024, 1),
        "many": {"count": runs[0]["grid"]["scenarios"]["many"]["count"],
                 "live": runs[0]["grid"]["scenarios"]["many"]["live"],
                 "create_s": each(lambda r: s(r)["many"]["seconds"], 0),
                 "rss_MB": each(lambda r: s(r)["many"]["rss_kB"] / 1024, 0),
                 "rss_empty_MB": each(lambda r: s(r)["many"]["rss_start_kB"] / 1024, 0),
                 "state_file_MB": each(lambda r: s(r)["many"]["state_file_bytes"] / 2 ** 20, 1),
                 "listed": runs[0]["grid"]["scenarios"]["many"]["listed"],
                 "list_ms": each(lambda r: s(r)["many"]["list_ms"], 0),
                 "restart_s": each(lambda r: s(r)["many"]["restart"]["startup_s"], 1),
                 "restart_rss_MB": each(lambda r: s(r)["many"]["restart"]["rss_at_start_kB"] / 1024, 0),
                 "per_resting_kB": each(lambda r: s(r)["many"]["per_resting_scenario_kB"], 0)},
        "two_scenarios_of_one": each(lambda r: s(r)["parallel"]["ratio"]), "two_scenarios_target": TARGET_PARALLEL,
    }
    return figures


def hosts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """hosts_bench.py's: the single process and --engine-hosts 2, run by run."""
    h = [run["hosts"] for run in runs]

    def each(pick: Any, digits: int = 2) -> float | list[float]:
        return spread([pick(r) for r in h], digits)

    def cpu(level: int) -> dict[str, Any]:
        at = [{lv["clients"]: lv["cpu_ms_per_request"] for lv in r[key]["throughput"]} for r in h
              for key in ("single", "hosts_2")]
        single, hosted = at[0::2], at[1::2]
        busy = [max(x[level]["hosts"]) for x in hosted] if level == 1 else [ms for x in hosted
                                                                          for ms in x[level]["hosts"]]
        return {"single": spread([x[level]["web"] for x in single]), "web": spread([x[level]["web"] for x in hosted]),
                "host": spread(busy)}

    return {
        "runs": len(h),
        "rps": {key: {"first": [round(lv["rps"]) for lv in h[0][key]["throughput"]],
                      "second": [round(lv["rps"]) for lv in h[-1][key]["throughput"]]} for key in ("single", "hosts_2")},
        "scaling_4": {key: each(lambda r, key=key: r[key]["scaling"]["4"]) for key in ("single", "hosts_2")},
        "scaling_2_hosts_2": each(lambda r: r["hosts_2"]["scaling"]["2"]),
        "change_p50": {"single": each(lambda r: r["single"]["latency"]["change"]["p50"]),
                       "hosts_2": each(lambda r: r["hosts_2"]["latency"]["change"]["p50"]),
                       "ratio": each(lambda r: r["ratios"]["change_p50"])},
        "state_p50": {"single": each(lambda r: r["single"]["latency"]["state"]["p50"]),
                      "hosts_2": each(lambda r: r["hosts_2"]["latency"]["state"]["p50"]),
                      "ratio": each(lambda r: r["ratios"]["state_p50"])},
        "startup_s": {key: each(lambda r, key=key: r[key]["startup_s"], 1) for key in ("single", "hosts_2")},
        "memory_MB": {"single_web": each(lambda r: r["single"]["memory"]["web_mb"], 0),
                      "hosts_2_web": each(lambda r: r["hosts_2"]["memory"]["web_mb"], 0),
                      "hosts_2_each_host": spread([x["rss_mb"] for r in h for x in r["hosts_2"]["memory"]["hosts"]],
                                                  0)},
        "cpu_ms_per_change": {str(level): cpu(level) for level in (1, 2, 4)},
        "wrk_cpu_ms": spread([1000 * lv["wrk_cpu_s"] / lv["requests"] for r in h for key in ("single", "hosts_2")
                              for lv in r[key]["throughput"]]),
    }


def studies(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """studies_bench.py's: hosting capacity, the series, the batch, latency during a study, hours, inverters, Dask."""
    st = [run["studies"] for run in runs]

    def each(pick: Any, digits: int = 2) -> float | list[float]:
        return spread([pick(r) for r in st], digits)

    hc = lambda r: r["hosting_capacity"]  # noqa: E731
    floor = lambda r: r["floor"]["hosting_capacity"]["wall_s"]  # noqa: E731
    dask_of_pool = [hc(r)["dask_2"]["wall_s"] / hc(r)["workers_2"]["wall_s"] for r in st]
    first = st[0]
    return {
        "studies": {
            "buses": first["floor"]["hosting_capacity"]["buses"], "step_kw": STEP_KW,
            "trials": first["floor"]["hosting_capacity"]["trials"],
            "hc_floor_s": each(floor), "hc_workers_1_s": each(lambda r: hc(r)["workers_1"]["wall_s"]),
            "hc_workers_1_of_floor": each(lambda r: hc(r)["workers_1"]["wall_s"] / floor(r)),
            "hc_workers_1_target": TARGET_POOL,
            "hc_pool_2_s": each(lambda r: hc(r)["workers_2"]["wall_s"]),
            "hc_pool_2_of_half_floor": each(lambda r: hc(r)["workers_2"]["wall_s"] / (floor(r) / 2)),
            "hc_pool_2_target": TARGET_POOL,
            "hc_pool_2_speedup": each(lambda r: hc(r)["workers_1"]["wall_s"] / hc(r)["workers_2"]["wall_s"]),
            "hc_dask_2_s": each(lambda r: hc(r)["dask_2"]["wall_s"]), "hc_dask_2_of_pool": spread(dask_of_pool),
            "hc_dask_2_target": TARGET_DASK, "hc_dask_2_of_pool_runs": spread(dask_of_pool), "hc_dask_2_runs": len(st),
            "series_floor_s": each(lambda r: r["floor"]["time_series"]["wall_s"]),
            "series_s": each(lambda r: r["time_series"]["wall_s"]),
            "series_of_floor": each(lambda r: r["time_series"]["wall_s"] / r["floor"]["time_series"]["wall_s"]),
            "series_target": TARGET_SERIES,
            "series_max_diff_pu": f"{max(r['time_series']['max_abs_diff_voltage_pu'] for r in st):.1e}",
            "batch_cases": first["batch"]["cases"], "batch_s": each(lambda r: r["batch"]["wall_s"]),
            "batch_ms_per_case": each(lambda r: r["batch"]["ms_per_case"], 1),
            **{key: {q: each(lambda r, key=key, q=q: r["latency"][name][q]) for q in ("p50", "p90")}
               for key, name in (("state_during_study", "during_study"), ("state_idle", "idle"))},
            "state_during_target": TARGET_LATENCY,
        },
        "hours": {
            "tasks": first["hours"]["api"]["tasks"], "trials": first["hours"]["api"]["trials"],
            "floor_s": spread([w for r in st for w in r["hours"]["floor"]["runs"]], 1),
            "pool_2_s": each(lambda r: r["hours"]["api"]["wall_s"]),
            "pool_2_of_half_floor": each(lambda r: r["hours"]["ratio_to_floor_over_2"]), "target": TARGET_POOL,
            "runs": len(st), "trials_per_task": round(first["hours"]["api"]["trials"] / first["hours"]["api"]["tasks"]),
            "solves_per_task": 2 * round(first["hours"]["api"]["trials"] / first["hours"]["api"]["tasks"]),
        },
        "inverter": {
            "changes": first["inverters"]["change"]["in_process"]["n"],
            "change_p50": each(lambda r: r["inverters"]["change"]["in_process"]["p50"]),
            "change_floor_p50": each(lambda r: r["inverters"]["change"]["floor"]["p50"]),
            "change_of_floor": each(lambda r: r["inverters"]["change"]["in_process_over_floor"]),
            "change_target": TARGET_IN_PROCESS,
            "change_http_p50": each(lambda r: r["inverters"]["change"]["http"]["p50"], 1),
            "hc_trials": first["inverters"]["study"]["api"]["trials"],
            "hc_pool_2_s": each(lambda r: r["inverters"]["study"]["api"]["wall_s"]),
            "hc_floor_s": each(lambda r: r["inverters"]["study"]["floor"]["wall_s"]),
            "hc_of_half_floor": each(lambda r: r["inverters"]["study"]["ratio_to_floor_over_2"]),
            "hc_target": TARGET_POOL,
        },
        "dask": {
            "trivial_task_one_ms": each(lambda r: r["dask_overhead"]["dask"]["trivial"]["one_at_a_time_ms"], 0),
            "trivial_task_in_flight_ms": each(lambda r: r["dask_overhead"]["dask"]["trivial"]["all_at_once_ms"], 0),
            "in_flight": first["dask_overhead"]["tasks"],
            "local_one_ms": each(lambda r: r["dask_overhead"]["process_pool"]["trivial"]["one_at_a_time_ms"], 1),
            "local_in_flight_ms": each(lambda r: r["dask_overhead"]["process_pool"]["trivial"]["all_at_once_ms"], 1),
            "bus_task_ms": spread([round(100 * floor(r) / r["floor"]["hosting_capacity"]["buses"]) * 10 for r in st],
                                  0),
        },
    }


def stochastic(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """stochastic_bench.py's: the floor, the local pool and the docs' Dask cluster, run by run."""
    st = [run["stochastic"] for run in runs]
    floors = [w for r in st for w in r["floor"]["runs"]]
    pool = [r["workers_2"]["wall_s"] / (r["floor"]["wall_s"] / 2) for r in st]
    dask = [r["dask_2"]["wall_s"] / (r["floor"]["wall_s"] / 2) for r in st]
    trials = st[0]["floor"]["trials"]
    return {
        "samples": st[0]["body"]["samples"], "penetrations": len(st[0]["penetrations_pct"]), "trials": trials,
        "floor_s": spread(floors), "floor_ms_per_trial": spread([1000 * w / trials for w in floors], 1),
        "runs": len(st), "other_processes_cpu_pct_at_most": math.ceil(max(
            r[key]["other_processes_cpu_pct"] for r in st for key in ("workers_2", "dask_2"))),
        "floor_runs_within_pct": math.ceil(max(100 * (max(r["floor"]["runs"]) / min(r["floor"]["runs"]) - 1)
                                               for r in st)),
        "pool_2_s": spread([r["workers_2"]["wall_s"] for r in st]), "pool_2_of_half_floor": spread(pool),
        "pool_2_median": round(statistics.median(pool), 2), "target": TARGET_POOL,
        "met_runs": sum(x <= TARGET_POOL for x in pool),
        "ideal_of_half_floor": spread([r["floor"]["greedy_bound_2_workers"] for r in st]),
        "workers_ms_per_trial": spread([r["workers_2"]["worker_cpu_ms_per_trial"] for r in st], 1),
        "dask_2_s": spread([r["dask_2"]["wall_s"] for r in st]), "dask_2_of_half_floor": spread(dask),
        "dask_2_median": round(statistics.median(dask), 2), "dask_runs": len(st),
        "dask_extra_ms_per_trial": round(statistics.mean(r["dask_2"]["worker_cpu_ms_per_trial"]
                                                         - r["workers_2"]["worker_cpu_ms_per_trial"] for r in st)),
    }


def machine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    env = runs[-1]["grid"]["environment"]
    version = re.search(r"\d+\.\d+\.\d+", env["engine"])
    other = [level.get("cpu", {}).get("other_processes_pct", 0.0) for run in runs
             for level in run["grid"]["throughput"]["levels"]]
    return {"python": env["python"], "opendssdirect": env["opendssdirect"],
            "dss_c_api": version[0] if version else env["engine"], "waitress": env["waitress"], "flask": env["flask"],
            "other_processes_cpu_pct_below": max(1, math.ceil(max(other, default=0.0))),
            "commit": env["git_commit"] + ("+" if env["git_dirty_files"] else "")}


def merged(old: Any, new: Any) -> Any:
    """`new` over `old`, key by key: what the runs measured replaces what the file had; the rest stays."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{key: merged(old.get(key), value) for key, value in new.items()}}
    return new


def figures(paths: list[Path]) -> dict[str, Any]:
    """Every figure the runs measured, by the file's keys (a part missing from a run is left out)."""
    runs = [load_run(path) for path in paths]
    out: dict[str, Any] = {"run": machine(runs), **grid(runs)}
    if all("hosts" in run for run in runs):
        out["hosts"] = hosts(runs)
    if all("studies" in run for run in runs):
        out.update(studies(runs))
    if all("stochastic" in run for run in runs):
        out["stochastic"] = stochastic(runs)
    return out


def write(out: Path, *runs: Path) -> None:
    old = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    new = figures(list(runs))
    if old and leaves(new) - leaves(old):
        print(f"docs figures: keys the file did not have: {sorted(leaves(new) - leaves(old))}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged(old, new), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"docs figures: {out} (then python docs/figures/render.py writes the pages)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="bench.py --out files (their siblings beside them)")
    parser.add_argument("--out", type=Path, default=DEFAULT, help=f"default {DEFAULT.relative_to(REPO)}")
    args = parser.parse_args(argv)
    write(args.out, *args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
