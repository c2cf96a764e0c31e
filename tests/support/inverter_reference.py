"""The reference engine of the smart-inverter tests: our deck in a bare engine, with the PVSystem, XYcurve and
InvControl definitions typed from README's "Smart inverters" section (not from our code: support.bare_feeder's
inverter_commands, which the bench's volt-var floors type too), on the light-load state where the curves act
(every neighbourhood x LIGHT)."""

from __future__ import annotations

import math

import opendssdirect

from simulation_core import DEFAULT_MASTER_FILE
from support.bare_feeder import VOLT_VAR, VOLT_WATT, inverter_commands  # noqa: F401 (the curves: tests)

LIGHT = 0.25


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
        for command in inverter_commands(name, bus, nodes, kv, kw, inverter):
            self.dss.Text.Command(command)
        controlled = inverter["mode"] in ("volt_var", "volt_watt", "volt_var_volt_watt")
        self.defined[generator] = (name, controlled)
        self.solve()
        return name

    def output(self, generator: str) -> tuple[float, float]:
        """Delivered kW and kvar (positive delivered) of a generator's current PVSystem."""
        self.dss.Circuit.SetActiveElement(f"PVSystem.{self.defined[generator][0]}")
        p, q = self.dss.CktElement.TotalPowers()
        return -p, -q
