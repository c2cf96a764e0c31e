"""Changes on the public test decks equal OpenDSS driven directly (the "any OpenDSS feeder" issue).

Each deck of `../shared/reference/feeders/` is served by `OpenDSSCircuit(master, None)` (derived neighbourhoods)
and, beside it, compiled in a plain opendssdirect engine with the same solve settings. A deterministic sequence of
changes, chosen from the deck's own buses, goes through our circuit; the same changes are typed into the plain
engine as OpenDSS commands, as a user at the OpenDSS prompt would (`New Generator.…` written as the API
documents it, kV to 6 decimals; `edit Load.… kW=… kvar=…`, `edit Generator.… kW=…`, `Disable Generator.…`,
`Solve`), into one running engine for the whole sequence, so both take the same path through the regulator and
capacitor controls. Nothing of our engine code builds the reference: the generator's name, nodes and kV come from
the plain engine's bus, the set-points from its own compile; only the neighbourhoods' load lists come from the API.

The sequence on each deck: a 3-phase generator at the 3-phase primary bus farthest from the source, a 1-phase
generator at the farthest 1-phase lateral bus (on the 8500-node feeder also one on a split-phase 120/240 V service
bus, whose nodes are the two hot legs 1 and 2), the neighbourhood holding the 3-phase generator's bus scaled, the
3-phase generator updated to a new kW, one generator removed. After each step: every node voltage (1e-6 pu), every
line's terminal-1 current magnitudes (rel 1e-6 or 1e-6 A) and the total losses (rel 1e-6). Then an undo,
`rebuild(ops[:-1])`, equals a fresh plain engine given the first n-1 changes, and the state it undid to (1e-9), and
a rebuild of all the ops equals the state before the undo (1e-9 pu).

Adding or removing a generator keeps the two engines bit for bit; a scaling or a generator update does not (a typed
`edit` rebuilds the element's primitive admittance, our circuit's interface calls do not: another iteration path to
the same answer), and from there on they agree to the power-flow tolerance, within 6e-9 pu here. That is below what
ckt5's busbar lines can resolve in current (CKT5_BUSBARS: an xfail of the 1e-6 A comparison there, and a test that
holds every line able to resolve it to 1e-6 all the same).

Generators connect as the system does (docs/feeder.md): a 1-phase generator on the 8500-node feeder's split-phase
service goes across both hot legs, `bus1=sx….1.2`, rated 240 V (twice the leg's base); on our IEEE 123 deck, bus 610
behind XFM1's delta-delta windings has no ground reference, so a 3-phase generator there is typed `conn=delta` and a
1-phase one goes across phases 1 and 2 rated line to line. Those buses are named in the sequences here from the
decks' files (LoadXfmrs.dss, Transformers.dss), not from our engine; and 610's line-to-ground voltages stay sane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import opendssdirect
import pytest

from simulation_core import DEFAULT_MASTER_FILE, OpenDSSCircuit
from support.paths import SHARED_REFERENCE

FEEDERS = SHARED_REFERENCE / "feeders"
VOLTAGE_PU = 1e-6
CURRENT_REL, CURRENT_A = 1e-6, 1e-6
LOSSES_REL = 1e-6
REBUILD_PU = 1e-9  # a rebuild takes the very path of the changes it replays
#: A line whose primitive admittance exceeds this carries a current Y·(V1-V2) that one ulp of a kV-level node
#: voltage (ulp(7.2 kV x 1.1) = 9.1e-13 V) moves by about CURRENT_A or more: two engines that do not iterate alike
#: cannot agree on it to CURRENT_A. Such lines are held to STIFF_CURRENT_A (some 20 ulps at ckt5's busbars; the
#: bound tests/engine/test_feeders.py holds every line to).
STIFF_LINE_S = 1e6
STIFF_CURRENT_A = 1e-4

CKT5_BUSBARS = (
    "ckt5's 61 lines of linecode BUSBAR (1e-4 ohm/km over 1.524 m: 1.5e-7 ohm, |Yprim| 4.6e6 S) carry a current "
    "computed as Y·(V1-V2), where one ulp of a 7.2 kV node voltage (9.1e-13 V) is 4.2e-6 A, above the 1e-6 A "
    "asked. Our circuit sets a scaled load's kW/kvar and an updated generator's kW through the element interface; "
    "the typed `edit` also rebuilds the element's primitive admittance (constant-power elements are then "
    "compensated by their injection currents), so the two engines iterate differently and agree to the power-flow "
    "tolerance (node voltages within 2.1e-9 pu, losses 1.3e-8 rel), not to the bit: those lines differ by up to "
    "1.9e-5 A (a few ulps); every other line agrees within 1e-6 (the next test holds both)")


@dataclass(frozen=True)
class Generator:
    """A generator added (or updated: the same bus and phases, a new kW)."""

    bus: str
    phases: int
    kw: float


@dataclass(frozen=True)
class Scale:
    """The neighbourhood holding `bus` scaled by `factor` (its id is the derived one, looked up by bus)."""

    bus: str
    factor: float


@dataclass(frozen=True)
class Remove:
    """The generator at `bus` with `phases` removed."""

    bus: str
    phases: int


Step = Generator | Scale | Remove


@dataclass(frozen=True)
class Sequence:
    deck: str
    steps: tuple[Step, ...]
    service_bus: str | None = None  # a split-phase service bus among the steps' buses (nodes 1 and 2)
    delta_bus: str | None = None  # a bus with no ground reference among the steps' buses
    currents_xfail: str | None = None  # why its line currents cannot meet CURRENT_REL / CURRENT_A everywhere


# The buses, by line length from the source: the farthest 3-phase primary bus (IEEE 13: 675, the farthest with
# loads; 680 beyond 671 has none; IEEE 34: 848; 8500: m1027055; ckt5: 107782) and the farthest 1-phase primary bus
# (652 on node 1; 838 on node 2; l3312692 on node 1, with the service sx3312692a beyond it; 74436 on node 3). Sizes:
# a few to ten percent of the feeder's load; each sequence moves the regulators' taps (ckt5 has none).
SEQUENCES = [
    pytest.param(Sequence("IEEETestCases/13Bus/IEEE13Nodeckt.dss", (  # 3.5 MW of load, 3 regulators
        Generator("675", 3, 400.0), Generator("652", 1, 100.0), Scale("675", 1.3), Generator("675", 3, 250.0),
        Remove("652", 1))), id="ieee13"),
    pytest.param(Sequence("IEEETestCases/34Bus/ieee34Mod1.dss", (  # 1.8 MW, 6 regulators in two banks
        Generator("848", 3, 300.0), Generator("838", 1, 60.0), Scale("848", 1.4), Generator("848", 3, 150.0),
        Remove("838", 1))), id="ieee34"),
    pytest.param(Sequence("IEEETestCases/8500-Node/Master.dss", (  # 10.8 MW, 12 regulators, capacitor controls
        Generator("m1027055", 3, 1000.0), Generator("l3312692", 1, 150.0), Generator("sx3312692a", 1, 8.0),
        Scale("m1027055", 1.25), Generator("m1027055", 3, 600.0), Remove("sx3312692a", 1)),
        service_bus="sx3312692a"), id="ieee8500", marks=pytest.mark.slow),
    pytest.param(Sequence("EPRITestCircuits/ckt5/Master_ckt5.dss", (  # 7.1 MW, no regulators
        Generator("107782", 3, 800.0), Generator("74436", 1, 120.0), Scale("107782", 1.3),
        Generator("107782", 3, 400.0), Remove("74436", 1)), currents_xfail=CKT5_BUSBARS), id="ckt5",
        marks=pytest.mark.slow),
    pytest.param(Sequence(str(DEFAULT_MASTER_FILE), (  # ours: 610 is XFM1's 480 V delta secondary (150 kVA)
        Generator("610", 3, 78.0), Generator("610", 1, 30.0), Scale("67", 1.3), Generator("610", 3, 50.0),
        Remove("610", 1)), delta_bus="610"), id="ieee123-610"),
]


@dataclass
class Reading:
    """One solved state: node voltages in the engine's node order, terminal-1 phase currents by line, losses."""

    node_names: list[str]
    vmag_pu: np.ndarray
    line_currents: dict[str, np.ndarray]
    losses_kw: float


