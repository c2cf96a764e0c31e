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
from typing import Any, Protocol

import numpy as np

from engine_floor import MODEL_DIR, BenchError
from studies_floor import STEP_KW, HostingCapacityFloor, values

HOURS = ("daytime_minimum", "peak_load")
TARGET_POOL = 1.2  # API wall time / (floor wall time / 2)


class Study(Protocol):
    def study(self, route: str, body: dict[str, Any]) -> dict[str, Any]: ...


class HoursFloor(HostingCapacityFloor):
    """The studies' hosting capacity floor, its trials started (and rolled back to) one hour's state at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.scenario_taps = self.base_taps
        self.base_kw = np.asarray(values(self.b.Load.kW), dtype=float)
        self.base_kvar = np.asarray(values(self.b.Load.kvar), dtype=float)
        self.residential = np.loadtxt(MODEL_DIR / "shapes" / "residential.csv")

    def named_hours(self) -> dict[str, int]:
        """peak_load and daytime_minimum under the default shapes (residential loads, pv generators)."""
        yearly = self.base_kw.sum() * self.residential
        daytime = np.flatnonzero(np.loadtxt(MODEL_DIR / "shapes" / "pv.csv") >= 0.5)
        return {"peak_load": int(np.argmax(yearly)), "daytime_minimum": int(daytime[np.argmin(yearly[daytime])])}

    def start_hour(self, hour_of_year: int) -> None:
        """The hour's loads solved from the scenario's taps: the state (and taps) trials start from and are
        judged against, with that hour's pre-existing overloads."""
        self.set_taps(self.scenario_taps)
        self.b.Load.kW = self.base_kw * self.residential[hour_of_year]
        self.b.Load.kvar = self.base_kvar * self.residential[hour_of_year]
        self.d.Solution.Solve()
        if not self.d.Solution.Converged():
            raise BenchError(f"hours floor: hour {hour_of_year} did not converge")
        self.base_taps = self.taps()
        self.own_v, self.own_loading = np.asarray(self.d.Circuit.AllBusMagPu()), self.loading()


def hours_floor(buses: list[str] | None) -> dict[str, Any]:
    """Wall time of the trials at both hours (compile and hour set-up apart), and every bus's capacity per hour."""
    floor = HoursFloor()
    named = floor.named_hours()
    chosen = [bus for bus in floor.buses() if buses is None or bus[0] in buses]
    wall, rows = 0.0, {}
    for name in HOURS:
        floor.start_hour(named[name])
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
    """Floor, API (the server's local pool of 2), floor again; the figures and the target."""
    selected = ["all"] if buses is None else buses
    floors = [hours_floor(buses)]
    api_run = hours_api(api, selected, floors[0])
    floors.append(hours_floor(buses))
    floor = {**floors[0], "wall_s": sum(f["wall_s"] for f in floors) / 2, "runs": [f["wall_s"] for f in floors]}
    del floor["rows"]
    ratio = api_run["wall_s"] / (floor["wall_s"] / 2)
    ok = ratio <= TARGET_POOL and not api_run["differ_from_floor"] and api_run["hours_match_floor"]
    return {"floor": floor, "api": api_run, "ratio_to_floor_over_2": ratio, "target": TARGET_POOL,
            "result": "PASS" if ok else "FAIL"}


def print_hours(r: dict[str, Any]) -> None:
    floor, api = r["floor"], r["api"]
    print(f"\nHosting capacity at {', '.join(f'{k} ({v})' for k, v in floor['hours'].items())}, {floor['buses']} "
          f"buses x 2 hours      wall s   trials")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {floor['wall_s']:7.2f} {floor['trials']:>8}   (mean of "
          f"{', '.join(f'{w:.2f}' for w in floor['runs'])})")
    print(f"  {'API --workers 2':<36} {api['wall_s']:7.2f} {api['trials']:>8}   ({api['tasks']} tasks; "
          f"{len(api['differ_from_floor'])} buses differ from the floor; hours as the floor's: "
          f"{api['hours_match_floor']})")
    print(f"  API / (floor / 2) = {r['ratio_to_floor_over_2']:.3f} (target <= {r['target']:g}): {r['result']}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    from harness import Client, Server, run_study

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buses", type=int, help="the first N buses that can host a generator (default all)")
    args = parser.parse_args(argv)
    buses = None if args.buses is None else [b for b, _, _ in HoursFloor().buses()[:args.buses]]
    server = Server("hours", extra_args=("--workers", "2"))
    server.start()
    client = Client(server)

    class Api:
        @staticmethod
        def study(route: str, body: dict[str, Any]) -> dict[str, Any]:
            return run_study(client, route, body)

    try:
        Api.study("hosting_capacity", {"buses": ["85", "114"], "step_kw": STEP_KW, "hours": list(HOURS)})  # warm-up
        result = hours_phase(Api, buses)
    finally:
        client.close()
        server.stop()
        server.cleanup()
    print_hours(result)
    return 0 if result["result"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
