"""The studies' engine floors (bench/studies_bench.py): the same work as the API's studies, in this process with
opendssdirect alone (no Flask, none of our classes). The hosting capacity of each bus by the same doubling and
bisection and the same criteria, each trial rolled back as a dry run is; and the hour-by-hour series with altdss batch
setters for the loads, one solve and a few reads per hour."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import opendssdirect

from engine_floor import MASTER_FILE, REPO, BenchError

NO_GENERATOR_BUSES = ("610", "94_open", "300_open")
SHAPE_FILE = REPO / "Test_Systems" / "IEEE_123_Bus-G" / "shapes" / "residential.csv"
TAP_STEP_PU = 0.00625
# Hosting capacity criteria: the API's defaults (studies/hosting_capacity.py, Criteria; pre-existing overloads
# excluded).
STEP_KW, MAX_KW, V_HIGH, V_LOW, THERMAL_PCT = 10.0, 10_000.0, 1.05, 0.95, 100.0


def values(batch_property: Any) -> Any:
    return batch_property() if callable(batch_property) else batch_property


def terminal1_phases(conductors: np.ndarray, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of terminal 1's phase conductors in a flattened two-terminal Currents array, and where each
    element's run starts among them."""
    starts = np.concatenate(([0], np.cumsum(2 * conductors)[:-1]))
    picks = np.concatenate([np.arange(s, s + p) for s, p in zip(starts, phases)])
    return picks, np.concatenate(([0], np.cumsum(phases)[:-1]))


def solve_and_judge(d: Any, own_v: np.ndarray, own_loading: np.ndarray, loading: Callable[[], np.ndarray]
                    ) -> str | None:
    """Solve a trial and name what it breaks first, by the API's rules (pre-existing overloads never count):
    the one judgement every floor of the studies bench shares."""
    try:
        d.Solution.Solve()
        converged = d.Solution.Converged()
    except opendssdirect.DSSException:
        converged = False
    v = np.asarray(d.Circuit.AllBusMagPu())
    if not converged or not np.all(np.isfinite(v)) or v.max() > 2.0:
        return "not_converged"
    if np.any(v > V_HIGH):
        return "voltage_high"
    if np.any((v < V_LOW) & (v < own_v)):
        return "voltage_low"
    hot = (loading() > THERMAL_PCT) & (own_loading <= THERMAL_PCT)
    return "thermal" if np.any(hot) else None


# ----------------------------------------------------------------------------------------------------- floors
class Engine:
    """The feeder in one opendssdirect context, compiled and solved."""

    def __init__(self) -> None:
        d = opendssdirect.NewContext()
        d.Basic.AllowChangeDir(False)
        d.Text.Command(f"Compile [{MASTER_FILE}]")
        d.Solution.Mode(0)
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError("floor: the base case did not converge")
        self.d, self.b = d, d.to_altdss()
        self.windings = []
        for control in d.RegControls.AllNames():
            d.RegControls.Name(control)
            self.windings.append((d.RegControls.Transformer(), d.RegControls.Winding()))

    def taps(self) -> list[float]:
        out = []
        for transformer, winding in self.windings:
            self.d.Transformers.Name(transformer)
            self.d.Transformers.Wdg(winding)
            out.append(self.d.Transformers.Tap())
        return out

    def set_taps(self, taps: list[float]) -> None:
        for (transformer, winding), tap in zip(self.windings, taps):
            self.d.Transformers.Name(transformer)
            self.d.Transformers.Wdg(winding)
            self.d.Transformers.Tap(tap)

    def buses(self) -> list[tuple[str, list[int], float]]:
        """(name, sorted nodes, line-to-neutral kV base) of every bus that can host a generator."""
        out = []
        for bus in self.d.Circuit.AllBusNames():
            if bus not in NO_GENERATOR_BUSES:
                self.d.Circuit.SetActiveBus(bus)
                out.append((bus, sorted(self.d.Bus.Nodes()), self.d.Bus.kVBase()))
        return out