def our_reading(snapshot: Any) -> Reading:
    layout, arrays = snapshot.layout, snapshot.arrays
    losses = snapshot.section("power_summary")["total_losses_kW"]
    assert snapshot.section("losses")["total_kW"] == losses
    currents = arrays["line_currents_a"]
    return Reading([f"{bus}.{node}" for bus, node in zip(layout.node_bus, layout.node_number)],
                   np.asarray(arrays["vmag_pu"]),
                   {name: np.asarray(currents[start:end]) for name, start, end in
                    zip(layout.line_names, layout.line_current_starts, layout.line_current_ends)}, losses)


class DirectEngine:
    """A plain opendssdirect engine on the deck, driven by OpenDSS commands and read element by element."""

    def __init__(self, master: Path, settings: tuple[int, int, float], service_bus: str | None = None,
                 delta_bus: str | None = None) -> None:
        self.service_bus, self.delta_bus = service_bus, delta_bus
        dss = self.dss = opendssdirect.NewContext()
        dss.Basic.AllowChangeDir(False)
        dss.Text.Command(f"Compile [{master}]")
        iterations, control_iterations, tolerance = settings
        dss.Text.Command(f"Set Mode=Snapshot MaxIterations={iterations} MaxControlIter={control_iterations} "
                         f"Tolerance={tolerance!r}")
        self.solve()
        self.compiled: dict[str, tuple[float, float]] = {}  # each load's kW and kvar as compiled
        for name in dss.Loads.AllNames():
            dss.Loads.Name(name)
            self.compiled[name] = (dss.Loads.kW(), dss.Loads.kvar())
        self.cumulative: dict[int, float] = {}
        self.generators: set[str] = set()

    def command(self, text: str) -> None:
        self.dss.Text.Command(text)

    def solve(self) -> None:
        self.command("Solve")
        assert self.dss.Solution.Converged(), "the plain engine did not converge"

    def generator(self, bus: str, phases: int, kw: float) -> str:
        """Add a generator as a user would type it (the bus's voltage base, its first node for one phase), or
        update the one already there. Returns its name."""
        name, nodes, kv = self.connection(bus, phases)
        delta = " conn=delta" if bus == self.delta_bus and phases == 3 else ""
        if name in self.generators:
            self.command(f"edit Generator.{name} kW={kw!r}")
        else:
            self.command(f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} kV={kv:.6f} "
                         f"kW={kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5{delta}")
            self.generators.add(name)
        return name

    def connection(self, bus: str, phases: int) -> tuple[str, list[int], float]:
        """A generator's name, nodes and rated kV at this bus: line to line for 3 phases; for 1 phase, to neutral
        on the first node, or across both legs of a service at twice the leg's base, or across the first two
        phases of a bus with no ground reference, line to line."""
        dss = self.dss
        dss.Circuit.SetActiveBus(bus)
        if phases == 3:
            nodes, kv = [1, 2, 3], dss.Bus.kVBase() * math.sqrt(3)
        elif bus == self.service_bus:
            nodes, kv = [1, 2], 2 * dss.Bus.kVBase()
        elif bus == self.delta_bus:
            nodes, kv = sorted(dss.Bus.Nodes())[:2], dss.Bus.kVBase() * math.sqrt(3)
        else:
            nodes, kv = sorted(dss.Bus.Nodes())[:1], dss.Bus.kVBase()
        return f"gen_{bus}_{''.join(map(str, nodes))}", nodes, kv

    def scale(self, neighbourhood: int, loads: list[str], factor: float) -> None:
        cumulative = self.cumulative[neighbourhood] = self.cumulative.get(neighbourhood, 1.0) * factor
        for name in loads:
            kw, kvar = self.compiled[name]
            self.command(f"edit Load.{name} kW={kw * cumulative!r} kvar={kvar * cumulative!r}")

    def remove(self, name: str) -> None:
        self.command(f"Disable Generator.{name}")

    def read(self) -> Reading:
        dss = self.dss
        currents = {}
        for name in dss.Lines.AllNames():  # by name: the Lines iterator skips disabled lines
            dss.Circuit.SetActiveElement(f"Line.{name}")
            currents[name] = np.asarray(dss.CktElement.CurrentsMagAng()[0:2 * dss.CktElement.NumPhases():2])
        return Reading(list(dss.Circuit.AllNodeNames()), np.asarray(dss.Circuit.AllBusMagPu()), currents,
                       dss.Circuit.Losses()[0] / 1000.0)

    def line_admittances(self) -> dict[str, float]:
        """Each line's largest primitive admittance (S): what one ulp of its voltages is worth in current."""
        dss, admittances = self.dss, {}
        for name in dss.Lines.AllNames():
            dss.Circuit.SetActiveElement(f"Line.{name}")
            admittances[name] = float(np.abs(np.asarray(dss.CktElement.YPrim()).view(complex)).max())
        return admittances

    def close(self) -> None:
        self.command("Clear")


