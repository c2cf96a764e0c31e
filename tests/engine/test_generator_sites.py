"""Generators connected as the system is (issue 28 part 6), against OpenDSS driven directly.

The decks: IEEE 13 from `../shared/reference/feeders/`, redirected from a small master in tmp_path that adds what the
public decks lack in one small feeder (`SITES_DECK`): a 150 kVA delta-delta transformer from 680 to a 480 V 3-wire
bus `d480` (no ground reference: the part of IEEE 123 behind XFM1, bus 610, is the same), and a centre-tapped 25 kVA
service transformer from 652 to a 120/240 V service `svc` with a 2-wire triplex drop to `house` (the IEEE 8500-node
feeder's 1,177 services are modelled so). Another master opens the switch 671-692, which leaves 692 and 675 dead.

What is checked:
- the answer's `nodes`, `kv` and `conn` are what the issue asks (delta on d480, 240 V across the legs at svc/house);
- node voltages after each change equal a plain opendssdirect engine given the same generators as typed OpenDSS
  commands (1e-6 pu), and the delta generators leave d480's line-to-ground voltages sane (0.95-1.05 pu) where the
  same unit typed as a grounded wye floats the system's neutral (outside 0.9-1.1 pu): why the rule exists;
- a bus that is not energised is refused (SimulationError on `bus_name`, the API's 422), and the refused buses are
  exactly those a plain engine leaves below 1e-3 pu;
- a fuzzed sequence of adds, updates, removals, undos and rebuilds among delta, split-phase and grounded buses keeps
  the circuit equal to a plain engine given the surviving changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.errors import SimulationError
from engine.feeder_model import known_model
from simulation_core import OpenDSSCircuit
from support.bare_feeder import SITES_DECK_TEXT, inverter_commands
from support.paths import SHARED_REFERENCE

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"
VOLTAGE_PU = 1e-6
REBUILD_PU = 1e-9
GENERATOR = "pf=1 model=1 vminpu=0.5 vmaxpu=1.5"  # add_generator's machine (docs/api.md)
SITES_DECK = SITES_DECK_TEXT  # IEEE 13 with a delta-delta 480 V bus and a split-phase service
OPEN_DECK = f"""Redirect [{IEEE13}]
Open Line.671692 term=1
Solve
"""


@pytest.fixture(scope="module")
def decks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("decks")
    out = {}
    for name, text in (("sites", SITES_DECK), ("open", OPEN_DECK)):
        out[name] = folder / f"{name}.dss"
        out[name].write_text(text)
    return out


class Direct:
    """A plain opendssdirect engine on a deck, changed with OpenDSS commands as a user types them."""

    def __init__(self, master: Path, tolerance: float) -> None:
        dss = self.dss = opendssdirect.NewContext()
        dss.Basic.AllowChangeDir(False)
        dss.Text.Command(f"Compile [{master}]")
        dss.Text.Command(f"Set Mode=Snapshot MaxIterations=1000 MaxControlIter=100 Tolerance={tolerance!r}")
        self.made: set[str] = set()
        self.solve()

    def solve(self) -> None:
        self.dss.Text.Command("Solve")
        assert self.dss.Solution.Converged()

    def kv_base(self, bus: str) -> float:
        self.dss.Circuit.SetActiveBus(bus)
        return self.dss.Bus.kVBase()

    def generator(self, name: str, bus: str, nodes: list[int], kv: float, kw: float, conn: str = "") -> None:
        """`New Generator` the first time, `edit … kW=` after, `enabled=yes` again after a removal."""
        if name in self.made:
            self.dss.Text.Command(f"edit Generator.{name} kW={kw!r} enabled=yes")
        else:
            phases = 3 if len(nodes) == 3 else 1
            self.dss.Text.Command(f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                                  f"kV={kv:.6f} kW={kw!r} {GENERATOR}{' conn=' + conn if conn else ''}")
            self.made.add(name)

    def remove(self, name: str) -> None:
        self.dss.Text.Command(f"Disable Generator.{name}")

    def voltages(self) -> tuple[list[str], np.ndarray]:
        return list(self.dss.Circuit.AllNodeNames()), np.asarray(self.dss.Circuit.AllBusMagPu())

    def bus_pu(self, bus: str) -> list[float]:
        """Line-to-ground magnitudes of a bus's nodes, per unit of its base."""
        self.dss.Circuit.SetActiveBus(bus)
        return list(self.dss.Bus.puVmagAngle()[::2])

    def close(self) -> None:
        self.dss.Text.Command("Clear")


