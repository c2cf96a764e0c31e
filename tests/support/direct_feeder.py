"""The reference engine of the studies: our deck in a bare opendssdirect context, changed with OpenDSS commands
(nobody here wrote its answers), with a brute-force hosting-capacity scan and the named hours read from the shape
files."""

from __future__ import annotations

import numpy as np
import opendssdirect

from simulation_core import DEFAULT_MASTER_FILE, MODEL_DIR

STEP = 100.0


class DirectFeeder:
    """Our deck in a bare opendssdirect context, changed with OpenDSS commands: the reference engine."""

    def __init__(self, hour_of_year: int | None = None) -> None:
        """The base case, or (hour_of_year) every load at its set-point x the residential shape's multiplier
        then, solved from the base case's taps: the state a 1-hour series starting then computes."""
        self.dss = opendssdirect.NewContext()
        self.dss.Text.Command(f"Compile [{DEFAULT_MASTER_FILE}]")
        self.dss.Solution.Solve()
        if hour_of_year is not None:
            multiplier = SHAPES["residential"][hour_of_year]
            for load in self.dss.Loads.AllNames():
                self.dss.Loads.Name(load)
                kw, kvar = self.dss.Loads.kW(), self.dss.Loads.kvar()
                self.dss.Loads.kW(kw * multiplier)
                self.dss.Loads.kvar(kvar * multiplier)
            self.dss.Solution.Solve()
        self.regulators = [(name, self._winding(name)) for name in self.dss.RegControls.AllNames()]
        self.own = self.measure()

    def _winding(self, control: str) -> tuple[str, int]:
        self.dss.RegControls.Name(control)
        return self.dss.RegControls.Transformer(), self.dss.RegControls.Winding()

    def taps(self) -> list[float]:
        out = []
        for _, (transformer, winding) in self.regulators:
            self.dss.Transformers.Name(transformer)
            self.dss.Transformers.Wdg(winding)
            out.append(self.dss.Transformers.Tap())
        return out

    def set_taps(self, taps: list[float]) -> None:
        for (_, (transformer, winding)), tap in zip(self.regulators, taps):
            self.dss.Transformers.Name(transformer)
            self.dss.Transformers.Wdg(winding)
            self.dss.Transformers.Tap(tap)

    def loading(self, kind: str) -> dict[str, float]:
        """Highest terminal-1 phase current / normal amps, %, of every line or transformer."""
        result = {}
        names = self.dss.Lines.AllNames() if kind == "Line" else self.dss.Transformers.AllNames()
        for name in names:
            self.dss.Circuit.SetActiveElement(f"{kind}.{name}")
            phases = self.dss.CktElement.NumPhases()
            magnitudes = self.dss.CktElement.CurrentsMagAng()[0:2 * phases:2]
            result[f"{kind}.{name}"] = 100 * max(magnitudes) / self.dss.CktElement.NormalAmps()
        return result

    def measure(self) -> dict:
        names = self.dss.Circuit.AllNodeNames()
        return {"v": dict(zip(names, self.dss.Circuit.AllBusMagPu())),
                "loading": {**self.loading("Line"), **self.loading("Transformer")},
                "source_kw": -self.dss.Circuit.TotalPower()[0]}

    def violates(self, limits: dict) -> tuple[str, set[str], float] | None:
        """The same criteria as the issue states them, read from this engine: the kind, the worst elements
        (several when elements in series tie) and the worst value."""
        now = self.measure()
        high = {n: v for n, v in now["v"].items() if v > limits["voltage_high_pu"]}
        if high:
            return "voltage_high", *worst(high, max)
        low = {n: v for n, v in now["v"].items() if v < limits["voltage_low_pu"] and v < self.own["v"][n]}
        if low:
            return "voltage_low", *worst(low, min)
        if limits.get("preexisting", "exclude") == "exclude":  # an element over the limit already never counts
            hot = {e: x for e, x in now["loading"].items()
                   if x > limits["thermal_pct"] and self.own["loading"][e] <= limits["thermal_pct"]}
        else:  # worsened: over the limit and more than worsened_by_pct above its own loading
            hot = {e: x for e, x in now["loading"].items()
                   if x > limits["thermal_pct"] and x > self.own["loading"][e] + limits.get("worsened_by_pct", 1)}
        if hot:
            return "thermal", *worst(hot, max)
        if limits.get("reverse_power") and now["source_kw"] < 0:
            return "reverse_power", {"Vsource.source"}, now["source_kw"]
        return None

    def trial(self, bus: str, nodes: list[int], kv: float, kw: float, limits: dict
              ) -> tuple[str, set[str], float] | None:
        taps = self.taps()
        name = f"t_{bus}"
        if name not in self.dss.Generators.AllNames():
            self.dss.Text.Command(f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} "
                                  f"phases={len(nodes)} kv={kv} kw={kw} pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
        self.dss.Generators.Name(name)
        self.dss.Generators.kW(kw)
        self.dss.Circuit.SetActiveElement(f"Generator.{name}")
        self.dss.CktElement.Enabled(True)
        self.dss.Solution.Solve()
        found = self.violates(limits)
        self.dss.Circuit.SetActiveElement(f"Generator.{name}")  # measuring made other elements active
        self.dss.CktElement.Enabled(False)
        self.set_taps(taps)
        self.dss.Solution.Solve()
        return found


    def overloaded(self, limits: dict) -> dict[str, float]:
        """The starting state's pre-existing overloads: element -> loading %."""
        return {e: x for e, x in self.own["loading"].items() if x > limits["thermal_pct"]}

    def scan(self, bus: str, nodes: list[int], kv: float, limits: dict, top_kw: float
             ) -> tuple[float, tuple[str, set[str], float] | None]:
        """Brute force: every step from STEP up until a trial violates; the capacity and what bounded it."""
        kw, found = STEP, None
        while kw <= top_kw and found is None:
            found = self.trial(bus, nodes, kv, kw, limits)
            kw += STEP
        return (kw - 2 * STEP if found else top_kw), found


def worst(values: dict[str, float], pick) -> tuple[set[str], float]:
    best = pick(values.values())
    return {name.lower() for name, value in values.items() if abs(value - best) <= 1e-9 * abs(best)}, best


LIMITS = {"voltage_high_pu": 1.05, "voltage_low_pu": 0.95, "thermal_pct": 100.0, "reverse_power": False}
SHAPES = {name: np.loadtxt(MODEL_DIR / "shapes" / f"{name}.csv") for name in ("residential", "commercial", "pv")}


def named_hours(client) -> dict[str, int]:
    """peak_load and daytime_minimum of the base case under the default shapes, from the shape files and the
    deck's load set-points (OpenDSS driven directly): earliest hour on a tie."""
    feeder = DirectFeeder()
    total_kw = 0.0
    for load in feeder.dss.Loads.AllNames():
        feeder.dss.Loads.Name(load)
        total_kw += feeder.dss.Loads.kW()
    yearly = total_kw * SHAPES["residential"]
    daytime = [h for h in range(8760) if SHAPES["pv"][h] >= 0.5]
    return {"peak_load": int(np.argmax(yearly)), "daytime_minimum": min(daytime, key=lambda h: (yearly[h], h)),
            "total_kw": total_kw}
