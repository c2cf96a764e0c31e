"""Any OpenDSS feeder (issue 28): our engine's reads of the public test decks equal a plain OpenDSS engine's.

Each deck is compiled twice: through `OpenDSSCircuit`, and in a bare opendssdirect context driven here with the
solve settings our engine ended up with (iteration limits, tolerance), read one element at a time through the
classic interface (no batch calls: nothing of `engine.index` is reused). Compared: every node voltage, every line's
terminal-1 phase currents, the total losses and each transformer's, transformer loadings, and the voltage
violations, which judge phase nodes only. A deck is compiled once per module (the 8500-node ones are slow).
A small deck written here adds what the public ones lack: neutrals modelled as nodes (4-wire lines, a triplex
whose neutral is kept), a 240 V load across a service's two hot legs, and the deck's own generator and PV system.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import opendssdirect
import pytest

from engine.errors import FeederError, NotConvergedError
from engine.hours import hour_row
from simulation_core import OpenDSSCircuit
from studies.limits import Limits, first_violation, starting_state
from support.paths import SHARED_REFERENCE

FEEDERS = SHARED_REFERENCE / "feeders"
VOLTAGE_PU = 1e-6  # the brief's agreement on node voltages; currents and losses to match
CURRENT_A, CURRENT_REL = 1e-4, 1e-6
LOSSES_KW = 1e-3
MIN_ITERATIONS = 100  # the 8500-node feeder needs more than OpenDSS's default 15

DECKS = [
    pytest.param("IEEETestCases/13Bus/IEEE13Nodeckt.dss", id="ieee13"),
    pytest.param("IEEETestCases/34Bus/ieee34Mod1.dss", id="ieee34"),
    pytest.param("EPRITestCircuits/ckt5/Master_ckt5.dss", id="ckt5"),
    pytest.param("IEEETestCases/8500-Node/Master.dss", id="ieee8500", marks=pytest.mark.slow),
    pytest.param("IEEETestCases/8500-Node/Master-unbal.dss", id="ieee8500u", marks=pytest.mark.slow),
    pytest.param("neutrals.dss", id="neutrals"),  # NEUTRAL_DECK below, written for the module
]


@dataclass
class Direct:
    """What a plain engine reads of one solved deck, element by element."""

    node_names: list[str]
    vmag_pu: np.ndarray
    node_kv_base: np.ndarray  # of each node's bus
    line_currents: dict[str, np.ndarray]  # terminal 1's phase conductors
    line_losses_kw: dict[str, float]
    transformer_losses_kw: dict[str, float]
    transformer_terminals: dict[str, int]
    transformer_loading_pct: dict[str, float]  # terminal 1's highest phase current over NormalAmps
    losses_kw: float
    generation_kw: float  # the deck's generators and PV systems

    @property
    def phase_node(self) -> np.ndarray:
        """Phase conductors as the brief names them: nodes 1-3 of a bus with a voltage base."""
        numbers = np.array([int(name.split(".")[1]) for name in self.node_names])
        return (numbers >= 1) & (numbers <= 3) & (self.node_kv_base > 0)


@dataclass
class Feeder:
    deck: str
    ours: OpenDSSCircuit
    direct: Direct


def solve_directly(master: Path, ours: OpenDSSCircuit) -> Direct:
    """The deck compiled and solved in a plain engine with our engine's solve settings, read element by element
    (by name: the classic First/Next iterators skip disabled elements)."""
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    dss.Text.Command(f"Compile [{master}]")
    dss.Solution.Mode(0)
    settings = ours._engine.Solution
    dss.Solution.MaxIterations(max(MIN_ITERATIONS, settings.MaxIterations()))
    dss.Solution.MaxControlIterations(settings.MaxControlIterations())
    dss.Solution.Convergence(settings.Convergence())
    dss.Solution.Solve()
    assert dss.Solution.Converged(), f"{master.name} does not converge in a plain engine"

    kv_base = {}
    for bus in dss.Circuit.AllBusNames():
        dss.Circuit.SetActiveBus(bus)
        kv_base[bus] = dss.Bus.kVBase()
    node_names = list(dss.Circuit.AllNodeNames())

    def element(name: str) -> Any:
        dss.Circuit.SetActiveElement(name)
        return dss.CktElement

    line_currents, line_losses = {}, {}
    for name in dss.Lines.AllNames():
        line = element(f"Line.{name}")
        line_currents[name] = np.asarray(line.CurrentsMagAng()[0:2 * line.NumPhases():2])
        line_losses[name] = line.Losses()[0] / 1000.0
    xf_losses, xf_terminals, xf_loading = {}, {}, {}
    for name in dss.Transformers.AllNames():
        xf = element(f"Transformer.{name}")
        xf_losses[name] = xf.Losses()[0] / 1000.0
        xf_terminals[name] = xf.NumTerminals()
        xf_loading[name] = 100.0 * max(xf.CurrentsMagAng()[0:2 * xf.NumPhases():2]) / xf.NormalAmps()
    generation = 0.0
    for kind, names in (("Generator", dss.Generators.AllNames()), ("PVSystem", dss.PVsystems.AllNames())):
        for name in names if names and names[0] != "NONE" else []:
            generation -= element(f"{kind}.{name}").TotalPowers()[0]
    return Direct(node_names, np.asarray(dss.Circuit.AllBusMagPu()),
                  np.array([kv_base[name.split(".")[0]] for name in node_names]), line_currents, line_losses,
                  xf_losses, xf_terminals, xf_loading, dss.Circuit.Losses()[0] / 1000.0, generation)


def compile_both(master: Path) -> Feeder:
    """Our circuit and the plain engine on one deck; xfail when our circuit cannot solve its base case yet."""
    try:
        ours = OpenDSSCircuit(master, None)
    except (FeederError, NotConvergedError) as error:
        pytest.xfail(f"our circuit does not converge on {master.name} yet (the iteration limit is being raised "
                     f"in engine/circuit.py): {error}")
    return Feeder(master.name, ours, solve_directly(master, ours))


@pytest.fixture(scope="module")
def neutral_deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    master = tmp_path_factory.mktemp("neutrals") / "neutrals.dss"
    master.write_text(NEUTRAL_DECK, encoding="utf-8")
    return master


@pytest.fixture(scope="module", params=DECKS)
def feeder(request: pytest.FixtureRequest, neutral_deck: Path) -> Iterator[Feeder]:
    pair = compile_both(neutral_deck if request.param == neutral_deck.name else FEEDERS / request.param)
    yield pair
    pair.ours.close()


# ---------------------------------------------------------------------------------------------- every deck
def test_every_node_voltage_equals_the_direct_engines(feeder: Feeder) -> None:
    snapshot, direct = feeder.ours.snapshot, feeder.direct
    layout = snapshot.layout
    assert [f"{b}.{n}" for b, n in zip(layout.node_bus, layout.node_number)] == direct.node_names
    np.testing.assert_allclose(snapshot.arrays["vmag_pu"], direct.vmag_pu, rtol=0, atol=VOLTAGE_PU)
    rows = snapshot.bus_details  # every node has its row, neutrals too: they are real readings
    assert [f"{r['Bus']}.{r['Node']}" for r in rows] == direct.node_names
    np.testing.assert_allclose([r["VMag_pu"] for r in rows], direct.vmag_pu, rtol=0, atol=VOLTAGE_PU)


def test_every_lines_terminal_1_currents_equal_the_direct_engines(feeder: Feeder) -> None:
    snapshot, direct = feeder.ours.snapshot, feeder.direct
    layout = snapshot.layout
    assert sorted(layout.line_names) == sorted(direct.line_currents)
    currents = snapshot.arrays["line_currents_a"]
    for name, start, end, row in zip(layout.line_names, layout.line_current_starts, layout.line_current_ends,
                                     snapshot.line_flows):
        expected = direct.line_currents[name]
        np.testing.assert_allclose(currents[start:end], expected, rtol=CURRENT_REL, atol=CURRENT_A, err_msg=name)
        np.testing.assert_allclose(row["I_A"], expected, rtol=CURRENT_REL, atol=CURRENT_A, err_msg=name)
        assert row["Losses_kW"] == pytest.approx(direct.line_losses_kw[name], abs=LOSSES_KW), name


def test_losses_total_and_each_transformers_equal_the_direct_engines(feeder: Feeder) -> None:
    snapshot, direct = feeder.ours.snapshot, feeder.direct
    assert snapshot.section("power_summary")["total_losses_kW"] == pytest.approx(direct.losses_kw, abs=LOSSES_KW)
    names = feeder.ours.transformer_names
    assert sorted(names) == sorted(direct.transformer_losses_kw)
    np.testing.assert_allclose(snapshot.arrays["transformer_losses_kw"],
                               [direct.transformer_losses_kw[n] for n in names], rtol=0, atol=LOSSES_KW)
    assert snapshot.section("losses")["transformers_kW"] == pytest.approx(
        sum(direct.transformer_losses_kw.values()), abs=LOSSES_KW)
    np.testing.assert_allclose(snapshot.arrays["transformer_loading_pct"],
                               [direct.transformer_loading_pct[n] for n in names], rtol=1e-6, atol=1e-6)


def test_voltage_violations_and_profile_judge_phase_nodes_only(feeder: Feeder) -> None:
    snapshot, direct, ours = feeder.ours.snapshot, feeder.direct, feeder.ours
    low, high = ours.settings.voltage_limits_pu
    v, phase = direct.vmag_pu, direct.phase_node
    clear = (np.abs(v - low) > 1e-9) & (np.abs(v - high) > 1e-9)  # a node on a limit may fall either way
    expected = {direct.node_names[i] for i in np.flatnonzero(((v < low) | (v > high)) & phase & clear)}
    found = snapshot.section("violations")["voltage"]
    assert all(1 <= row["node"] <= 3 for row in found)  # never a neutral
    position = {name: i for i, name in enumerate(direct.node_names)}
    named = {f"{row['element'].removeprefix('Bus.')}.{row['node']}" for row in found}
    assert {name for name in named if clear[position[name]]} == expected
    assert snapshot.section("power_summary")["voltage_violations"] == len(found)
    profile = snapshot.section("voltage_profile")
    assert profile["min_voltage_pu"] == pytest.approx(v[phase].min(), abs=VOLTAGE_PU)
    assert profile["max_voltage_pu"] == pytest.approx(v[phase].max(), abs=VOLTAGE_PU)
    assert profile["avg_voltage_pu"] == pytest.approx(v[phase].mean(), abs=VOLTAGE_PU)
    assert ours._index.phase_node_mask.tolist() == phase.tolist() == list(snapshot.layout.node_is_phase)


# ---------------------------------------------------------------------------------------------- what each deck is
#: What each deck exercises, as our index and engine count it: lines by phases, switches, transformers by terminals
#: (3: centre-tapped services), regulated windings, loads by connection and kV, capacitors, disabled lines.
EXERCISES: dict[str, dict[str, Any]] = {
    "IEEE13Nodeckt.dss": {  # delta and 1-phase loads, 1-, 2-, 3-phase lines, a switch, a 480 V transformer
        "lines": {1: 2, 2: 3, 3: 7}, "switches": 1, "transformers": {2: 5}, "regulated_windings": {2: 3},
        "loads": {("delta", 4.16): 3, ("wye1", 0.277): 3, ("wye1", 2.4): 9}, "capacitors": 2, "disabled_lines": 0},
    "ieee34Mod1.dss": {  # a long 24.9 kV feeder: 1-phase laterals, line-to-line (delta) distributed loads
        "lines": {1: 8, 3: 24}, "switches": 0, "transformers": {2: 8}, "regulated_windings": {2: 6},
        "loads": {("wye3", 24.9): 3, ("delta", 24.9): 34, ("delta", 4.16): 1, ("wye1", 14.376): 30},
        "capacitors": 2, "disabled_lines": 0},
    "Master_ckt5.dss": {  # line geometries whose neutrals are Kron-reduced, a 0-referenced wye, no regulators
        "lines": {1: 2204, 2: 13, 3: 212}, "switches": 73, "transformers": {2: 592}, "regulated_windings": {},
        "loads": {("wye1", 0.24): 1379}, "capacitors": 4, "disabled_lines": 11},
    "Master.dss": {  # split-phase 120/240 V services: centre-tapped transformers, triplex, loads on .1.2 at 208 V
        "lines": {1: 1884, 2: 1180, 3: 639}, "switches": 43, "transformers": {2: 13, 3: 1177},
        "regulated_windings": {2: 12}, "loads": {("wye2", 0.208): 1177}, "capacitors": 10, "disabled_lines": 5},
    "Master-unbal.dss": {  # the same services with a 120 V load on each hot leg
        "lines": {1: 1884, 2: 1180, 3: 639}, "switches": 43, "transformers": {2: 13, 3: 1177},
        "regulated_windings": {2: 12}, "loads": {("wye1", 0.12): 2354}, "capacitors": 10, "disabled_lines": 5},
    "neutrals.dss": {  # neutrals kept as nodes 4: a 4-wire line, a triplex drop; a 240 V load across the legs
        "lines": {3: 1, 4: 1}, "switches": 0, "transformers": {3: 1}, "regulated_windings": {},
        "loads": {("wye1", 7.2): 3, ("wye1", 0.12): 2, ("wye1", 0.24): 1}, "capacitors": 0, "disabled_lines": 0},
}


def element_counts(ours: OpenDSSCircuit) -> dict[str, Any]:
    """The element shapes of a compiled feeder (EXERCISES's keys)."""
    index, engine = ours._index, ours._engine
    loads: Counter = Counter()
    for name in index.load_names:
        engine.Loads.Name(name)
        kind = "delta" if engine.Loads.IsDelta() else f"wye{engine.Loads.Phases()}"
        loads[(kind, round(engine.Loads.kV(), 3))] += 1
    return {"lines": dict(Counter(index.line_phases.tolist())), "switches": int(index.line_is_switch.sum()),
            "transformers": dict(Counter(index.transformer_terminals.terminals.tolist())),
            "regulated_windings": dict(Counter(winding for _, winding in index.regulated_windings)),
            "loads": dict(loads), "capacitors": len(ours._batch.Capacitor.Name),
            "disabled_lines": int((~np.asarray(ours._batch.Line.Enabled, dtype=bool)).sum())}


def test_each_deck_exercises_what_it_is_here_for(feeder: Feeder) -> None:
    assert element_counts(feeder.ours) == EXERCISES[feeder.deck]
    snapshot, direct, index = feeder.ours.snapshot, feeder.direct, feeder.ours._index
    three = index.transformer_terminals.terminals == 3
    if three.any():  # centre-tapped services: losses summed over all 3 windings, equal to the engine's own
        names = np.array(feeder.ours.transformer_names)[three]
        losses = snapshot.arrays["transformer_losses_kw"][three]
        assert (losses > 0).all()
        np.testing.assert_allclose(losses, [direct.transformer_losses_kw[n] for n in names], rtol=0, atol=1e-9)
        assert 0 < snapshot.arrays["transformer_loading_pct"][three].max() < 1000
    if feeder.deck in ("Master.dss", "Master-unbal.dss"):  # triplex drops: the two hot legs, 2 conductors
        triplex = [i for i, n in enumerate(index.line_names) if n.startswith("tpx")]
        assert len(triplex) == 1177 and (index.line_phases[triplex] == 2).all()
        assert (index.line_terminals.conductors[triplex] == 2).all()  # their neutral Kron-reduced away
        legs = {n for bus, n in zip(index.node_bus, index.node_number) if bus.startswith("sx")}
        assert legs == {1, 2} and index.phase_node_mask.all()  # the hot legs, judged like any phase


# ---------------------------------------------------------------------------------------------- neutrals as nodes
NEUTRAL_DECK = """\
Clear
Set DefaultBaseFrequency=60
New Circuit.neutrals basekv=12.47 pu=1.02 phases=3 bus1=src MVAsc3=20000 MVAsc1=21000
New WireData.acsr336 GMRac=0.0255 Rac=0.306 diam=0.721 GMRunits=ft Runits=mi radunits=in normamps=530
New WireData.acsr4_0 GMRac=0.00814 Rac=0.592 diam=0.563 GMRunits=ft Runits=mi radunits=in normamps=340
New WireData.tpx1_0 GMRac=0.0111 Rac=0.97 diam=0.368 GMRunits=ft Runits=mi radunits=in normamps=200
New LineGeometry.four_wire nconds=4 nphases=3 reduce=n
~ cond=1 wire=acsr336 x=-4 h=28 units=ft
~ cond=2 wire=acsr336 x=-1.5 h=28 units=ft
~ cond=3 wire=acsr336 x=3 h=28 units=ft
~ cond=4 wire=acsr4_0 x=0 h=24 units=ft
New LineGeometry.triplex nconds=3 nphases=2 reduce=n
~ cond=1 wire=tpx1_0 x=-0.5 h=240 units=in
~ cond=2 wire=tpx1_0 x=0.5 h=240 units=in
~ cond=3 wire=tpx1_0 x=0 h=240.9 units=in
! the primary's neutral is node 4, grounded hard at the source and through 25 ohm at the far end
New Reactor.src_ground phases=1 bus1=src.4 r=0.1 x=0
New Line.main bus1=src.1.2.3.4 bus2=far.1.2.3.4 geometry=four_wire length=2 units=mi
New Reactor.far_ground phases=1 bus1=far.4 r=25 x=0
New Load.a phases=1 bus1=far.1.4 kV=7.2 kW=900 kvar=300
New Load.b phases=1 bus1=far.2.4 kV=7.2 kW=300 kvar=100
New Load.c phases=1 bus1=far.3.4 kV=7.2 kW=100 kvar=50
! a centre-tapped service (grounded centre tap: node 0) and a triplex drop whose neutral is kept, node 4 at the house
New Transformer.service phases=1 windings=3 buses=[far.1.4 sec.1.0 sec.0.2] kVs=[7.2 0.12 0.12] kVAs=[50 50 50]
~ %Rs=[0.6 1.2 1.2] XHL=2.04 XHT=2.04 XLT=1.36
New Line.drop bus1=sec.1.2.0 bus2=house.1.2.4 geometry=triplex length=150 units=ft
New Load.house_a phases=1 bus1=house.1.4 kV=0.12 kW=8 kvar=2
Set voltagebases=[12.47, 0.208]
Calcvoltagebases
! defined after Calcvoltagebases, as decks do: a 240 V load across the hot legs, the deck's own generation
New Load.house_240 phases=1 bus1=house.1.2 kV=0.24 kW=5 kvar=1
New Load.house_b phases=1 bus1=house.2.4 kV=0.12 kW=1 kvar=0.3
New Generator.farm bus1=far.1.2.3.4 phases=3 kV=12.47 kW=300 pf=1
New PVSystem.roof phases=1 bus1=house.1.2 kV=0.24 kVA=6 Pmpp=6 irradiance=1
"""
NEUTRALS = {"src.4", "far.4", "house.4"}


@pytest.fixture(scope="module")
def neutrals(neutral_deck: Path) -> Iterator[Feeder]:
    pair = compile_both(neutral_deck)
    yield pair
    pair.ours.close()


def test_neutral_nodes_are_listed_but_never_judged(neutrals: Feeder) -> None:
    ours, direct = neutrals.ours, neutrals.direct
    snapshot, index = ours.snapshot, ours._index
    is_neutral = np.array([name in NEUTRALS for name in index.node_names])
    assert is_neutral.sum() == len(NEUTRALS) and (index.phase_node_mask == ~is_neutral).all()
    vmag = snapshot.arrays["vmag_pu"]
    assert (vmag[is_neutral] < 0.1).all() and (vmag[~is_neutral] > 0.9).all()  # a neutral's volts are near zero
    bus_rows = {f"{r['Bus']}.{r['Node']}": r["VMag_pu"] for r in snapshot.bus_details}
    for name in NEUTRALS:  # listed all the same: real readings
        assert bus_rows[name] == pytest.approx(direct.vmag_pu[direct.node_names.index(name)], abs=VOLTAGE_PU)
    profile, violations = snapshot.section("voltage_profile"), snapshot.section("violations")["voltage"]
    assert profile["min_voltage_pu"] > 0.9 and not [v for v in violations if v["node"] > 3]

    # studies: a trial's limits and an hour's row judge the same nodes
    reading = {**snapshot.arrays, "source_kw": snapshot.section("power_summary")["total_circuit_power_kW"],
               "source_kvar": 0.0, "load_kw": 0.0, "generation_kw": 0.0, "losses_kw": 0.0}
    limits = Limits(voltage_low_pu=0.5, voltage_high_pu=1.5, thermal_pct=1e9)
    start = dataclasses.replace(starting_state(reading, [], limits), vmag_pu=np.ones_like(vmag))
    every_node = dataclasses.replace(snapshot.layout, node_is_phase=[True] * len(vmag))
    assert first_violation(reading, start, limits, snapshot.layout) is None
    assert first_violation(reading, start, limits, every_node)["element"] in NEUTRALS  # what the mask prevents
    row = hour_row(reading, (0.5, 1.5), {}, index.phase_node_mask)
    assert row["voltage_violations"] == 0 and row["min_voltage_pu"] == pytest.approx(vmag[~is_neutral].min())
    assert hour_row(reading, (0.5, 1.5), {})["voltage_violations"] == len(NEUTRALS)
    hours, _ = ours.run_hours(np.ones((1, len(index.load_names))), np.ones(1))
    assert hours[0]["voltage_violations"] == len(violations)
    assert hours[0]["min_voltage_pu"] == pytest.approx(profile["min_voltage_pu"], abs=VOLTAGE_PU)


def test_a_split_phase_service_and_the_decks_own_generation_read_by_each_elements_shape(neutrals: Feeder) -> None:
    ours, direct = neutrals.ours, neutrals.direct
    index, snapshot = ours._index, ours.snapshot
    assert index.transformer_terminals.terminals[ours.transformer_names.index("service")] == 3
    lines = {name: i for i, name in enumerate(index.line_names)}
    assert index.line_phases[lines["main"]] == 4 and index.line_phases[lines["drop"]] == 3  # unreduced: all phases
    # the house's loads (8 + 1 kW on the legs, 5 kW across them) land on its nodes, conductor by conductor
    load_kw = dict(zip(index.node_names, snapshot.arrays["load_kw"]))
    assert load_kw["house.1"] > 5 and load_kw["house.2"] > 1
    house = 0.0
    for name in ("house_a", "house_b", "house_240"):  # below 0.95 pu they draw as impedances: ask the engine
        ours._engine.Circuit.SetActiveElement(f"Load.{name}")
        house += ours._engine.CktElement.TotalPowers()[0]
    assert load_kw["house.1"] + load_kw["house.2"] + load_kw["house.4"] == pytest.approx(house, abs=1e-6)
    assert sum(load_kw.values()) == pytest.approx(snapshot.section("power_summary")["total_load_kW"])
    generation = snapshot.section("power_summary")["total_generation_kW"]  # the deck's farm and roof
    assert generation == pytest.approx(direct.generation_kw, abs=1e-6) and generation > 300
