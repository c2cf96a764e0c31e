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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine_floor import REPO
from harness import POOL, over_pool_share
from report import (SCALE_SLOPE_TOLERANCE, TARGET_CHANGE_K, TARGET_CREATE_P50_MS, TARGET_DASK, TARGET_IN_PROCESS,
                    TARGET_LATENCY, TARGET_PARALLEL, TARGET_POOL, TARGET_REBUILD_P50_MS, TARGET_REVALIDATE,
                    TARGET_SCALE_K, TARGET_SCALE_STARTUP, TARGET_SCALING, TARGET_SERIES, TARGET_STATE_K, k_of)
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


class Runs:
    """One part of the runs (bench.py's "grid", "hosts", "studies" or "stochastic" JSON), figure by figure."""

    def __init__(self, runs: list[dict[str, Any]], part: str) -> None:
        self.docs = [run[part] for run in runs]
        self.first = self.docs[0]

    def __call__(self, what: str | Callable[[dict[str, Any]], float], digits: int = 2) -> float | list[float]:
        """A figure of each run (a dotted path into its JSON, or a function of it), spread over the runs."""
        return spread([what(doc) if callable(what) else at(doc, what) for doc in self.docs], digits)

    def every(self, pick: Callable[[dict[str, Any]], list[float]], digits: int = 2) -> float | list[float]:
        """Several figures of each run, spread together."""
        return spread([x for doc in self.docs for x in pick(doc)], digits)


def at(tree: Any, path: str) -> Any:
    """The value a dotted path names (a number walks a list)."""
    for key in path.split("."):
        tree = tree[int(key)] if isinstance(tree, list) else tree[key]
    return tree