#: What the issue asks, as a user at the OpenDSS prompt types it: (bus, phases) -> (name, nodes, kV, conn). d480
#: has no ground: 3-phase in delta, 1-phase across phases 1 and 2 (the bus's first phase and the next), rated line to
#: line; the service: 1-phase across both legs at twice the leg's 120 V base; 671 and 652 are grounded wye.
def expected(direct: Direct, bus: str, phases: int) -> tuple[str, list[int], float, str]:
    base = direct.kv_base(bus)
    if bus == "d480":
        nodes = [1, 2, 3] if phases == 3 else [1, 2]
        return f"gen_{bus}_{''.join(map(str, nodes))}", nodes, base * math.sqrt(3), "delta"
    if bus in ("svc", "house"):
        return f"gen_{bus}_12", [1, 2], 2 * base, "delta"
    nodes = [1, 2, 3] if phases == 3 else [1]
    return f"gen_{bus}_{''.join(map(str, nodes))}", nodes, base * (math.sqrt(3) if phases == 3 else 1.0), "wye"


def our_voltages(circuit: OpenDSSCircuit) -> tuple[list[str], np.ndarray]:
    layout = circuit.snapshot.layout
    return ([f"{b}.{n}" for b, n in zip(layout.node_bus, layout.node_number)],
            np.asarray(circuit.snapshot.arrays["vmag_pu"]))


def assert_same_voltages(ours: tuple[list[str], np.ndarray], theirs: tuple[list[str], np.ndarray], what: str,
                         tolerance: float = VOLTAGE_PU) -> None:
    assert ours[0] == theirs[0], f"{what}: node order"
    worst = int(np.argmax(np.abs(ours[1] - theirs[1])))
    np.testing.assert_allclose(ours[1], theirs[1], rtol=0, atol=tolerance,
                               err_msg=f"{what}: node voltages (worst {ours[0][worst]})")


@pytest.fixture(scope="module")
def sites_circuit(decks: dict[str, Path]) -> Any:
    circuit = OpenDSSCircuit(decks["sites"], None)
    yield circuit
    circuit.close()


def tolerance_of(circuit: OpenDSSCircuit) -> float:
    return circuit._engine.Solution.Convergence()


def test_the_model_says_which_buses_are_ungrounded_and_which_are_split_phase(sites_circuit: OpenDSSCircuit) -> None:
    refusals = sites_circuit.generator_refusals()
    assert refusals == {}
    model = known_model(sites_circuit.feeder)  # what the feeder's engines read of it (`engine.feeder_model`)
    assert model is not None
    sites = model.sites
    assert sites.ungrounded == {"d480"}
    assert dict(sites.split_phase) == {"svc": (1, 2), "house": (1, 2)}


@pytest.mark.parametrize("bus,phases", [("d480", 3), ("d480", 1), ("svc", 1), ("house", 1), ("652", 1), ("671", 3)])
def test_a_generator_connects_as_the_system_is_and_equals_opendss_driven_directly(
        decks: dict[str, Path], bus: str, phases: int) -> None:
    circuit = OpenDSSCircuit(decks["sites"], None)
    direct = Direct(decks["sites"], tolerance_of(circuit))
    try:
        name, nodes, kv, conn = expected(direct, bus, phases)
        change = circuit.add_generator(bus, phases, 40.0 if phases == 3 else 8.0)
        assert (change["generator"], change["nodes"], change["conn"]) == (name, nodes, conn)
        assert change["kv"] == pytest.approx(kv, rel=1e-12)
        direct.generator(name, bus, nodes, kv, change["kw"], "delta" if conn == "delta" and phases == 3 else "")
        direct.solve()
        assert_same_voltages(our_voltages(circuit), direct.voltages(), name)
        row = next(g for g in circuit.generators() if g["name"] == name)
        assert (row["nodes"], row["conn"]) == (nodes, conn)
        assert row["delivered_kW"] == pytest.approx(change["kw"], rel=1e-6)
        if bus == "d480":
            assert all(0.95 < v < 1.05 for v in direct.bus_pu(bus)), direct.bus_pu(bus)
    finally:
        direct.close()
        circuit.close()


