"""The smart-inverter case of the studies bench: a volt-var change's p50, and a volt-var hosting capacity study, each
against its engine floor.

    python bench/inverter_bench.py [--buses N] [--changes N]   # alone: starts its own `python api.py --workers 2`

`studies_bench.py` calls `inverter_phase` with its `--workers 2` server. Both floors are opendssdirect alone (no
Flask, none of our classes), typing the definitions README's "Smart inverters" gives:
- **The change**: a scenario at light load (every neighbourhood x 0.25, where the curve acts) takes volt-var
  inverter generators at four sites in turn, each at a new kW (each a new definition, as the API makes one). The
  floor does the same in one engine: the site's previous InvControl and PVSystem disabled, a new PVSystem,
  XYcurve and InvControl typed, solved, and `engine_floor`'s reads and JSON. The API's p50 is timed at the client
  (POST to answer in hand), and also in-process (`OpenDSSCircuit.add_generator`, the snapshot's JSON included).
- **The study**: hosting capacity of every bus with a volt-var trial generator on the local pool of 2; the floor
  runs `studies_floor`'s doubling and bisection with each trial a fresh definition at the trial's kW (kVA = kW),
  its control and PVSystem switched off afterwards and the taps put back, recompiling past the API's leftover
  limit as a warm engine does. Target: API wall time <= 1.2 x floor / 2, every bus's capacity equal.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))  # the repo, for the in-process figure
from engine_floor import BenchError, EngineFloor, LoadOp, stats_ms  # noqa: E402
from harness import POOL, Api, mean_of, over_pool_share, run_main  # noqa: E402
from report import inverters_ok, print_inverters  # noqa: E402
from studies_floor import STEP_KW, HostingCapacityFloor  # noqa: E402
from support.bare_feeder import inverter_commands  # noqa: E402

SITES = [("85", 1), ("114", 1), ("92", 1), ("67", 3)]
LIGHT = 0.25
LEFTOVER_LIMIT = 200     # engine.inverters.MAX_LEFTOVER_DEFINITIONS: a warm engine recompiles past it
VOLT_VAR = {"mode": "volt_var"}


class Study(Protocol):
    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], int]: ...

    def study(self, route: str, body: dict[str, Any]) -> dict[str, Any]: ...


def change_ops(n: int) -> list[tuple[str, int, float]]:
    """The sites in turn, each at a kW it has not had just before (30..390 kW 1-phase, 300..1200 kW 3-phase)."""
    return [(bus, phases, float(30 + (i * 70) % 361) if phases == 1 else float(300 + (i * 130) % 901))
            for i, (bus, phases) in enumerate(SITES[i % len(SITES)] for i in range(n))]


# ----------------------------------------------------------------------------------------------------- the change
def change_floor(ops: list[tuple[str, int, float]]) -> dict[str, Any]:
    engine = EngineFloor()
    for neighbourhood in sorted(engine.loads):  # light load by the API's 14 changes, each solved: the same taps
        engine.load_step(LoadOp(neighbourhood, LIGHT))
    d, batch = engine.dss, engine.batch
    where = {}
    for bus, phases in SITES:
        d.Circuit.SetActiveBus(bus)
        nodes = sorted(d.Bus.Nodes())
        where[bus] = ([1, 2, 3], d.Bus.kVBase() * 3 ** 0.5) if phases == 3 else (nodes[:1], d.Bus.kVBase())
    current: dict[str, str] = {}
    samples = []
    for i, (bus, _, kw) in enumerate(ops):
        nodes, kv = where[bus]
        name = f"f{i}"
        commands = inverter_commands(name, bus, nodes, kv, kw, VOLT_VAR)
        started = time.perf_counter_ns()
        if bus in current:
            engine.switch_off_inverter(current[bus])
        for command in commands:
            d.Text.Command(command)
        current[bus] = name
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError(f"change floor: {bus} at {kw} kW did not converge")
        line_currents = batch.Line.CurrentsMagAng
        orjson.dumps({"bus_volts": np.asarray(d.Circuit.AllBusVolts()),
                      "bus_vmag_pu": np.asarray(d.Circuit.AllBusMagPu()),
                      "line_powers": np.asarray(batch.Line.TotalPowers()).view(np.float64),
                      "line_currents": np.asarray(line_currents() if callable(line_currents) else line_currents),
                      "pv_powers": np.asarray(batch.PVSystem.TotalPowers()).view(np.float64),
                      "losses": d.Circuit.Losses(), "total_power": d.Circuit.TotalPower()},
                     option=orjson.OPT_SERIALIZE_NUMPY)
        samples.append(time.perf_counter_ns() - started)
    return stats_ms(samples)


def change_in_process(ops: list[tuple[str, int, float]]) -> dict[str, Any]:
    """The engine owner's own time: add_generator (definition, solve, snapshot) and the state's JSON."""
    from simulation_core import OpenDSSCircuit

    circuit = OpenDSSCircuit()
    for neighbourhood in range(1, 15):
        circuit.scale_neighbourhood_loads(neighbourhood, LIGHT)
    samples = []
    for bus, phases, kw in ops:
        started = time.perf_counter_ns()
        change = circuit.add_generator(bus, phases, kw, inverter=VOLT_VAR)
        change.snapshot.results_json  # noqa: B018 - what an answer serialises
        samples.append(time.perf_counter_ns() - started)
    circuit.close()
    return stats_ms(samples)


def change_api(api: Study, ops: list[tuple[str, int, float]]) -> dict[str, Any]:
    """On the default scenario, reset afterwards: the base case again for whatever runs next."""
    for neighbourhood in range(1, 15):
        api.call("POST", "/modify_load_neighbourhood", {"neighbourhood": neighbourhood, "factor": LIGHT})
    samples = []
    for bus, phases, kw in ops:
        started = time.perf_counter_ns()
        api.call("POST", "/add_generator", {"bus_name": bus, "phases": phases, "kw": kw, "inverter": VOLT_VAR})
        samples.append(time.perf_counter_ns() - started)
    api.call("POST", "/reset", {})
    return stats_ms(samples)


# ----------------------------------------------------------------------------------------------------- the study
class VoltVarFloor(HostingCapacityFloor):
    """studies_floor's trials, each trial generator a fresh volt-var definition rated at the trial's kW."""

    def __init__(self) -> None:
        super().__init__()
        self.definitions = 0

    def violation(self, bus: str, nodes: list[int], kv: float, kw: float) -> str | None:
        if self.definitions >= LEFTOVER_LIMIT:  # as a warm engine does (tasks.py): compile again
            trials = self.trials
            HostingCapacityFloor.__init__(self)
            self.definitions, self.trials = 0, trials
        name = f"t{self.trials}"
        self.trials += 1
        self.definitions += 1

        def define() -> None:
            for command in inverter_commands(name, bus, nodes, kv, kw, VOLT_VAR):
                self.dss.Text.Command(command)

        found = self.judged_trial(define, lambda: self.switch_off_inverter(name))
        return found[0] if found else None


def study_floor(buses: list[str] | None) -> dict[str, Any]:
    floor = VoltVarFloor()
    chosen = [bus for bus in floor.buses() if buses is None or bus[0] in buses]
    started = time.perf_counter()
    rows = [floor.capacity(*bus) for bus in chosen]
    wall = time.perf_counter() - started
    trials = sum(row["trials"] for row in rows)
    return {"wall_s": wall, "buses": len(rows), "trials": trials, "ms_per_trial": 1000 * wall / trials,
            "rows": {row["bus"]: (row["hosting_capacity_kW"], row["kind"]) for row in rows}}


def study_api(api: Study, buses: list[str], floor: dict[str, Any]) -> dict[str, Any]:
    run = api.study("hosting_capacity", {"buses": buses, "step_kw": STEP_KW, "inverter": VOLT_VAR})
    rows = [row for row in run["job"]["result"]["buses"] if row["reason"] is None]
    differ = [{"bus": r["bus"], "api": [r["hosting_capacity_kW"], r["limited_by"]["kind"]],
               "floor": list(floor["rows"].get(r["bus"], (None, None)))} for r in rows
              if (r["hosting_capacity_kW"], r["limited_by"]["kind"]) != floor["rows"].get(r["bus"])]
    return {"wall_s": run["wall_s"], "tasks": run["tasks"], "buses": len(rows),
            "trials": sum(r["trials"] for r in rows), "differ_from_floor": differ}


# ----------------------------------------------------------------------------------------------------- the phase
def inverter_phase(api: Study, buses: list[str] | None, changes: int = 200) -> dict[str, Any]:
    """Floors, API, floors again (the machine drifts: means are used); the figures."""
    ops = change_ops(changes)
    change_floor(change_ops(8))  # warm-up
    floors = [change_floor(ops)]
    in_process = change_in_process(ops)
    http = change_api(api, ops)
    floors.append(change_floor(ops))
    floor_p50 = sum(f["p50"] for f in floors) / 2
    selected = ["all"] if buses is None else buses
    study_floors = [study_floor(buses)]
    api.study("hosting_capacity", {"buses": ["85", "67"], "step_kw": STEP_KW, "inverter": VOLT_VAR})
    study = study_api(api, selected, study_floors[0])
    study_floors.append(study_floor(buses))
    hc_floor = mean_of(study_floors)
    del hc_floor["rows"]
    return {"change": {"floor": {**floors[0], "p50": floor_p50, "runs_p50": [f["p50"] for f in floors]},
                       "in_process": in_process, "http": http, "in_process_over_floor": in_process["p50"] / floor_p50,
                       "http_over_floor": http["p50"] / floor_p50},
            "study": {"floor": hc_floor, "api": study,
                      "ratio_to_floor_over_2": over_pool_share(study["wall_s"], hc_floor["wall_s"], POOL)}}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buses", type=int, help="the first N buses that can host a generator (default all)")
    parser.add_argument("--changes", type=int, default=200, help="volt-var changes timed (default 200)")
    args = parser.parse_args(argv)
    buses = None if args.buses is None else [b for b, _, _ in VoltVarFloor().buses()[:args.buses]]
    with Api("inverters", "--workers", str(POOL)) as api:
        result = inverter_phase(api, buses, args.changes)
    print_inverters(result)
    return 0 if all(inverters_ok(result)) else 1


if __name__ == "__main__":
    run_main(main)
