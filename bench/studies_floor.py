"""The studies' engine floors (studies_bench.py, hours_bench.py, inverter_bench.py, stochastic_bench.py): the same
work as the API's studies, in this process with opendssdirect alone (no Flask, none of our classes), driven the way
the tests' reference engine drives it (tests/support/bare_feeder.py: the compile, the taps, an hour's loads, the
API's limits judged, each trial rolled back as a dry run is). Hosting capacity by the API's doubling and bisection
(the tests scan by brute force instead); the stochastic samples, each walked upward to its first failure; the
hour-by-hour series with the altdss batch setters for the loads. Any deck the server takes (`master`, our IEEE 123
by default: studies_scale.py runs them on the IEEE 8500-node feeder), connected as add_generator connects there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect

from engine_floor import BenchError
from support.bare_feeder import (LIMITS, MASTER_FILE, BareFeeder, customer_connection, generator_connection, shape,
                                 values)

OPEN_POINT_STUBS = ("94_open", "300_open")  # as engine.ieee123 has them: no generator goes there
UNGROUNDED = ("610",)  # XFM1's delta secondary: generators go phase to phase there (engine.sites)
TAP_STEP_PU = 0.00625
STEP_KW, MAX_KW = 10.0, 10_000.0  # the API's defaults (studies/hosting_capacity.py, Criteria)
ENERGISED_PU = 0.001  # a bus with no node above this in the base case cannot host a generator (engine.sites)
SERVICE_KV_LN = 0.2  # a bus on nodes 1 and 2 under this line-to-neutral base is a 120/240 V split-phase service


class Engine(BareFeeder):
    """The feeder in one opendssdirect context, compiled and solved."""

    def __init__(self, hour_of_year: int | None = None, master: Path = MASTER_FILE) -> None:
        super().__init__(hour_of_year, master)
        self.ours = master == MASTER_FILE  # our deck's facts: its open-point stubs, its delta bus 610

    def buses(self) -> list[tuple[str, list[int], float]]:
        """(name, sorted nodes, line-to-neutral kV base) of every bus that can host a generator: energised in the
        base case, and not one of our deck's open-point stubs."""
        out = []
        for bus in self.dss.Circuit.AllBusNames():
            if self.ours and bus in OPEN_POINT_STUBS:
                continue
            self.dss.Circuit.SetActiveBus(bus)
            if max(self.dss.Bus.puVmagAngle()[::2], default=0.0) > ENERGISED_PU:
                out.append((bus, sorted(self.dss.Bus.Nodes()), self.dss.Bus.kVBase()))
        return out

    def ungrounded(self, bus: str) -> bool:
        return self.ours and bus in UNGROUNDED

    @staticmethod
    def split_phase(nodes: list[int] | tuple[int, ...], kv_ln: float) -> bool:
        """A 120/240 V service bus (the 8500-node feeder's 1,177): a generator goes across both legs at 240 V."""
        return list(nodes) == [1, 2] and kv_ln < SERVICE_KV_LN


class HostingCapacityFloor(Engine):
    """Each trial a generator where add_generator connects one, at the trial's kW, judged and rolled back."""

    def __init__(self, hour_of_year: int | None = None, master: Path = MASTER_FILE) -> None:
        super().__init__(hour_of_year, master)
        self.trials = 0

    def violation(self, bus: str, nodes: list[int], kv: float, kw: float) -> str | None:
        """The first kind of violation of one trial, or None."""
        self.trials += 1
        conn = "delta" if self.ungrounded(bus) or self.split_phase(nodes, kv / 2) else ""
        found = self.try_generators([(f"hc_{bus}_{''.join(map(str, nodes))}",
                                      generator_connection(bus, nodes, kv, conn), kw)])
        return found[0] if found else None

    def capacity(self, bus: str, nodes: list[int], kv_ln: float) -> dict[str, Any]:
        """Doubling from one step until a trial violates (or MAX_KW passes), then bisection."""
        if {1, 2, 3} <= set(nodes):
            use, kv = [1, 2, 3], kv_ln * 3 ** 0.5
        elif self.ungrounded(bus):
            use, kv = nodes[:2], kv_ln * 3 ** 0.5
        elif self.split_phase(nodes, kv_ln):
            use, kv = nodes, 2 * kv_ln
        else:
            use, kv = nodes[:1], kv_ln
        first_trial = self.trials
        steps_max = max(1, int(MAX_KW / STEP_KW + 1e-9))
        passing, failing, bound, steps = 0, None, None, 1
        while failing is None:
            steps = min(steps, steps_max)
            found = self.violation(bus, use, kv, steps * STEP_KW)
            if found:
                failing, bound = steps, found
            else:
                passing = steps
                if steps == steps_max:
                    break
                steps *= 2
        while failing is not None and failing - passing > 1:
            middle = (passing + failing) // 2
            found = self.violation(bus, use, kv, middle * STEP_KW)
            if found:
                failing, bound = middle, found
            else:
                passing = middle
        return {"bus": bus, "phases": len(use), "hosting_capacity_kW": passing * STEP_KW,
                "kind": bound or "max_kw", "trials": self.trials - first_trial}