def grid(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """bench.py's figures: the latency table, the floors at the server's pace, throughput, scenarios."""
    g = Runs(runs, "grid")

    def p(path: str) -> dict[str, Any]:
        return {"p50": g(f"{path}.p50"), "p99": g(f"{path}.p99")}

    def k(route: str, transport: str, engine: str) -> float | list[float]:
        return g(lambda r: k_of(at(r, f"latency.{route}.p50"), at(r, f"transport.{transport}.p50"), at(r, engine)), 1)

    many = "scenarios.many"
    return {
        "grid": {
            "engine_floor": {"generator": p("floor.generator"), "load": p("floor.load")},
            "transport_floor": {**{key: p(f"transport.{key}") for key in ("post", "state", "empty_304")},
                                "response_kB": g(lambda r: r["transport"]["response_bytes"] / 1000, 0)},
            "add_generator": {**p("latency.add_generator"), "k_target": TARGET_CHANGE_K,
                              "k": k("add_generator", "post", "floor.generator.p50")},
            "modify_load_neighbourhood": {**p("latency.modify_load_neighbourhood"), "k_target": TARGET_CHANGE_K,
                                          "k": k("modify_load_neighbourhood", "post", "floor.load.p50")},
            "state": {**p("latency.state"), "k": k("state", "state", "floor.mean_p50_ms"), "k_target": TARGET_STATE_K},
            "state_304": {**p("latency.state_304"), "times_t_target": TARGET_REVALIDATE,
                          "times_t": g(lambda r: r["latency"]["state_304"]["p50"] / r["transport"]["empty_304"]["p50"],
                                       1)},
            "lean": p("latency.lean"),
        },
        "where_time_goes": {
            "server_change": g("latency.app_time.modify_load_neighbourhood.p50", 1),
            "floor_after_idle_times": g(lambda r: r["floor"]["load_after_idle"]["p50"] / r["floor"]["load"]["p50"], 1),
            "idle_ms": g("floor.load_after_idle.idle_ms", 0),
            "wake_client": g(lambda r: r["transport"]["post_paced"]["p50"] - r["transport"]["post"]["p50"], 1),
            "k_paced": g(lambda r: k_of(r["latency"]["modify_load_neighbourhood"]["p50"],
                                        r["transport"]["post_paced"]["p50"], r["floor"]["load_after_idle"]["p50"]), 1),
        },
        "throughput": {
            "rps": {str(level["clients"]): g(f"throughput.levels.{i}.rps", 0)
                    for i, level in enumerate(g.first["throughput"]["levels"])},
            "scaling_4": g("throughput.scaling_4"), "scaling_4_target": TARGET_SCALING,
            "startup_s": g.every(lambda r: list(r["startup"]["seconds"].values()), 1),
            "memory_after_1000_MB": g(lambda r: r["memory"]["rss_early_kB"] / 1024, 0),
            "memory_growth_10000_pct": g(lambda r: 100 * r["memory"]["rss_change"], 1),
        },
        "scenarios": {
            "create_p50": g("scenarios.create.p50", 0), "create_target": TARGET_CREATE_P50_MS,
            "rebuild_changes": at(g.first, "scenarios.rebuild.changes"),
            "rebuild_p50": g("scenarios.rebuild.rebuild.p50", 0), "rebuild_target": TARGET_REBUILD_P50_MS,
            "live_p50": g("scenarios.rebuild.live.p50", 1),
            "memory_per_live_MB": g(lambda r: r["scenarios"]["memory"]["per_live_scenario_kB"] / 1024, 1),
            "many": {"count": at(g.first, f"{many}.count"), "live": at(g.first, f"{many}.live"),
                     "create_s": g(f"{many}.seconds", 0),
                     "rss_MB": g(lambda r: at(r, many)["rss_kB"] / 1024, 0),
                     "rss_empty_MB": g(lambda r: at(r, many)["rss_start_kB"] / 1024, 0),
                     "state_file_MB": g(lambda r: at(r, many)["state_file_bytes"] / 2 ** 20, 1),
                     "listed": at(g.first, f"{many}.listed"), "list_ms": g(f"{many}.list_ms", 0),
                     "restart_s": g(f"{many}.restart.startup_s", 1),
                     "restart_rss_MB": g(lambda r: at(r, many)["restart"]["rss_at_start_kB"] / 1024, 0),
                     "per_resting_kB": g(f"{many}.per_resting_scenario_kB", 0)},
            "two_scenarios_of_one": g("scenarios.parallel.ratio"), "two_scenarios_target": TARGET_PARALLEL,
        },
    }


def hosts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """hosts_bench.py's: the single process and --engine-hosts 2, run by run."""
    h = Runs(runs, "hosts")
    both = ("single", "hosts_2")

    def cpu(level: int) -> dict[str, Any]:
        def of(r: dict[str, Any], key: str) -> dict[str, Any]:
            return next(lv["cpu_ms_per_request"] for lv in r[key]["throughput"] if lv["clients"] == level)

        busy = (lambda r: [max(of(r, "hosts_2")["hosts"])]) if level == 1 else (lambda r: of(r, "hosts_2")["hosts"])
        return {"single": h(lambda r: of(r, "single")["web"]), "web": h(lambda r: of(r, "hosts_2")["web"]),
                "host": h.every(busy)}

    return {
        "runs": len(h.docs),
        "rps": {key: {"first": [round(lv["rps"]) for lv in h.first[key]["throughput"]],
                      "second": [round(lv["rps"]) for lv in h.docs[-1][key]["throughput"]]} for key in both},
        "scaling_4": {key: h(f"{key}.scaling.4") for key in both}, "scaling_2_hosts_2": h("hosts_2.scaling.2"),
        **{f"{kind}_p50": {**{key: h(f"{key}.latency.{kind}.p50") for key in both}, "ratio": h(f"ratios.{kind}_p50")}
           for kind in ("change", "state")},
        "startup_s": {key: h(f"{key}.startup_s", 1) for key in both},
        "memory_MB": {"single_web": h("single.memory.web_mb", 0), "hosts_2_web": h("hosts_2.memory.web_mb", 0),
                      "hosts_2_each_host": h.every(lambda r: [x["rss_mb"] for x in at(r, "hosts_2.memory.hosts")],
                                                   0)},
        "cpu_ms_per_change": {str(level): cpu(level) for level in (1, 2, 4)},
        "wrk_cpu_ms": h.every(lambda r: [1000 * lv["wrk_cpu_s"] / lv["requests"] for key in both
                                         for lv in r[key]["throughput"]]),
    }


def studies(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """studies_bench.py's: hosting capacity, the series, the batch, latency during a study, hours, inverters, Dask."""
    s = Runs(runs, "studies")
    first, hc, change, study = s.first, "hosting_capacity", "inverters.change", "inverters.study"

    def wall(key: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: at(r, f"{hc}.{key}.wall_s")

    def floor(r: dict[str, Any]) -> float:
        return r["floor"]["hosting_capacity"]["wall_s"]

    per_task = round(at(first, "hours.api.trials") / at(first, "hours.api.tasks"))
    overhead = "dask_overhead.{}.trivial.{}"
    return {
        "studies": {
            "buses": at(first, "floor.hosting_capacity.buses"), "step_kw": STEP_KW,
            "trials": at(first, "floor.hosting_capacity.trials"), "hc_floor_s": s(floor),
            "hc_workers_1_s": s(wall("workers_1")),
            "hc_workers_1_of_floor": s(lambda r: wall("workers_1")(r) / floor(r)),
            "hc_workers_1_target": TARGET_POOL, "hc_pool_2_s": s(wall("workers_2")),
            "hc_pool_2_of_half_floor": s(lambda r: over_pool_share(wall("workers_2")(r), floor(r), POOL)),
            "hc_pool_2_target": TARGET_POOL,
            "hc_pool_2_speedup": s(lambda r: wall("workers_1")(r) / wall("workers_2")(r)),
            "hc_dask_2_s": s(wall("dask_2")), "hc_dask_2_target": TARGET_DASK,
            **dict.fromkeys(("hc_dask_2_of_pool", "hc_dask_2_of_pool_runs"),
                            s(lambda r: wall("dask_2")(r) / wall("workers_2")(r))),
            "hc_dask_2_runs": len(s.docs),
            "series_floor_s": s("floor.time_series.wall_s"), "series_s": s("time_series.wall_s"),
            "series_of_floor": s(lambda r: r["time_series"]["wall_s"] / r["floor"]["time_series"]["wall_s"]),
            "series_target": TARGET_SERIES,
            "series_max_diff_pu": f"{max(r['time_series']['max_abs_diff_voltage_pu'] for r in s.docs):.1e}",
            "batch_cases": at(first, "batch.cases"), "batch_s": s("batch.wall_s"),
            "batch_ms_per_case": s("batch.ms_per_case", 1),
            "state_during_study": {q: s(f"latency.during_study.{q}") for q in ("p50", "p90")},
            "state_idle": {q: s(f"latency.idle.{q}") for q in ("p50", "p90")}, "state_during_target": TARGET_LATENCY,
        },
        "hours": {
            "tasks": at(first, "hours.api.tasks"), "trials": at(first, "hours.api.trials"),
            "floor_s": s.every(lambda r: r["hours"]["floor"]["runs"], 1), "pool_2_s": s("hours.api.wall_s"),
            "pool_2_of_half_floor": s("hours.ratio_to_floor_over_2"), "target": TARGET_POOL, "runs": len(s.docs),
            "trials_per_task": per_task, "solves_per_task": 2 * per_task,
        },
        "inverter": {
            "changes": at(first, f"{change}.in_process.n"), "change_p50": s(f"{change}.in_process.p50"),
            "change_floor_p50": s(f"{change}.floor.p50"), "change_of_floor": s(f"{change}.in_process_over_floor"),
            "change_target": TARGET_IN_PROCESS, "change_http_p50": s(f"{change}.http.p50", 1),
            "hc_trials": at(first, f"{study}.api.trials"), "hc_pool_2_s": s(f"{study}.api.wall_s"),
            "hc_floor_s": s(f"{study}.floor.wall_s"), "hc_of_half_floor": s(f"{study}.ratio_to_floor_over_2"),
            "hc_target": TARGET_POOL,
        },
        "dask": {
            "trivial_task_one_ms": s(overhead.format("dask", "one_at_a_time_ms"), 0),
            "trivial_task_in_flight_ms": s(overhead.format("dask", "all_at_once_ms"), 0),
            "in_flight": at(first, "dask_overhead.tasks"),
            "local_one_ms": s(overhead.format("process_pool", "one_at_a_time_ms"), 1),
            "local_in_flight_ms": s(overhead.format("process_pool", "all_at_once_ms"), 1),
            "bus_task_ms": s(lambda r: 10 * round(100 * floor(r) / r["floor"]["hosting_capacity"]["buses"]), 0),
        },
    }


def stochastic(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """stochastic_bench.py's: the floor, the local pool and the docs' Dask cluster, run by run."""
    s = Runs(runs, "stochastic")
    trials = s.first["floor"]["trials"]

    def share(key: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: over_pool_share(r[key]["wall_s"], r["floor"]["wall_s"], POOL)

    pool, dask = ([share(key)(r) for r in s.docs] for key in ("workers_2", "dask_2"))
    return {
        "samples": s.first["body"]["samples"], "penetrations": len(s.first["penetrations_pct"]), "trials": trials,
        "floor_s": s.every(lambda r: r["floor"]["runs"]),
        "floor_ms_per_trial": s.every(lambda r: [1000 * w / trials for w in r["floor"]["runs"]], 1),
        "runs": len(s.docs), "other_processes_cpu_pct_at_most": math.ceil(max(
            r[key]["other_processes_cpu_pct"] for r in s.docs for key in ("workers_2", "dask_2"))),
        "floor_runs_within_pct": math.ceil(max(100 * (max(r["floor"]["runs"]) / min(r["floor"]["runs"]) - 1)
                                               for r in s.docs)),
        "pool_2_s": s("workers_2.wall_s"), "pool_2_of_half_floor": s(share("workers_2")),
        "pool_2_median": round(statistics.median(pool), 2), "target": TARGET_POOL,
        "met_runs": sum(x <= TARGET_POOL for x in pool), "ideal_of_half_floor": s("floor.greedy_bound_2_workers"),
        "workers_ms_per_trial": s("workers_2.worker_cpu_ms_per_trial", 1),
        "dask_2_s": s("dask_2.wall_s"), "dask_2_of_half_floor": s(share("dask_2")),
        "dask_2_median": round(statistics.median(dask), 2), "dask_runs": len(s.docs),
        "dask_extra_ms_per_trial": round(statistics.mean(r["dask_2"]["worker_cpu_ms_per_trial"]
                                                         - r["workers_2"]["worker_cpu_ms_per_trial"] for r in s.docs)),
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


#: bench/scale.py's paths as the docs name them.
SCALE_LABELS = {"startup": "start-up", "new_generator": "new generator", "generator_update": "generator update",
                "neighbourhood": "neighbourhood", "dry_run": "dry run", "state": "GET /state", "buses": "GET /buses",
                "undo": "undo", "rebuild": "rebuild"}


def scale_figures(report: dict[str, Any]) -> dict[str, Any]:
    """docs/figures/scale.json from one bench/scale.py run: per feeder its size, answer bytes and each path's p50,
    floors, ratio and verdict; the slopes; the machine. Keys a run does not write (`why`) are kept by
    write_scale."""
    env = report["machine"]
    feeders = {}
    for f in report["feeders"]:
        paths = {path: {"p50_ms": sig(j["p50_ms"]), "engine_ms": sig(j["engine_ms"]),
                        "transport_ms": sig(j["transport_ms"]), "ratio": round(j["ratio"], 2),
                        "target_ms": sig(j["target_ms"]), "within": j["within"]}
                 for path, j in f["judged"].items()}
        over = [SCALE_LABELS[path] for path, j in f["judged"].items() if not j["within"]]
        feeders[f["name"]] = {"label": f["label"], "buses": f["buses"], "nodes": f["nodes"], "rounds": f["rounds"],
                              "bytes": f["bytes"], "paths": paths, "over": over or "none",
                              "other_processes_cpu_pct": round(f["cpu"].get("other_processes_pct", 0))}
    return {
        "about": {
            "what": "Every request path against its engine floor E (opendssdirect alone) and transport floor T, on "
                    "feeders of growing size, from one run of bench/scale.py (docs/performance.md#at-scale).",
            "how to regenerate": "python bench/scale.py --write-docs-figures (about 10 minutes; it also draws "
                                 "docs/figures/scale.png), then python docs/figures/render.py.",
        },
        "run": {"cpu": env["cpu"], "cpus": env["cpus_usable"], "python": env["python"],
                "opendssdirect": env["opendssdirect"], "commit": env["git_commit"] + ("+" if env["git_dirty_files"]
                                                                                     else ""),
                "minutes": round(report["seconds"] / 60, 1),
                "other_processes_cpu_pct_max": max(f["other_processes_cpu_pct"] for f in feeders.values())},
        "targets": {"k": TARGET_SCALE_K, "startup": TARGET_SCALE_STARTUP, "slope_tolerance": SCALE_SLOPE_TOLERANCE,
                    "fixed_start_ms": sig(report["fixed_start_ms"]["ms"])},
        "feeders": feeders,
        "slopes": {path: {"ours": round(s["ours"], 2), "floor": round(s["floor"], 2), "within": s["within"]}
                   for path, s in report["slopes"].items()},
    }


def sig(value: float, digits: int = 3) -> float:
    """A time to 3 significant figures (what the table prints)."""
    return float(f"{value:.{digits}g}")


def write_scale(out: Path, report: dict[str, Any]) -> None:
    """scale.json from a run, keeping the keys a run does not write (the reasons, `why`)."""
    old = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    out.write_text(json.dumps(merged(old, scale_figures(report)), indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="bench.py --out files (their siblings beside them)")
    parser.add_argument("--out", type=Path, default=DEFAULT, help=f"default {DEFAULT.relative_to(REPO)}")
    args = parser.parse_args(argv)
    write(args.out, *args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
