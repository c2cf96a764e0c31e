"""No trap states: a change the grid can take is never refused because of the path that led there.

A stateful property test drives one circuit through random sequences of accepted changes (generators up to
10 MW on 1 or 3 phases at any bus that can host one, neighbourhood factors 0.2-3). From every state reached,
every probe change the base case accepts, and each generator present turned down to 100 kW, is tried as a dry
run (so the path goes on unchanged). Each must be accepted unless the grid it asks for cannot be solved from the
base case at all: the reference for that is a separate engine driven directly, which compiles the deck, is given
the resulting set-points (loads and generators) and solves once. Some states reached (18 MW on one phase of a
3.5 MW feeder, at 1.39 pu) cannot take a 300 kW probe from any start; those are genuine refusals, not traps.
A refused change must leave the state as it was.

The circuit is shared across examples to avoid a compile per example, but each example starts from a fresh
base case (`rebuild([])` recompiles the deck), so no state leaks from one example to the next.
"""

from __future__ import annotations

import numpy as np
import opendssdirect
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from simulation_core import DEFAULT_MASTER_FILE, NotConvergedError, OpenDSSCircuit

#: Probe changes, as ops; the module fixture checks that the base case accepts each.
PROBES = [
    {"op": "add_generator", "bus_name": "16", "phases": 1, "kw": 200.0},
    {"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500.0},
    {"op": "add_generator", "bus_name": "80", "phases": 1, "kw": 300.0},
    {"op": "add_generator", "bus_name": "300", "phases": 3, "kw": 1000.0},
    {"op": "modify_load_neighbourhood", "neighbourhood": 3, "factor": 1.2},
]

_circuit: OpenDSSCircuit | None = None


def shared_circuit() -> OpenDSSCircuit:
    global _circuit
    if _circuit is None:
        _circuit = OpenDSSCircuit()
    return _circuit


def generator_buses(circuit: OpenDSSCircuit) -> list[tuple[str, list[int]]]:
    """Every bus that can host a generator, with its phases."""
    refused = circuit.generator_refusals()
    return [(bus["name"], bus["nodes"]) for bus in circuit.buses() if bus["name"] not in refused]


def test_base_case_accepts_every_probe() -> None:
    circuit = shared_circuit()
    circuit.rebuild([])
    for probe in PROBES:
        assert circuit.apply(probe, dry_run=True).snapshot.results["power_summary"]["converged"], probe


def converges_from_base_case(circuit: OpenDSSCircuit, op: dict) -> bool:
    """Whether the grid `op` would leave converges in a fresh engine: the deck compiled, every load at its
    neighbourhood's cumulative factor and every generator at its set-point (after `op`), each connected as its row
    says (nodes, kV, wye or delta: 610 is an ungrounded delta bus), solved once. OpenDSS giving up there (its
    control iterations exceeded) is "does not converge" too: a refusal is then no trap."""
    factors = {nb["id"]: nb["cumulative_factor"] for nb in circuit.neighbourhoods()}
    def rated_kv(bus: str, nodes: tuple[int, ...], conn: str) -> float:
        """Line to line for 3-phase or phase to phase, line to neutral for 1-phase to neutral (as the API rates)."""
        return circuit.bus(bus)["kv_base_ln"] * (3 ** 0.5 if len(nodes) == 3 or conn == "delta" else 1.0)

    generators = {(g["bus"], tuple(g["nodes"])): (g["kw"], rated_kv(g["bus"], tuple(g["nodes"]), g["conn"]),
                                                  g["conn"]) for g in circuit.generators()}
    if op["op"] == "modify_load_neighbourhood":
        factors[op["neighbourhood"]] *= op["factor"]
    else:
        existing = [(g["bus"], tuple(g["nodes"])) for g in circuit.generators()
                    if g["bus"] == op["bus_name"] and g["phases"] == op["phases"]
                    and (op["phases"] == 3 or g["nodes"][0] == op.get("phase"))]
        if existing:  # a turn-down: the generator's own connection
            generators[existing[0]] = (op["kw"], *generators[existing[0]][1:])
        else:  # a probe: none is on an ungrounded bus, so to neutral (wye)
            bus = circuit.bus(op["bus_name"])
            nodes = (1, 2, 3) if op["phases"] == 3 else (op.get("phase") or bus["nodes"][0],)
            generators[(op["bus_name"], nodes)] = (op["kw"], rated_kv(op["bus_name"], nodes, "wye"), "wye")
    engine = opendssdirect.NewContext()
    engine.Text.Command(f"Compile [{DEFAULT_MASTER_FILE}]")
    for nb in circuit.neighbourhoods():
        for load in nb["loads"]:
            engine.Loads.Name(load)
            engine.Loads.kW(engine.Loads.kW() * factors[nb["id"]])
            engine.Loads.kvar(engine.Loads.kvar() * factors[nb["id"]])
    for i, ((bus, nodes), (kw, kv, conn)) in enumerate(generators.items()):
        delta = " conn=delta" if conn == "delta" and len(nodes) == 3 else ""
        phases = 3 if len(nodes) == 3 else 1
        engine.Text.Command(f"New Generator.g{i} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                            f"kv={kv} kw={kw} pf=1 model=1 vminpu=0.5 vmaxpu=1.5{delta}")
    try:
        engine.Solution.Solve()
    except opendssdirect.DSSException:
        return False
    return bool(engine.Solution.Converged()) and float(np.max(engine.Circuit.AllBusMagPu())) <= 2.0


class PathIndependence(RuleBasedStateMachine):
    """Random accepted changes; after each, every probe and every generator's turn-down must be accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.circuit = shared_circuit()
        self.buses = generator_buses(self.circuit)

    @initialize()
    def fresh_base_case(self) -> None:
        self.circuit.rebuild([])

    def _apply_or_check_unchanged(self, op: dict) -> None:
        before = self.circuit.snapshot
        taps_before = self.circuit.regulator_tap_steps()
        try:
            self.circuit.apply(op)
        except NotConvergedError:
            assert self.circuit.snapshot is before
            assert self.circuit.regulator_tap_steps() == taps_before
            again = self.circuit.checkpoint()  # the engine itself is back where it was: a re-solve agrees
            assert np.allclose(again.snapshot.arrays["vmag_pu"], before.arrays["vmag_pu"])

    @rule(data=st.data(), kw=st.floats(0.0, 10_000.0), three_phase=st.booleans())
    def add_generator(self, data: st.DataObject, kw: float, three_phase: bool) -> None:
        bus, nodes = data.draw(st.sampled_from(self.buses))
        phases = 3 if three_phase and {1, 2, 3} <= set(nodes) else 1
        phase = None if phases == 3 else data.draw(st.sampled_from(nodes))
        self._apply_or_check_unchanged({"op": "add_generator", "bus_name": bus, "phases": phases, "kw": kw,
                                        "phase": phase})

    @rule(neighbourhood=st.integers(1, 14), factor=st.floats(0.2, 3.0))
    def scale_neighbourhood(self, neighbourhood: int, factor: float) -> None:
        self._apply_or_check_unchanged({"op": "modify_load_neighbourhood", "neighbourhood": neighbourhood,
                                        "factor": factor})

    def _accepted_unless_impossible(self, op: dict, what: str) -> None:
        try:
            self.circuit.apply(op, dry_run=True)
        except NotConvergedError as error:
            if converges_from_base_case(self.circuit, op):
                pytest.fail(f"{what} refused after {self.circuit.generators()}, "
                            f"taps {self.circuit.regulator_tap_steps()}, though it converges from the base case: "
                            f"{error}")

    @invariant()
    def every_probe_is_accepted(self) -> None:
        for probe in PROBES:
            self._accepted_unless_impossible(probe, f"probe {probe}")

    @invariant()
    def every_generator_turns_down(self) -> None:
        for generator in self.circuit.generators():
            op = {"op": "add_generator", "bus_name": generator["bus"], "phases": generator["phases"], "kw": 100.0,
                  "phase": generator["nodes"][0] if generator["phases"] == 1 else None}
            self._accepted_unless_impossible(op, f"{generator['name']} at 100 kW")


PathIndependence.TestCase.settings = settings(
    max_examples=60, stateful_step_count=10, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow])
test_path_independence = pytest.mark.slow(PathIndependence.TestCase)