class StochasticFloor(HostingCapacityFloor):
    """A generator per customer (load) made on first use, where the load connects; one trial puts PV at every
    system of a penetration at once."""

    def __init__(self, master: Path = MASTER_FILE, from_scratch: bool = False) -> None:
        """`from_scratch`: each trial's power flow starts from a direct solve, as the API's does (docs/studies.md)."""
        super().__init__(master=master)
        self.from_scratch = from_scratch
        self.connections = []
        for bus1, phases in zip(self.batch.Load.Bus1, values(self.batch.Load.Phases)):
            bus, *given = bus1.lower().split(".")
            nodes = (1, 2, 3) if int(phases) == 3 else tuple(int(n) for n in given if n != "0")
            self.dss.Circuit.SetActiveBus(bus)
            kv_ln = self.dss.Bus.kVBase()
            self.connections.append(generator_connection(bus, nodes, 2 * kv_ln, "delta")
                                    if self.split_phase(nodes, kv_ln) else customer_connection(self.dss, bus, nodes))

    def solved(self) -> bool:
        if self.from_scratch:
            try:
                self.dss.Solution.SolveDirect()
            except opendssdirect.DSSException:
                return False
        return super().solved()

    def sample(self, seed: int, sample: int, pcts: list[float], ratio: float, limits: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """One sample walked upward to its first failure: the same seeded order and placements as the API's."""
        order = np.random.default_rng([seed, sample]).permutation(len(self.load_kw)).tolist()
        sizes = [(c, float(self.load_kw[c]) * ratio) for c in order if self.load_kw[c] > 0]
        total, last_pass, first_trial = float(self.load_kw.sum()), None, self.trials
        for pct in pcts:
            target, placed, systems = round(pct / 100 * total, 9), 0.0, []
            for customer, full in sizes:
                take = min(full, target - placed)
                if take <= 1e-9:
                    break
                systems.append((f"f{customer}", self.connections[customer], take))
                placed += take
            self.trials += 1
            found = self.try_generators(systems, {**LIMITS, **(limits or {})})
            if found:
                return {"sample": sample, "last_pass_pct": last_pass, "first_failure_pct": pct, "kind": found[0],
                        "trials": self.trials - first_trial}
            last_pass = pct
        return {"sample": sample, "last_pass_pct": last_pass, "first_failure_pct": None, "kind": None,
                "trials": self.trials - first_trial}


def samples_differing(api_samples: list[dict[str, Any]], floor_samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stochastic samples whose last pass, first failure or binding kind differ from the floor's, side by side."""
    ours = [{"sample": s["sample"],
             "last_pass_pct": s["last_pass"]["penetration_pct"] if s["last_pass"] else None,
             "first_failure_pct": s["first_failure"]["penetration_pct"] if s["first_failure"] else None,
             "kind": s["first_failure"]["limited_by"]["kind"] if s["first_failure"] else None}
            for s in api_samples]
    return [{"api": a, "floor": f} for a, f in zip(ours, floor_samples)
            if a != {k: v for k, v in f.items() if k != "trials"}]


def hosting_capacity_floor(buses: list[str] | None, master: Path = MASTER_FILE) -> dict[str, Any]:
    """Wall time of the trials (the compile apart: the server's workers are warm), trials, a row per bus."""
    started = time.perf_counter()
    floor = HostingCapacityFloor(master=master)
    compiled, cpu = time.perf_counter(), time.process_time()
    rows = [floor.capacity(*bus) for bus in floor.buses() if buses is None or bus[0] in buses]
    done = time.perf_counter()
    return {"wall_s": done - compiled, "compile_s": compiled - started, "buses": len(rows), "trials": floor.trials,
            "ms_per_trial": 1000 * (done - compiled) / floor.trials, "cpu_s": time.process_time() - cpu, "rows": rows}


def series_floor(hours: int, master: Path = MASTER_FILE, thermal: bool = False) -> dict[str, Any]:
    """Each hour: every load's kW and kvar = base x the residential multiplier (altdss batch setters), solve, read
    total power, losses, min/max voltage and the taps (`thermal`: and every line's and transformer's loading, as
    the API's hour counts its thermal violations). The taps carry over from hour to hour, and the clock moves an
    hour per hour, as OpenDSS's own yearly mode moves it: a capacitor control's dead time after an opening is
    over by the next hour (the API's hours start each hour so: `engine.controls.Controls.start_hour`)."""
    compiled = time.perf_counter()
    engine = Engine(master=master)
    started, cpu = time.perf_counter(), time.process_time()
    d, b = engine.dss, engine.batch
    rows = []
    for hour, m in enumerate(shape("residential")[:hours]):
        b.Load.kW = engine.load_kw * m
        b.Load.kvar = engine.load_kvar * m
        d.Solution.Hour(hour + 1)
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError("series floor: an hour did not converge")
        v = np.asarray(d.Circuit.AllBusMagPu())
        row = {"substation_kW": -d.Circuit.TotalPower()[0], "losses_kW": d.Circuit.Losses()[0] / 1000,
               "min_voltage_pu": float(v.min()), "max_voltage_pu": float(v.max()),
               "taps": [round((tap - 1.0) / TAP_STEP_PU) for tap in engine.taps()]}
        if thermal:
            row["thermal_violations"] = int((engine.loading() > 100.0).sum())
        rows.append(row)
    return {"wall_s": time.perf_counter() - started, "compile_s": started - compiled, "hours": hours,
            "cpu_s": time.process_time() - cpu, "rows": rows}