def test_the_same_unit_as_a_grounded_wye_floats_the_ungrounded_systems_neutral(decks: dict[str, Path]) -> None:
    """Why d480 gets a delta generator: typed as a grounded wye (OpenDSS's default), the power flow answers
    line-to-ground voltages far from 1 pu on a system with no ground reference."""
    direct = Direct(decks["sites"], 1e-7)
    try:
        kv = direct.kv_base("d480") * math.sqrt(3)
        direct.generator("wye", "d480", [1, 2, 3], kv, 40.0)
        direct.solve()
        assert not all(0.9 < v < 1.1 for v in direct.bus_pu("d480")), direct.bus_pu("d480")
    finally:
        direct.close()


def test_a_split_phase_generator_refuses_a_phase(sites_circuit: OpenDSSCircuit) -> None:
    with pytest.raises(SimulationError, match="^phase: bus svc is a split-phase 120/240 V service") as refused:
        sites_circuit.add_generator("svc", 1, 5.0, phase=1)
    assert refused.value.field == "phase"
    with pytest.raises(SimulationError, match="^phases: bus house has phases") as refused:
        sites_circuit.add_generator("house", 3, 5.0)
    assert refused.value.field == "phases"


def test_a_phase_picks_the_pair_on_an_ungrounded_bus(decks: dict[str, Path]) -> None:
    circuit = OpenDSSCircuit(decks["sites"], None)
    try:
        pairs = {phase: circuit.add_generator("d480", 1, 5.0, phase=phase, dry_run=True)["nodes"]
                 for phase in (1, 2, 3)}
        assert pairs == {1: [1, 2], 2: [2, 3], 3: [1, 3]}
    finally:
        circuit.close()


def test_buses_not_energised_are_refused_with_the_reason(decks: dict[str, Path]) -> None:
    """With 671-692 open, 692 and 675 are dead: refused on bus_name, as exactly the buses a plain engine leaves
    below 1e-3 pu; a live bus still takes a generator."""
    circuit = OpenDSSCircuit(decks["open"], None)
    direct = Direct(decks["open"], tolerance_of(circuit))
    try:
        dead = set()
        for bus in direct.dss.Circuit.AllBusNames():
            if max(direct.bus_pu(bus)) <= 1e-3:
                dead.add(bus)
        assert dead == {"692", "675"}
        assert set(circuit.generator_refusals()) == dead
        for bus in sorted(dead):
            with pytest.raises(SimulationError, match=f"^bus_name: {bus} is not energised") as refused:
                circuit.add_generator(bus, 3, 100.0)
            assert refused.value.field == "bus_name"
        assert circuit.add_generator("671", 3, 100.0)["created"]
    finally:
        direct.close()
        circuit.close()


def test_a_bus_whose_name_has_a_hyphen_takes_a_generator_and_an_inverter(tmp_path: Path) -> None:
    """81 buses of the IEEE 8500-node feeder are named like 221-312488: a generator and a smart inverter go there as
    anywhere (before, the name check refused them, and a hosting capacity of every bus failed on the first)."""
    master = tmp_path / "hyphen.dss"
    master.write_text(f"Redirect [{IEEE13}]\nNew Line.tap phases=1 bus1=652.1 bus2=221-312488.1 length=0.05 "
                      f"units=km r1=0.5 x1=0.2 r0=0.5 x0=0.2 c1=0 c0=0\nSet Voltagebases=[115, 4.16, 0.48]\n"
                      f"Calcvoltagebases\nSolve\n")
    circuit = OpenDSSCircuit(master, None)
    direct = Direct(master, tolerance_of(circuit))
    try:
        change = circuit.add_generator("221-312488", 1, 8.0)
        assert (change["generator"], change["nodes"], change["conn"]) == ("gen_221-312488_1", [1], "wye")
        direct.generator(change["generator"], "221-312488", [1], direct.kv_base("221-312488"), 8.0)
        direct.solve()
        assert_same_voltages(our_voltages(circuit), direct.voltages(), "gen_221-312488_1")
        inverter = circuit.add_generator("221-312488", 1, 5.0, inverter={"mode": "volt_var"})
        assert inverter["nodes"] == [1]
    finally:
        direct.close()
        circuit.close()


