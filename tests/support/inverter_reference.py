"""The reference engine of the smart-inverter tests: our deck in a bare engine, with the PVSystem, XYcurve and
InvControl definitions typed here from README's "Smart inverters" section (not from our code), on the light-load
state where the curves act (every neighbourhood x LIGHT)."""

from __future__ import annotations

import math

import opendssdirect

from simulation_core import DEFAULT_MASTER_FILE

LIGHT = 0.25
VOLT_VAR = {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.44, 0.0, 0.0, -0.44]}  # IEEE 1547-2018 Category B
VOLT_WATT = {"v": [1.06, 1.10], "p": [1.0, 0.2]}


class Reference:
    """Our deck in a bare engine, changed with OpenDSS commands as README documents them."""

    def __init__(self) -> None:
        self.dss = opendssdirect.NewContext()
        self.dss.Text.Command(f"Compile [{DEFAULT_MASTER_FILE}]")
        self.dss.Solution.Solve()
        self.base = {}
        for name in self.dss.Loads.AllNames():
            self.dss.Loads.Name(name)
            self.base[name] = (self.dss.Loads.kW(), self.dss.Loads.kvar())
        self.defined: dict[str, tuple[str, bool]] = {}  # generator -> (its current elements' name, controlled)
        self.count = 0

    def solve(self) -> None:
        self.dss.Solution.Solve()
        assert self.dss.Solution.Converged()

    def scale(self, loads: list[str], factor: float) -> None:
        for name in loads:
            kw, kvar = self.base[name]
            self.dss.Text.Command(f"edit Load.{name} kW={kw * factor!r} kvar={kvar * factor!r}")
        self.solve()

    def switch_off(self, generator: str) -> None:
        name, controlled = self.defined.pop(generator)
        if controlled:
            self.dss.Text.Command(f"disable InvControl.{name}")
        self.dss.Text.Command(f"disable PVSystem.{name}")

    def inverter(self, generator: str, bus: str, nodes: list[int], kw: float, inverter: dict) -> str:
        """Define the inverter generator as README's table says (switching off its earlier definition)."""
        if generator in self.defined:
            self.switch_off(generator)
        if generator in self.dss.Generators.AllNames():  # it was a plain generator
            self.dss.Text.Command(f"disable Generator.{generator}")
        self.count += 1
        name = f"ref{self.count}"
        self.dss.Circuit.SetActiveBus(bus)
        kv = self.dss.Bus.kVBase() * (math.sqrt(3) if len(nodes) == 3 else 1.0)
        kva = inverter.get("kva", kw)
        pf = inverter.get("pf", 1.0)
        self.dss.Text.Command(
            f"New PVSystem.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={len(nodes)} kv={kv!r} irradiance=1 "
            f"Pmpp={kw!r} kVA={kva!r} %cutin=0.1 %cutout=0.1 kvarMax={0.44 * kva!r} kvarMaxAbs={0.44 * kva!r} "
            f"WattPriority=no pf={pf!r}")
        mode = inverter["mode"]
        control = []
        if mode in ("volt_var", "volt_var_volt_watt"):
            curve = inverter.get("volt_var", VOLT_VAR)
            y = [q / 0.44 for q in curve["q"]]
            self.dss.Text.Command(f"New XYcurve.{name}vv npts=6 Xarray=[0 {' '.join(map(repr, curve['v']))} 2] "
                                  f"Yarray=[{y[0]!r} {' '.join(map(repr, y))} {y[-1]!r}]")
            control.append(f"vvc_curve1={name}vv")
        if mode in ("volt_watt", "volt_var_volt_watt"):
            curve = inverter.get("volt_watt", VOLT_WATT)
            p = curve["p"]
            self.dss.Text.Command(f"New XYcurve.{name}vw npts=4 Xarray=[0 {' '.join(map(repr, curve['v']))} 2] "
                                  f"Yarray=[{p[0]!r} {' '.join(map(repr, p))} {p[-1]!r}]")
            control.append(f"voltwatt_curve={name}vw VoltwattYAxis=PMPPPU")
        kind = {"volt_var": "mode=VOLTVAR", "volt_watt": "mode=VOLTWATT", "volt_var_volt_watt": "CombiMode=VV_VW"}
        if mode in kind:
            self.dss.Text.Command(f"New InvControl.{name} PVSystemList=[{name}] {kind[mode]} {' '.join(control)} "
                                  f"voltage_curvex_ref=rated RefReactivePower=VARMAX")
        self.defined[generator] = (name, mode in kind)
        self.solve()
        return name

    def output(self, generator: str) -> tuple[float, float]:
        """Delivered kW and kvar (positive delivered) of a generator's current PVSystem."""
        self.dss.Circuit.SetActiveElement(f"PVSystem.{self.defined[generator][0]}")
        p, q = self.dss.CktElement.TotalPowers()
        return -p, -q
