"""Changes made through OpenDSSCircuit equal the same changes typed into a separate engine as OpenDSS commands.

OpenDSSCircuit sets load and generator values through the engine's element interfaces (faster, no text
parsing). The reference here is a second engine that compiles the same deck and is told the same changes in
OpenDSS's own command language (`edit Load.… kW=… kvar=…`, `New Generator.…`), in the same order, so both
take the same path through the regulator controls. Every node voltage, each load's consumption and the
totals must agree. The IEEE 123 loads include constant-power, constant-impedance and constant-current
models, so this also checks that a scaled constant-impedance load really consumes less, not only that its
set-point changed.
"""

from __future__ import annotations

import math

import numpy as np
import opendssdirect
import pytest

from simulation_core import OpenDSSCircuit

CHANGES = [
    ("scale", 1, 0.5),      # neighbourhood 1 has constant-impedance loads
    ("generator", "67", 3, 400.0),
    ("scale", 12, 1.3),
    ("generator", "20", 1, 60.0),
    ("generator", "67", 3, 150.0),  # an update of the first generator
    ("scale", 1, 1.6),      # compounds with the first scale
]


def reference_engine(circuit: OpenDSSCircuit):
    engine = opendssdirect.NewContext()
    engine.Basic.AllowChangeDir(False)
    engine.Text.Command(f"Compile [{circuit.master_file}]")
    engine.Solution.Solve()
    return engine


def load_models(engine) -> dict[str, int]:
    models = {}
    for name in engine.Loads.AllNames():
        engine.Loads.Name(name)
        models[name] = engine.Loads.Model()
    return models


def apply_as_commands(engine, circuit: OpenDSSCircuit, change: tuple, base: dict[str, tuple[float, float]],
                      cumulative: dict[int, float]) -> None:
    if change[0] == "scale":
        _, nb, factor = change
        cumulative[nb] = cumulative.get(nb, 1.0) * factor
        for name in circuit.neighbourhoods()[nb - 1]["loads"]:
            kw, kvar = base[name]
            engine.Text.Command(f"edit Load.{name} kW={kw * cumulative[nb]!r} kvar={kvar * cumulative[nb]!r}")
    else:
        _, bus, phases, kw = change
        name = next(g["name"] for g in circuit.generators() if g["bus"] == bus and g["phases"] == phases)
        if name.lower() in [n.lower() for n in engine.Generators.AllNames()]:
            engine.Text.Command(f"edit Generator.{name} kW={kw!r}")
        else:
            engine.Circuit.SetActiveBus(bus)
            kv_ln = engine.Bus.kVBase()
            nodes = "1.2.3" if phases == 3 else str(sorted(engine.Bus.Nodes())[0])
            kv = kv_ln * math.sqrt(3) if phases == 3 else kv_ln
            engine.Text.Command(f"New Generator.{name} bus1={bus}.{nodes} phases={phases} kv={kv!r} kW={kw!r} "
                                f"pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
    engine.Solution.Solve()
    assert engine.Solution.Converged()


def load_consumption(engine) -> dict[str, float]:
    out = {}
    for name in engine.Loads.AllNames():
        engine.Circuit.SetActiveElement(f"Load.{name}")
        out[name] = engine.CktElement.TotalPowers()[0]
    return out


def test_changes_through_the_circuit_equal_the_same_changes_as_opendss_commands(circuit: OpenDSSCircuit):
    engine = reference_engine(circuit)
    models = load_models(engine)
    assert {1, 2, 5} <= set(models.values())
    base = {}
    for name in engine.Loads.AllNames():
        engine.Loads.Name(name)
        base[name] = (engine.Loads.kW(), engine.Loads.kvar())
    constant_z = [n for n in circuit.neighbourhoods()[0]["loads"] if models[n] == 2]
    assert constant_z, "neighbourhood 1 should hold a constant-impedance load"
    before = load_consumption(circuit._engine)
    cumulative: dict[int, float] = {}
    for step, change in enumerate(CHANGES):
        if change[0] == "scale":
            circuit.scale_neighbourhood_loads(change[1], change[2])
        else:
            circuit.add_generator(change[1], change[2], change[3])
        apply_as_commands(engine, circuit, change, base, cumulative)

        # The two engines iterate differently (a command also rebuilds the element's admittance), so they agree
        # to the power-flow tolerance of Master.dss (1e-7 pu), not to the last bit.
        ours = np.array(circuit._engine.Circuit.AllBusVolts()).view(complex)
        theirs = np.array(engine.Circuit.AllBusVolts()).view(complex)
        assert list(circuit._engine.Circuit.AllNodeNames()) == list(engine.Circuit.AllNodeNames())
        worst = np.max(np.abs(ours - theirs) / np.abs(theirs))
        assert worst < 1e-7, f"step {step} {change}: node voltages differ by {worst:.2e} pu"
        summary = circuit.snapshot.section("power_summary")
        assert summary["total_circuit_power_kW"] == pytest.approx(-engine.Circuit.TotalPower()[0], rel=1e-6)
        assert summary["total_losses_kW"] == pytest.approx(engine.Circuit.Losses()[0] / 1000, rel=1e-6)
        mine, reference = load_consumption(circuit._engine), load_consumption(engine)
        assert mine == pytest.approx(reference, rel=1e-6, abs=1e-6)
    after = load_consumption(circuit._engine)
    for name in constant_z:  # x0.5 then x1.6 = x0.8 of the set-point; consumption follows (V^2 moves it a little)
        assert after[name] == pytest.approx(0.8 * before[name], rel=0.02), name