@dataclass
class Run:
    """What a sequence gave: per step its description and both readings; then the undo and the redo."""

    sequence: Sequence
    steps: list[tuple[str, Reading, Reading]] = field(default_factory=list)
    undo: tuple[Reading, Reading] | None = None  # ours after rebuild(ops[:-1]), a fresh plain engine's
    redo: tuple[Reading, Reading] | None = None  # ours after rebuild(ops), ours before the undo
    line_admittance_s: dict[str, float] = field(default_factory=dict)  # each line's largest |Yprim| entry


def assert_voltages_and_losses(ours: Reading, theirs: Reading, what: str, voltage_pu: float = VOLTAGE_PU,
                               losses_rel: float = LOSSES_REL) -> None:
    assert ours.node_names == theirs.node_names, f"{what}: the node order differs"
    worst = np.argmax(np.abs(ours.vmag_pu - theirs.vmag_pu))
    np.testing.assert_allclose(ours.vmag_pu, theirs.vmag_pu, rtol=0, atol=voltage_pu,
                               err_msg=f"{what}: node voltages (worst {ours.node_names[worst]})")
    assert ours.losses_kw == pytest.approx(theirs.losses_kw, rel=losses_rel, abs=0), f"{what}: total losses"


def assert_currents(ours: Reading, theirs: Reading, what: str, rel: float = CURRENT_REL, atol: float = CURRENT_A,
                    lines: Iterable[str] | None = None) -> None:
    """Terminal-1 current magnitudes of every line (or of `lines`), each within `rel` or `atol`."""
    assert sorted(ours.line_currents) == sorted(theirs.line_currents), f"{what}: the lines differ"
    for name in theirs.line_currents if lines is None else lines:
        np.testing.assert_allclose(ours.line_currents[name], theirs.line_currents[name], rtol=rel, atol=atol,
                                   err_msg=f"{what}: line {name}'s terminal-1 currents")


