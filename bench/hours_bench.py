"""The hours case of the studies bench: hosting capacity of every bus at two named hours (the daytime minimum and
the peak load) on the local pool of 2, against the floor of the same trials in one process.

    python bench/hours_bench.py [--buses N]     # alone: starts its own `python api.py --workers 2`

`studies_bench.py` calls `hours_phase` with its own `--workers 2` server. The floor is opendssdirect alone (no
Flask, none of our classes): it finds the two hours from the shape files and the deck's load set-points, puts
each hour's loads in (set-point x the residential multiplier, solved from the base case's taps), and runs the
same doubling and bisection per bus as the API, judging each trial against that hour's state with pre-existing
overloads excluded, each trial rolled back as a dry run is. The floor runs before and after the API (the machine
drifts) and the target uses their mean: API wall time <= 1.2 x floor / 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import POOL, Api, mean_of, over_pool_share, run_main  # noqa: E402
from report import hours_ok, print_hours  # noqa: E402
from studies_floor import STEP_KW, HostingCapacityFloor  # noqa: E402
from support.bare_feeder import named_hours  # noqa: E402

HOURS = ("daytime_minimum", "peak_load")


class Study(Protocol):
    def study(self, route: str, body: dict[str, Any]) -> dict[str, Any]: ...


def hours_floor(buses: list[str] | None) -> dict[str, Any]:
    """Wall time of the trials at both hours (compile and hour set-up apart), and every bus's capacity per hour:
    the studies' hosting capacity floor, its trials started (and rolled back to) one hour's state at a time."""
    named = {name: hour for name, hour in named_hours().items() if name in HOURS}
    floor = HostingCapacityFloor()
    chosen = [bus for bus in floor.buses() if buses is None or bus[0] in buses]
    wall, rows = 0.0, {}
    for name in HOURS:
        floor.at_hour(named[name])
        started = time.perf_counter()
        for bus, nodes, kv in chosen:
            row = floor.capacity(bus, nodes, kv)
            rows.setdefault(bus, {})[str(named[name])] = {"kW": row["hosting_capacity_kW"], "kind": row["kind"],
                                                          "trials": row["trials"]}
        wall += time.perf_counter() - started
    return {"wall_s": wall, "hours": named, "buses": len(chosen), "trials": floor.trials, "rows": rows}


def hours_api(api: Study, buses: list[str], floor: dict[str, Any]) -> dict[str, Any]:
    """The timed study (POST to the finished job in hand) and every bus whose capacity at an hour differs."""
    run = api.study("hosting_capacity", {"buses": buses, "step_kw": STEP_KW, "hours": list(HOURS)})
    result = run["job"]["result"]
    resolved = {h["name"]: h["hour_of_year"] for h in result["hours"]}
    rows = [row for row in result["buses"] if row["reason"] is None]
    differ = []
    for row in rows:
        expected = {hour: at["kW"] for hour, at in floor["rows"].get(row["bus"], {}).items()}
        if row["by_hour"] != expected:
            differ.append({"bus": row["bus"], "api": row["by_hour"], "floor": expected})
    return {"wall_s": run["wall_s"], "tasks": run["tasks"], "buses": len(rows),
            "trials": sum(row["trials"] for row in rows), "hours": resolved,
            "hours_match_floor": resolved == floor["hours"], "differ_from_floor": differ}


def hours_phase(api: Study, buses: list[str] | None) -> dict[str, Any]:
    """Floor, API (the server's local pool), floor again; the figures."""
    selected = ["all"] if buses is None else buses
    floors = [hours_floor(buses)]
    api_run = hours_api(api, selected, floors[0])
    floors.append(hours_floor(buses))
    floor = mean_of(floors)
    del floor["rows"]
    return {"floor": floor, "api": api_run,
            "ratio_to_floor_over_2": over_pool_share(api_run["wall_s"], floor["wall_s"], POOL)}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buses", type=int, help="the first N buses that can host a generator (default all)")
    args = parser.parse_args(argv)
    buses = None if args.buses is None else [b for b, _, _ in HostingCapacityFloor().buses()[:args.buses]]
    with Api("hours", "--workers", str(POOL)) as api:
        api.study("hosting_capacity", {"buses": ["85", "114"], "step_kw": STEP_KW, "hours": list(HOURS)})  # warm-up
        result = hours_phase(api, buses)
    print_hours(result)
    return 0 if hours_ok(result) else 1


if __name__ == "__main__":
    run_main(main)
