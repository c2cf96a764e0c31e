"""The IEEE 123-bus deck in a bare opendssdirect context, driven with OpenDSS's own commands and batch reads and
nothing of this project's code: the reference the tests compare the API with (support.direct_feeder,
support.inverter_reference, the stochastic replays) and the engine the bench times as its studies' floors
(bench/studies_floor.py, bench/hours_bench.py, bench/inverter_bench.py, bench/stochastic_bench.py). One way of
driving OpenDSS for both, so that a floor computes what a test's reference computes:

- the deck compiled and solved, the regulators' taps read and put back, an hour's loads (set-point x the
  residential shape, solved from the base case's taps) and the two named hours found from the shape files;
- the API's limits judged on a solved state against the state a trial starts from (`violates`);
- a trial (`judged_trial`, `try_generators`): generators made as `add_generator` types them (or enabled again) at
  their kW, solved, judged, then switched off, the taps put back and solved again, as a dry run rolls back;
- the OpenDSS text of a plain generator, of a customer's PV where its load connects, and of a smart inverter
  (PVSystem, XYcurves, InvControl) as the docs' "Smart inverters" table gives it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect

from support.paths import SHARED_REFERENCE

MODEL_DIR = Path(__file__).resolve().parents[2] / "Test_Systems" / "IEEE_123_Bus-G"
MASTER_FILE = MODEL_DIR / "Master.dss"
#: The API's default limits (pre-existing overloads excluded, reverse power allowed).
LIMITS = {"voltage_high_pu": 1.05, "voltage_low_pu": 0.95, "thermal_pct": 100.0, "reverse_power": False}
GENERATOR = "pf=1 model=1 vminpu=0.5 vmaxpu=1.5"  # the rest of add_generator's generator
VOLT_VAR = {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.44, 0.0, 0.0, -0.44]}  # IEEE 1547-2018 Category B
VOLT_WATT = {"v": [1.06, 1.10], "p": [1.0, 0.2]}
Found = tuple[str, set[str], float]  # the kind of limit crossed, the worst elements, the worst value


@cache
def shape(name: str) -> np.ndarray:
    """An 8760-hour shape of the deck (residential, commercial, pv): the multiplier of each hour."""
    return np.loadtxt(MODEL_DIR / "shapes" / f"{name}.csv")


def values(batch_property: Any) -> Any:
    return batch_property() if callable(batch_property) else batch_property


#: IEEE 13 with a delta-delta 480 V bus (d480: no ground reference) and a centre-tapped service (svc, house: 120/240 V
#: split-phase), redirected from the shared deck: where generators and trial loads connect phase to phase.
SITES_DECK_TEXT = f"""Redirect [{SHARED_REFERENCE / 'feeders' / 'IEEETestCases' / '13Bus' / 'IEEE13Nodeckt.dss'}]
New Transformer.dd phases=3 windings=2 buses=[680 d480] conns=[delta delta] kvs=[4.16 0.48] kvas=[150 150] xhl=2.72
New Load.motor phases=3 bus1=d480 conn=delta kv=0.48 kw=60 kvar=20
New Transformer.ct phases=1 windings=3 buses=[652.1 svc.1.0 svc.0.2] kvs=[2.4 0.12 0.12] kvas=[25 25 25]
~ xhl=2.04 xht=2.04 xlt=1.36 %rs=[0.6 1.2 1.2]
New Line.drop phases=2 bus1=svc.1.2 bus2=house.1.2 r1=0.5 x1=0.2 r0=0.5 x0=0.2 c1=0 c0=0 length=0.03 units=km
New Load.house phases=2 bus1=house.1.2 kv=0.208 kw=6 pf=0.95
Set Voltagebases=[115, 4.16, 0.48, 0.208]
Calcvoltagebases
Solve
"""


def solved_directly(master: Path, commands: list[str]) -> Any:
    """The deck in a plain engine solved as our server solves it (iterations 1000, control iterations 100,
    tolerance 1e-7), after these commands typed by hand."""
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    dss.Text.Command(f"Compile [{master}]")
    dss.Solution.MaxIterations(1000)
    dss.Solution.MaxControlIterations(100)
    dss.Solution.Convergence(1e-7)
    dss.Solution.Solve()
    for command in commands:
        dss.Text.Command(command)
    dss.Solution.Solve()
    return dss


def read_taps(dss: Any, windings: list[tuple[str, int]]) -> list[float]:
    """The taps (per unit) of these regulated windings (transformer, winding), read by hand."""
    out = []
    for transformer, winding in windings:
        dss.Transformers.Name(transformer)
        dss.Transformers.Wdg(winding)
        out.append(dss.Transformers.Tap())
    return out


def put_taps(dss: Any, windings: list[tuple[str, int]], taps: list[float]) -> None:
    """Set these regulated windings (transformer, winding) to `taps`, by hand."""
    for (transformer, winding), tap in zip(windings, taps):
        dss.Transformers.Name(transformer)
        dss.Transformers.Wdg(winding)
        dss.Transformers.Tap(tap)


def read_bank(dss: Any, name: str) -> tuple[list[int], bool]:
    """A capacitor's steps and whether its terminal 1 is open (a CapControl opens a one-step bank)."""
    dss.Capacitors.Name(name)
    dss.Circuit.SetActiveElement(f"Capacitor.{name}")
    return list(dss.Capacitors.States()), dss.CktElement.IsOpen(1, 0)