def assert_same_state(ours: Reading, theirs: Reading, what: str, tolerance: float) -> None:
    assert_voltages_and_losses(ours, theirs, what, tolerance, tolerance)
    assert_currents(ours, theirs, what, tolerance, tolerance)


def neighbourhood_of(circuit: OpenDSSCircuit, bus: str) -> dict[str, Any]:
    return next(row for row in circuit.neighbourhoods() if bus in row["buses"])


def run_sequence(sequence: Sequence) -> Run:
    master = FEEDERS / sequence.deck
    circuit = OpenDSSCircuit(master, None)
    solution = circuit._engine.Solution
    settings = (solution.MaxIterations(), solution.MaxControlIterations(), solution.Convergence())
    assert settings[2] <= 1e-7 and solution.Mode() == 0  # what a 1e-6 pu agreement rests on
    direct = DirectEngine(master, settings, sequence.service_bus, sequence.delta_bus)
    run, ops = Run(sequence, line_admittance_s=direct.line_admittances()), []
    try:
        for position, step in enumerate(sequence.steps):
            if isinstance(step, Generator):
                change = circuit.add_generator(step.bus, step.phases, step.kw)
                name = direct.generator(step.bus, step.phases, step.kw)
                assert change["generator"] == name and change["kw"] == step.kw
                updated = any(isinstance(s, Generator) and (s.bus, s.phases) == (step.bus, step.phases)
                              for s in sequence.steps[:position])
                assert change["updated"] is updated
                if step.bus == sequence.service_bus:  # across both hot legs at 240 V
                    assert change["nodes"] == [1, 2] and change["conn"] == "delta"
                    assert change["kv"] == pytest.approx(2 * 0.208 / math.sqrt(3), rel=1e-12)
                elif step.bus == sequence.delta_bus:  # phase to phase, rated line to line (480 V)
                    assert change["conn"] == "delta" and change["kv"] == pytest.approx(0.48, rel=1e-12)
                    assert change["nodes"] == ([1, 2, 3] if step.phases == 3 else [1, 2])
                else:
                    assert change["conn"] == "wye"
                op = {"op": "add_generator", "bus_name": step.bus, "phases": step.phases, "kw": step.kw}
                what = f"{'update' if updated else 'add'} {step.phases}-phase {name} {step.kw:g} kW"
            elif isinstance(step, Scale):
                row = neighbourhood_of(circuit, step.bus)
                change = circuit.scale_neighbourhood_loads(row["id"], step.factor)
                assert change["loads_changed"] == row["loads"] and row["loads"]
                direct.scale(row["id"], row["loads"], step.factor)
                op = {"op": "modify_load_neighbourhood", "neighbourhood": row["id"], "factor": step.factor}
                what = f"scale neighbourhood {row['id']} ({len(row['loads'])} loads) x{step.factor:g}"
            else:
                name = direct.connection(step.bus, step.phases)[0]
                change = circuit.remove_generator(name)
                direct.remove(name)
                op = {"op": "remove_generator", "name": name}
                what = f"remove {name}"
            direct.solve()
            ops.append((op, step))
            run.steps.append((what, our_reading(change.snapshot), direct.read()))

        before_undo = our_reading(circuit.snapshot)
        circuit.rebuild([op for op, _ in ops[:-1]])
        fresh = DirectEngine(master, settings, sequence.service_bus, sequence.delta_bus)
        try:
            replay_directly(fresh, circuit, [step for _, step in ops[:-1]])
            run.undo = (our_reading(circuit.snapshot), fresh.read())
        finally:
            fresh.close()
        circuit.rebuild([op for op, _ in ops])
        run.redo = (our_reading(circuit.snapshot), before_undo)
    finally:
        direct.close()
        circuit.close()
    return run