# ------------------------------------------------------------------------------------------- a fuzzed sequence
BUSES = [("d480", 3), ("d480", 1), ("svc", 1), ("house", 1), ("652", 1), ("671", 3)]
steps = st.lists(st.one_of(
    st.tuples(st.just("add"), st.sampled_from(BUSES), st.sampled_from([5.0, 20.0, 60.0])),
    st.tuples(st.just("remove"), st.sampled_from(BUSES), st.just(0.0)),
    st.tuples(st.just("undo"), st.just(BUSES[0]), st.just(0.0))), min_size=3, max_size=7)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=steps)
def test_a_fuzzed_sequence_with_delta_and_split_phase_generators_equals_opendss_and_rebuilds(
        sites_circuit: OpenDSSCircuit, sequence: list[tuple[str, tuple[str, int], float]]) -> None:
    """Adds (or updates), removals and undos (a rebuild of the ops before the last) on one circuit; at the end its
    state equals a fresh plain engine given the surviving generators, and a rebuild of its ops equals it (1e-9)."""
    circuit = sites_circuit
    circuit.rebuild([])
    ops: list[dict[str, Any]] = []
    for kind, (bus, phases), kw in sequence:
        if kind == "add":
            ops.append({"op": "add_generator", "bus_name": bus, "phases": phases, "kw": kw})
            circuit.apply(ops[-1])
        elif kind == "remove":
            name = next((g["name"] for g in circuit.generators() if g["bus"] == bus
                         and g["phases"] == phases), None)
            if name is None:
                continue
            ops.append({"op": "remove_generator", "name": name})
            circuit.apply(ops[-1])
        elif ops:
            ops.pop()
            circuit.rebuild(ops)
    direct = Direct(circuit.master_file, tolerance_of(circuit))
    try:
        replay(direct, ops)
        ours = our_voltages(circuit)
        assert_same_voltages(ours, direct.voltages(), f"after {sequence}")
        for row in circuit.generators():
            assert (row["name"], row["nodes"], row["conn"]) == expected(direct, row["bus"], row["phases"])[:2] + (
                expected(direct, row["bus"], row["phases"])[3],)
    finally:
        direct.close()
    circuit.rebuild(ops)
    assert_same_voltages(our_voltages(circuit), ours, f"rebuild after {sequence}", REBUILD_PU)


def replay(direct: Direct, ops: list[dict[str, Any]]) -> None:
    """The ops typed into a plain engine, a solve after each, as the issue's rule connects each generator."""
    for op in ops:
        if op["op"] == "add_generator":
            name, nodes, kv, conn = expected(direct, op["bus_name"], op["phases"])
            direct.generator(name, op["bus_name"], nodes, kv, op["kw"], "delta" if conn == "delta" and len(nodes) == 3
                             else "")
        else:
            direct.remove(op["name"])
        direct.solve()


@pytest.mark.parametrize("bus,phases", [("d480", 3), ("d480", 1), ("svc", 1)])
def test_an_inverter_generator_connects_the_same_way_and_equals_opendss_driven_directly(
        decks: dict[str, Path], bus: str, phases: int) -> None:
    """A volt-var smart inverter (docs/inverters.md's elements, typed by support.bare_feeder.inverter_commands) on
    the same connection: a PVSystem in delta on d480, across the legs of the service."""
    circuit = OpenDSSCircuit(decks["sites"], None)
    direct = Direct(decks["sites"], tolerance_of(circuit))
    try:
        name, nodes, kv, conn = expected(direct, bus, phases)
        change = circuit.add_generator(bus, phases, 30.0 if phases == 3 else 6.0, inverter={"mode": "volt_var"})
        assert (change["nodes"], change["conn"]) == (nodes, conn)
        commands = inverter_commands(f"{name}_1", bus, nodes, kv, change["kw"], change["inverter"])
        if phases == 3:
            commands[0] += " conn=delta"
        for command in commands:
            direct.dss.Text.Command(command)
        direct.solve()
        assert_same_voltages(our_voltages(circuit), direct.voltages(), f"{name} volt-var")
    finally:
        direct.close()
        circuit.close()