class HostingCapacityFloor(Engine):
    """Each trial: set kW, enable, solve, read voltages and terminal-1 currents; then disable, restore the
    regulator taps, solve (as a dry run rolls back)."""

    def __init__(self) -> None:
        super().__init__()
        b = self.b
        self.line_picks, self.line_starts = terminal1_phases(np.asarray(values(b.Line.NumConductors)),
                                                             np.asarray(values(b.Line.Phases)))
        self.xf_picks, self.xf_starts = terminal1_phases(np.asarray(values(b.Transformer.NumConductors)),
                                                         np.asarray(values(b.Transformer.Phases)))
        self.norm_amps = np.concatenate([np.asarray(values(b.Line.NormAmps), dtype=float),
                                         np.asarray(values(b.Transformer.NormAmps), dtype=float)])
        self.base_taps = self.taps()
        self.own_v, self.own_loading = np.asarray(self.d.Circuit.AllBusMagPu()), self.loading()
        self.created: set[str] = set()
        self.trials = 0

    def loading(self) -> np.ndarray:
        line = np.abs(np.asarray(values(self.b.Line.Currents))[self.line_picks])
        xf = np.abs(np.asarray(values(self.b.Transformer.Currents))[self.xf_picks])
        return 100.0 * np.concatenate([np.maximum.reduceat(line, self.line_starts),
                                       np.maximum.reduceat(xf, self.xf_starts)]) / self.norm_amps

    def set_generator(self, name: str, kw: float, enabled: bool) -> None:
        self.d.Generators.Name(name)
        self.d.Generators.kW(kw)
        self.d.Circuit.SetActiveElement(f"Generator.{name}")
        self.d.CktElement.Enabled(enabled)

    def violation(self, bus: str, nodes: list[int], kv: float, kw: float) -> str | None:
        """The first kind of violation of one trial, or None."""
        d, name = self.d, f"hc_{bus}_{''.join(map(str, nodes))}"
        self.trials += 1
        if name in self.created:
            self.set_generator(name, kw, True)
        else:
            d.Text.Command(f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={len(nodes)} "
                           f"kv={kv:.6f} kw={kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
            self.created.add(name)
        found = solve_and_judge(d, self.own_v, self.own_loading, self.loading)
        self.set_generator(name, 0.0, False)
        self.set_taps(self.base_taps)
        d.Solution.Solve()
        return found

    def capacity(self, bus: str, nodes: list[int], kv_ln: float) -> dict[str, Any]:
        """Doubling from one step until a trial violates (or MAX_KW passes), then bisection."""
        if {1, 2, 3} <= set(nodes):
            use, kv = [1, 2, 3], kv_ln * 3 ** 0.5
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


def hosting_capacity_floor(buses: list[str] | None) -> dict[str, Any]:
    """Wall time of the trials (the compile apart: the server's workers are warm), trials, a row per bus."""
    started = time.perf_counter()
    floor = HostingCapacityFloor()
    compiled = time.perf_counter()
    rows = [floor.capacity(*bus) for bus in floor.buses() if buses is None or bus[0] in buses]
    done = time.perf_counter()
    return {"wall_s": done - compiled, "compile_s": compiled - started, "buses": len(rows), "trials": floor.trials,
            "ms_per_trial": 1000 * (done - compiled) / floor.trials, "rows": rows}


def series_floor(hours: int) -> dict[str, Any]:
    """Each hour: every load's kW and kvar = base x the residential multiplier (altdss batch setters), solve, read
    total power, losses, min/max voltage and the taps. The taps carry over from hour to hour."""
    compiled = time.perf_counter()
    engine = Engine()
    started = time.perf_counter()
    d, b = engine.d, engine.b
    base_kw, base_kvar = np.asarray(values(b.Load.kW), dtype=float), np.asarray(values(b.Load.kvar), dtype=float)
    multipliers = np.loadtxt(SHAPE_FILE)[:hours]
    rows = []
    for m in multipliers:
        b.Load.kW = base_kw * m
        b.Load.kvar = base_kvar * m
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError("series floor: an hour did not converge")
        v = np.asarray(d.Circuit.AllBusMagPu())
        rows.append({"substation_kW": -d.Circuit.TotalPower()[0], "losses_kW": d.Circuit.Losses()[0] / 1000,
                     "min_voltage_pu": float(v.min()), "max_voltage_pu": float(v.max()),
                     "taps": [round((tap - 1.0) / TAP_STEP_PU) for tap in engine.taps()]})
    return {"wall_s": time.perf_counter() - started, "compile_s": started - compiled, "hours": hours, "rows": rows}