def replay_directly(engine: DirectEngine, circuit: OpenDSSCircuit, steps: list[Step]) -> None:
    """The steps typed into a plain engine, a solve after each (as the user first typed them)."""
    for step in steps:
        if isinstance(step, Generator):
            engine.generator(step.bus, step.phases, step.kw)
        elif isinstance(step, Scale):
            row = neighbourhood_of(circuit, step.bus)
            engine.scale(row["id"], row["loads"], step.factor)
        else:
            engine.remove(engine.connection(step.bus, step.phases)[0])
        engine.solve()


@pytest.fixture(scope="module", params=SEQUENCES)
def run(request: pytest.FixtureRequest) -> Run:
    return run_sequence(request.param)


def compared(run: Run) -> list[tuple[str, Reading, Reading]]:
    """Every state compared with a plain engine: each step's, and the undo's against a fresh engine."""
    assert len(run.steps) == len(run.sequence.steps) and run.undo is not None
    return [(f"{run.sequence.deck} step {position} ({what})", ours, theirs)
            for position, (what, ours, theirs) in enumerate(run.steps)] + \
        [(f"{run.sequence.deck} rebuild(ops[:-1])", *run.undo)]


def test_each_changes_node_voltages_and_losses_equal_opendss_driven_directly(run: Run) -> None:
    for what, ours, theirs in compared(run):
        assert_voltages_and_losses(ours, theirs, what)


def test_each_changes_line_currents_equal_opendss_driven_directly(run: Run, request: pytest.FixtureRequest
                                                                   ) -> None:
    if run.sequence.currents_xfail:
        request.applymarker(pytest.mark.xfail(strict=True, reason=run.sequence.currents_xfail))
    for what, ours, theirs in compared(run):
        assert_currents(ours, theirs, what)


def test_line_currents_differ_beyond_1e_6_a_only_where_a_line_is_too_stiff_to_resolve_them(run: Run) -> None:
    """Every line of |Yprim| up to STIFF_LINE_S within rel 1e-6 or 1e-6 A; the stiffer ones (ckt5's busbars, IEEE
    13's switch) within STIFF_CURRENT_A: see CKT5_BUSBARS."""
    stiff = {name for name, y in run.line_admittance_s.items() if y > STIFF_LINE_S}
    for what, ours, theirs in compared(run):
        assert_currents(ours, theirs, what, lines=[name for name in theirs.line_currents if name not in stiff])
        assert_currents(ours, theirs, what, atol=STIFF_CURRENT_A, lines=sorted(stiff))


def test_an_undo_equals_a_fresh_engine_given_the_changes_before_the_last(run: Run) -> None:
    assert run.undo is not None
    ours, fresh = run.undo
    assert_voltages_and_losses(ours, fresh, f"{run.sequence.deck} rebuild(ops[:-1])")  # its currents: above
    assert_same_state(ours, run.steps[-2][1], f"{run.sequence.deck} rebuild(ops[:-1]) against the state it "
                      f"undid to", REBUILD_PU)


def test_a_rebuild_of_every_op_equals_the_state_before_the_undo(run: Run) -> None:
    assert run.redo is not None
    ours, before = run.redo
    assert_same_state(ours, before, f"{run.sequence.deck} rebuild(ops)", REBUILD_PU)


@pytest.mark.parametrize("run", [p for p in SEQUENCES if p.values[0].delta_bus], indirect=True,
                         ids=[p.id for p in SEQUENCES if p.values[0].delta_bus])
def test_generators_on_a_bus_with_no_ground_keep_its_line_to_ground_voltages_sane(run: Run) -> None:
    """Phase to phase on 610, every line-to-ground voltage there stays within 0.95-1.05 pu after each step (a
    grounded wye there answers 0.27 and 1.51 pu: docs/feeder.md). Only the sequences with such a bus."""
    for what, ours, _ in compared(run):
        at_bus = [v for name, v in zip(ours.node_names, ours.vmag_pu) if name.split(".")[0] == run.sequence.delta_bus]
        assert len(at_bus) == 3 and all(0.95 < v < 1.05 for v in at_bus), (what, at_bus)