def put_bank(dss: Any, name: str, steps: list[int], open_: bool) -> None:
    """Set a capacitor's steps and open or close its terminal 1, as `read_bank` read them."""
    dss.Capacitors.Name(name)
    dss.Capacitors.States(steps)
    dss.Circuit.SetActiveElement(f"Capacitor.{name}")
    if open_:
        dss.CktElement.Open(1, 0)
    else:
        dss.CktElement.Close(1, 0)


def terminal1_phases(conductors: np.ndarray, phases: np.ndarray, terminals: np.ndarray | int = 2
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of terminal 1's phase conductors in a flattened Currents array of elements with `terminals` each
    (a centre-tapped service transformer has three), and where each element's run starts among them."""
    starts = np.concatenate(([0], np.cumsum(terminals * conductors)[:-1]))
    picks = np.concatenate([np.arange(s, s + p) for s, p in zip(starts, phases)])
    return picks, np.concatenate(([0], np.cumsum(phases)[:-1]))


def worst(names: list[str], values_: np.ndarray, crossed: np.ndarray, pick: Any) -> tuple[set[str], float]:
    """The worst value among those crossing a limit, and every name holding it (elements in series tie)."""
    best = float(pick(values_[crossed]))
    return {names[i].lower() for i in np.flatnonzero(crossed)
            if abs(values_[i] - best) <= 1e-9 * abs(best)}, best


def named_hours() -> dict[str, Any]:
    """peak_load and daytime_minimum of the base case under the default shapes (residential loads, pv
    generators), from the shape files and the deck's load set-points: earliest hour on a tie."""
    total_kw = float(BareFeeder().load_kw.sum())
    yearly = total_kw * shape("residential")
    daytime = np.flatnonzero(shape("pv") >= 0.5)
    return {"peak_load": int(np.argmax(yearly)), "daytime_minimum": int(daytime[np.argmin(yearly[daytime])]),
            "total_kw": total_kw}


def generator_connection(bus: str, nodes: list[int] | tuple[int, ...], kv: float, conn: str = "") -> str:
    """Where a generator connects, in OpenDSS's words: `bus1=… phases=… kv=…` (and `conn=` when given)."""
    phases = 3 if len(nodes) == 3 else 1
    return (f"bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} kv={kv:.6f}"
            + (f" conn={conn}" if conn else ""))


def customer_connection(dss: Any, bus: str, nodes: list[int] | tuple[int, ...]) -> str:
    """A customer's PV where its load connects: 3-phase rated line to line; 1-phase on one node rated line to
    neutral; 1-phase across two nodes as a delta (line-to-line) connection rated line to line."""
    dss.Circuit.SetActiveBus(bus)
    line_to_line = len(nodes) in (2, 3)
    return generator_connection(bus, nodes, dss.Bus.kVBase() * (math.sqrt(3) if line_to_line else 1.0),
                                "delta" if len(nodes) == 2 else "wye")


def inverter_commands(name: str, bus: str, nodes: list[int], kv: float, kw: float, inverter: dict[str, Any]
                      ) -> list[str]:
    """A smart inverter generator as the docs' table defines it: a PVSystem rated `kva` (kW by default) at
    `pf`, with the mode's curves (volt-var, volt-watt or both) and its InvControl."""
    kva, pf, mode = inverter.get("kva", kw), inverter.get("pf", 1.0), inverter["mode"]
    commands = [f"New PVSystem.{name} {generator_connection(bus, nodes, kv)} irradiance=1 Pmpp={kw!r} kVA={kva!r} "
                f"%cutin=0.1 %cutout=0.1 kvarMax={0.44 * kva!r} kvarMaxAbs={0.44 * kva!r} WattPriority=no pf={pf!r}"]
    control = []
    if mode in ("volt_var", "volt_var_volt_watt"):
        curve = inverter.get("volt_var", VOLT_VAR)
        y = [q / 0.44 for q in curve["q"]]
        commands.append(f"New XYcurve.{name}vv npts=6 Xarray=[0 {' '.join(map(repr, curve['v']))} 2] "
                        f"Yarray=[{y[0]!r} {' '.join(map(repr, y))} {y[-1]!r}]")
        control.append(f"vvc_curve1={name}vv")
    if mode in ("volt_watt", "volt_var_volt_watt"):
        curve = inverter.get("volt_watt", VOLT_WATT)
        p = curve["p"]
        commands.append(f"New XYcurve.{name}vw npts=4 Xarray=[0 {' '.join(map(repr, curve['v']))} 2] "
                        f"Yarray=[{p[0]!r} {' '.join(map(repr, p))} {p[-1]!r}]")
        control.append(f"voltwatt_curve={name}vw VoltwattYAxis=PMPPPU")
    kind = {"volt_var": "mode=VOLTVAR", "volt_watt": "mode=VOLTWATT", "volt_var_volt_watt": "CombiMode=VV_VW"}
    if mode in kind:
        commands.append(f"New InvControl.{name} PVSystemList=[{name}] {kind[mode]} {' '.join(control)} "
                        f"voltage_curvex_ref=rated RefReactivePower=VARMAX")
    return commands


def solve_settings(dss: Any, master: Path) -> None:
    """The server's solve settings for any deck (docs/feeder.md): iteration limits at least 1000 and 100, tolerance
    1e-7 unless the deck sets one (our deck sets all three, so nothing changes there)."""
    dss.Solution.MaxIterations(max(dss.Solution.MaxIterations(), 1000))
    dss.Solution.MaxControlIterations(max(dss.Solution.MaxControlIterations(), 100))
    if "tolerance" not in master.read_text(errors="replace").lower():
        dss.Solution.Convergence(1e-7)


class BareFeeder:
    """The deck (`master`, our IEEE 123 by default; any deck the server takes) compiled in its own opendssdirect
    context and solved: the base case, or (hour_of_year) every load at its set-point x the residential shape's
    multiplier then, solved from the base case's taps (the state a 1-hour series starting then computes). `own` is
    the state trials start from and are judged against. Judged on phase nodes (1-3 of a bus with a voltage base);
    the capacitor banks a CapControl switches are put back with the taps (decks with CapControls only)."""

    def __init__(self, hour_of_year: int | None = None, master: Path = MASTER_FILE) -> None:
        dss = self.dss = opendssdirect.NewContext()
        dss.Basic.AllowChangeDir(False)
        dss.Text.Command(f"Compile [{master}]")
        solve_settings(dss, master)
        dss.Solution.Solve()
        if not dss.Solution.Converged():
            raise RuntimeError("the base case did not converge")
        b = self.batch = dss.to_altdss()
        self.windings = []
        for control in dss.RegControls.AllNames():
            dss.RegControls.Name(control)
            self.windings.append((dss.RegControls.Transformer(), dss.RegControls.Winding()))
        self.base_taps = self.taps()
        self.load_kw = np.asarray(values(b.Load.kW), dtype=float)
        self.load_kvar = np.asarray(values(b.Load.kvar), dtype=float)
        self.node_names = list(dss.Circuit.AllNodeNames())
        self.element_names = [f"Line.{n}" for n in values(b.Line.Name)] + \
            [f"Transformer.{n}" for n in values(b.Transformer.Name)]
        self.line_picks, self.line_starts = terminal1_phases(np.asarray(values(b.Line.NumConductors)),
                                                             np.asarray(values(b.Line.Phases)))
        self.xf_picks, self.xf_starts = terminal1_phases(np.asarray(values(b.Transformer.NumConductors)),
                                                         np.asarray(values(b.Transformer.Phases)),
                                                         np.asarray(values(b.Transformer.NumTerminals)))
        self.norm_amps = np.concatenate([np.asarray(values(b.Line.NormAmps), dtype=float),
                                         np.asarray(values(b.Transformer.NormAmps), dtype=float)])
        bases = {}
        for bus in dss.Circuit.AllBusNames():
            dss.Circuit.SetActiveBus(bus)
            bases[bus.lower()] = dss.Bus.kVBase()
        numbers = [int(n.split(".")[1]) for n in self.node_names]
        self.phase = np.array([1 <= k <= 3 and bases[n.split(".")[0].lower()] > 0
                               for n, k in zip(self.node_names, numbers)])
        self.capacitors = list(dss.Capacitors.AllNames()) if dss.CapControls.Count() else []
        self.generators: set[str] = set()
        if hour_of_year is not None:
            self.at_hour(hour_of_year)
        self.own = self.measure()

    def taps(self) -> list[float]:
        return read_taps(self.dss, self.windings)

    def set_taps(self, taps: list[float]) -> None:
        put_taps(self.dss, self.windings, taps)

    def at_hour(self, hour_of_year: int) -> None:
        """Every load at its set-point x the residential multiplier of that hour, solved from the base case's
        taps: the state (and the taps) the hour's trials start from and are judged against."""
        multiplier = shape("residential")[hour_of_year]
        self.set_taps(self.base_taps)
        self.batch.Load.kW = self.load_kw * multiplier
        self.batch.Load.kvar = self.load_kvar * multiplier
        self.dss.Solution.Solve()
        if not self.dss.Solution.Converged():
            raise RuntimeError(f"hour {hour_of_year} did not converge")
        self.own = self.measure()

    def loading(self) -> np.ndarray:
        """Highest terminal-1 phase current / normal amps, %, of every line then every transformer."""
        line = np.abs(np.asarray(values(self.batch.Line.Currents))[self.line_picks])
        xf = np.abs(np.asarray(values(self.batch.Transformer.Currents))[self.xf_picks])
        return 100.0 * np.concatenate([np.maximum.reduceat(line, self.line_starts),
                                       np.maximum.reduceat(xf, self.xf_starts)]) / self.norm_amps

    def measure(self) -> dict[str, Any]:
        """Node voltages (pu, in AllNodeNames' order), loadings (%, in element_names' order), the source's kW."""
        return {"v": np.asarray(self.dss.Circuit.AllBusMagPu()), "loading": self.loading(),
                "source_kw": -self.dss.Circuit.TotalPower()[0]}

    def violates(self, limits: dict[str, Any] = LIMITS) -> Found | None:
        """The first limit the solved state crosses, by the API's rules, against `own`: a phase node above the high
        limit (one above it in `own` is pre-existing: never a limit); below the low limit and lower than it was;
        thermal (an element over its limit already never counts, or, with preexisting "worsened", counts when more
        than worsened_by_pct above its own loading); reverse power when asked. A power flow that did not converge
        is "not_converged"."""
        v = np.asarray(self.dss.Circuit.AllBusMagPu())
        if not self.dss.Solution.Converged() or not np.all(np.isfinite(v)) or v.max() > 2.0:
            return "not_converged", set(), math.nan
        high = (v > limits["voltage_high_pu"]) & self.phase & ~(self.own["v"] > limits["voltage_high_pu"])
        if high.any():
            return "voltage_high", *worst(self.node_names, v, high, np.max)
        low = (v < limits["voltage_low_pu"]) & (v < self.own["v"]) & self.phase
        if low.any():
            return "voltage_low", *worst(self.node_names, v, low, np.min)
        loading, own, limit = self.loading(), self.own["loading"], limits["thermal_pct"]
        if limits.get("preexisting", "exclude") == "exclude":
            hot = (loading > limit) & (own <= limit)
        else:
            hot = (loading > limit) & (loading > own + limits.get("worsened_by_pct", 1))
        if hot.any():
            return "thermal", *worst(self.element_names, loading, hot, np.max)
        if limits.get("reverse_power"):
            source_kw = -self.dss.Circuit.TotalPower()[0]
            if source_kw < 0:
                return "reverse_power", {"vsource.source"}, source_kw
        return None

    def set_generator(self, name: str, kw: float, enabled: bool) -> None:
        self.dss.Generators.Name(name)
        self.dss.Generators.kW(kw)
        self.dss.Circuit.SetActiveElement(f"Generator.{name}")
        self.dss.CktElement.Enabled(enabled)

    def solved(self) -> bool:
        """Solve; False when OpenDSS refuses or does not converge."""
        try:
            self.dss.Solution.Solve()
        except opendssdirect.DSSException:
            return False
        return self.dss.Solution.Converged()

    def judged_trial(self, define: Callable[[], Any], undo: Callable[[], Any], limits: dict[str, Any] = LIMITS
                     ) -> Found | None:
        """A trial as a dry run makes one: define() what it adds, solve and judge; then undo() it, put the taps
        back and solve again."""
        taps, banks = self.taps(), self.banks()
        define()
        found = self.violates(limits) if self.solved() else ("not_converged", set(), math.nan)
        undo()
        self.set_taps(taps)
        self.set_banks(banks)
        self.dss.Solution.Solve()
        return found

    def banks(self) -> list[tuple[str, list[int], bool]]:
        """Each switched capacitor's steps and whether its terminal 1 is open (a CapControl opens a one-step bank)."""
        return [(name, *read_bank(self.dss, name)) for name in self.capacitors]

    def set_banks(self, banks: list[tuple[str, list[int], bool]]) -> None:
        """Put back the banks that moved (a bank put back as it is would rebuild the system matrix for nothing)."""
        now = self.banks()
        for (name, steps, open_), current in zip(banks, now):
            if current != (name, steps, open_):
                put_bank(self.dss, name, steps, open_)

    def try_generators(self, generators: list[tuple[str, str, float]], limits: dict[str, Any] = LIMITS
                       ) -> Found | None:
        """A trial of generators at once, each (name, generator_connection(…), kW): made the first time as
        add_generator types one, enabled at that kW after; switched off (kW 0, disabled) when judged."""
        def define() -> None:
            for name, connection, kw in generators:
                if name in self.generators:
                    self.set_generator(name, kw, True)
                else:
                    self.dss.Text.Command(f"New Generator.{name} {connection} kw={kw!r} {GENERATOR}")
                    self.generators.add(name)

        return self.judged_trial(define, lambda: [self.set_generator(name, 0.0, False) for name, _, _ in generators],
                                 limits)

    def switch_off_inverter(self, name: str) -> None:
        """An inverter_commands definition switched off: its InvControl (if any) first, then its PVSystem."""
        for kind in ("InvControl", "PVSystem"):
            if self.dss.Circuit.SetActiveElement(f"{kind}.{name}") >= 0:
                self.dss.CktElement.Enabled(False)
