"""Studies' trial loads (issue 30, `engine.trial_loads`) against OpenDSS driven directly.

The decks: IEEE 13 from `../shared/reference/feeders/` with what the public decks lack added in one small master
(as tests/engine/test_generator_sites.py does): a delta-delta 480 V bus `d480` with no ground reference and a
centre-tapped 120/240 V service `svc` with a drop to `house`; and our IEEE 123 deck (610: XFM1's ungrounded 480 V
secondary).

What is checked, each trial against a plain opendssdirect engine given the same load typed as a user types it
(`New Load … model=1 pf=… vminpu=0.5 vmaxpu=1.5 status=fixed`, solved with the regulators acting, then disabled,
the taps put back and solved again):
- the trial's connection is the trial generator's (3-phase where the bus has A, B, C, delta where ungrounded; else
  the first phase, phase to phase where ungrounded, across both legs at 240 V on a service);
- node voltages equal (1e-6 pu), line and transformer loadings and substation power equal (relative 1e-6);
- the typed load draws its kW and kvar (kW x tan(acos pf)) exactly, down to below 0.95 pu: constant power where
  the study judges (OpenDSS's default vminpu=0.95 would turn it into an impedance there);
- the circuit is back in its state after any number of trials: a change afterwards equals a fresh engine given
  the same change (1e-9 pu), the deck's loads are still its loads (set-points, shapes);
- a bad request names its field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect
import pytest

from engine.circuit import OpenDSSCircuit
from engine.errors import SimulationError
from engine.trial_loads import TRIAL_LOAD_PREFIX
from support.bare_feeder import SITES_DECK_TEXT, MASTER_FILE, put_taps, read_taps

VOLTAGE_PU = 1e-6
RELATIVE = 1e-6
REBUILD_PU = 1e-9
LOAD = "model=1 vminpu=0.5 vmaxpu=1.5 status=fixed"  # the trial load (docs/studies.md)
SITES_DECK = SITES_DECK_TEXT  # IEEE 13 with a delta-delta 480 V bus and a split-phase service


def values(batch_property: Any) -> Any:
    return batch_property() if callable(batch_property) else batch_property


class Direct:
    """A plain opendssdirect engine on a deck, given loads as OpenDSS commands; a trial is undone as a dry run is."""

    def __init__(self, master: Path, tolerance: float) -> None:
        dss = self.dss = opendssdirect.NewContext()
        dss.Basic.AllowChangeDir(False)
        dss.Text.Command(f"Compile [{master}]")
        dss.Text.Command(f"Set Mode=Snapshot MaxIterations=1000 MaxControlIter=100 Tolerance={tolerance!r}")
        dss.Text.Command("Solve")
        assert dss.Solution.Converged()
        self.batch = dss.to_altdss()
        self.made = 0
        self.controls = []
        for name in dss.RegControls.AllNames() if dss.RegControls.Count() else []:
            dss.RegControls.Name(name)
            self.controls.append((dss.RegControls.Transformer(), dss.RegControls.Winding()))

    def kv_base(self, bus: str) -> float:
        self.dss.Circuit.SetActiveBus(bus)
        return self.dss.Bus.kVBase()

    def taps(self) -> list[float]:
        return read_taps(self.dss, self.controls)

    def set_taps(self, taps: list[float]) -> None:
        put_taps(self.dss, self.controls, taps)

    def trial(self, loads: list[tuple[str, list[int], float, str, float, float]]) -> dict[str, Any]:
        """Loads (bus, nodes, kV, conn, kW, pf) typed anew, solved, read; then disabled, taps back, solved."""
        taps, names = self.taps(), []
        for bus, nodes, kv, conn, kw, pf in loads:
            name = f"typed_{self.made}"
            self.made += 1
            phases = 3 if len(nodes) == 3 else 1
            self.dss.Text.Command(f"New Load.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                                  f"conn={conn} kv={kv:.6f} kw={kw!r} pf={pf!r} {LOAD}")
            names.append(name)
        self.dss.Text.Command("Solve")
        assert self.dss.Solution.Converged()
        drawn = []
        for name in names:
            self.dss.Circuit.SetActiveElement(f"Load.{name}")
            drawn.append(complex(*self.dss.CktElement.TotalPowers()[:2]))
        reading = {"vmag_pu": np.asarray(self.dss.Circuit.AllBusMagPu()), "drawn": drawn,
                   "source_kw": -self.dss.Circuit.TotalPower()[0], "node_names": list(self.dss.Circuit.AllNodeNames())}
        for name in names:
            self.dss.Text.Command(f"Disable Load.{name}")
        self.set_taps(taps)
        self.dss.Text.Command("Solve")
        return reading

    def close(self) -> None:
        self.dss.Text.Command("Clear")


@pytest.fixture(scope="module")
def sites_deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    master = tmp_path_factory.mktemp("decks") / "sites.dss"
    master.write_text(SITES_DECK)
    return master


def expected(direct: Direct, bus: str, phases: int) -> tuple[list[int], float, str]:
    """The issue's connection, written from the docs: (nodes, kV, conn)."""
    base = direct.kv_base(bus)
    if bus in ("d480", "610"):
        return ([1, 2, 3], base * math.sqrt(3), "delta") if phases == 3 else ([1, 2], base * math.sqrt(3), "delta")
    if bus in ("svc", "house"):
        return [1, 2], 2 * base, "delta"
    direct.dss.Circuit.SetActiveBus(bus)
    first = sorted(direct.dss.Bus.Nodes())[0]
    return ([1, 2, 3], base * math.sqrt(3), "wye") if phases == 3 else ([first], base, "wye")


def node_names(circuit: OpenDSSCircuit) -> list[str]:
    layout = circuit.snapshot.layout
    return [f"{b}.{n}" for b, n in zip(layout.node_bus, layout.node_number)]


def check_trials(circuit: OpenDSSCircuit, direct: Direct, trials: list[list[tuple[str, int, float, float]]]) -> None:
    """Each trial (loads as (bus, phases, kW, pf)) equals the direct engine given the same loads typed by hand."""
    assert node_names(circuit) == [n.lower() for n in direct.dss.Circuit.AllNodeNames()]
    for loads in trials:
        connected, reading = circuit.preview_load_limits(
            [{"bus": bus, "phases": phases, "kw": kw, "pf": pf} for bus, phases, kw, pf in loads])
        typed = [(bus, *expected(direct, bus, phases), kw, pf) for bus, phases, kw, pf in loads]
        assert [(c["bus"], c["nodes"], c["conn"]) for c in connected] == [(t[0], t[1], t[3]) for t in typed]
        assert [c["kv"] for c in connected] == pytest.approx([t[2] for t in typed], rel=1e-12)
        theirs = direct.trial(typed)
        worst = int(np.argmax(np.abs(reading["vmag_pu"] - theirs["vmag_pu"])))
        np.testing.assert_allclose(reading["vmag_pu"], theirs["vmag_pu"], rtol=0, atol=VOLTAGE_PU,
                                   err_msg=f"{loads}: voltages (worst {theirs['node_names'][worst]})")
        assert reading["source_kw"] == pytest.approx(theirs["source_kw"], rel=RELATIVE)
        for (_, _, kw, pf), drawn in zip(loads, theirs["drawn"]):  # constant power, as typed
            expected_kvar = kw * math.tan(math.acos(pf))
            assert (drawn.real, drawn.imag) == pytest.approx((kw, expected_kvar), rel=1e-6, abs=1e-6 * kw)


def test_trial_loads_connect_as_the_system_is_and_equal_opendss_driven_directly(sites_deck: Path) -> None:
    circuit = OpenDSSCircuit(sites_deck, None)
    direct = Direct(sites_deck, circuit._engine.Solution.Convergence())
    try:
        check_trials(circuit, direct, [
            [("671", 3, 400.0, 0.95)], [("652", 1, 150.0, 0.9)], [("d480", 3, 60.0, 0.95)], [("d480", 1, 20.0, 1.0)],
            [("svc", 1, 7.2, 0.95)], [("house", 1, 9.6, 0.95)],
            [("671", 3, 300.0, 0.95), ("611", 1, 80.0, 0.95), ("house", 1, 7.2, 0.95), ("d480", 3, 30.0, 0.95)],
            [("675", 3, 2500.0, 0.95)],  # pulls 675 below 0.95 pu: still constant power
            [("671", 3, 500.0, 0.95)],  # the same connection again: its element reused at a new power
        ])
    finally:
        direct.close()
        circuit.close()


def test_trial_loads_on_our_ieee123_deck_equal_opendss_driven_directly() -> None:
    circuit = OpenDSSCircuit()
    direct = Direct(MASTER_FILE, circuit._engine.Solution.Convergence())
    try:
        check_trials(circuit, direct, [[("610", 3, 50.0, 0.95)], [("610", 1, 20.0, 0.95)], [("67", 3, 800.0, 0.95)],
                                       [("114", 1, 120.0, 0.9)], [("67", 3, 300.0, 1.0), ("114", 1, 60.0, 0.95)]])
    finally:
        direct.close()
        circuit.close()


def test_the_circuit_is_back_in_its_state_after_trials(sites_deck: Path) -> None:
    """After trials (one of them a power flow that fails and is rolled back), a change equals a fresh engine's."""
    tried, fresh = OpenDSSCircuit(sites_deck, None), OpenDSSCircuit(sites_deck, None)
    try:
        tried.apply({"op": "add_generator", "bus_name": "675", "phases": 3, "kw": 200.0})
        for kw in (100.0, 1000.0, 3000.0):
            tried.preview_load_limits([{"bus": "671", "phases": 3, "kw": kw, "pf": 0.95},
                                       {"bus": "house", "kw": kw / 100, "pf": 0.95}])
        with pytest.raises(SimulationError, match="did not converge"):  # far beyond the service: rolled back
            tried.preview_load_limits([{"bus": "house", "kw": 500.0, "pf": 0.95}])
        assert tried.trial_loads() == 2  # one element per connection, reused
        for circuit in (tried, fresh):
            if circuit is fresh:
                circuit.apply({"op": "add_generator", "bus_name": "675", "phases": 3, "kw": 200.0})
            circuit.apply({"op": "modify_load_neighbourhood", "neighbourhood": circuit.load_neighbourhoods()[0] or 0,
                           "factor": 1.5})
            circuit.apply({"op": "add_generator", "bus_name": "652", "phases": 1, "kw": 50.0})
        np.testing.assert_allclose(tried.snapshot.arrays["vmag_pu"], fresh.snapshot.arrays["vmag_pu"], rtol=0,
                                   atol=REBUILD_PU)
        assert tried.load_setpoints_kw() == pytest.approx(fresh.load_setpoints_kw(), rel=1e-12)
        assert tried.load_shapes()["loads"] == fresh.load_shapes()["loads"]
        assert tried.results()["power_summary"]["total_load_kW"] == \
            pytest.approx(fresh.results()["power_summary"]["total_load_kW"], rel=1e-9)
        tried.rebuild([])  # a rebuild compiles anew: no trial loads left
        assert tried.trial_loads() == 0
    finally:
        tried.close()
        fresh.close()


@pytest.mark.parametrize("loads,field", [
    ([], "loads"),
    ([{"bus": "nowhere", "kw": 1.0}], "loads[0].bus"),
    ([{"bus": "671", "phases": 2, "kw": 1.0}], "loads[0].phases"),
    ([{"bus": "671", "kw": -1.0}], "loads[0].kw"),
    ([{"bus": "671", "kw": 1.0}, {"bus": "671", "kw": 1.0, "pf": 0.3}], "loads[1].pf"),
    ([{"bus": "671", "kw": True}], "loads[0].kw"),
    ([{"bus": "652", "nodes": [2], "kw": 1.0}], "loads[0].nodes"),
    ([{"bus": "671", "nodes": [1], "conn": "delta", "kw": 1.0}], "loads[0].conn"),
    (["671"], "loads[0]"),
])
def test_a_bad_request_names_its_field(sites_deck: Path, loads: list[Any], field: str) -> None:
    circuit = OpenDSSCircuit(sites_deck, None)
    try:
        with pytest.raises(SimulationError) as refused:
            circuit.preview_load_limits(loads)
        assert refused.value.field == field and str(refused.value).startswith(f"{field}:")
        assert circuit.trial_loads() == 0
    finally:
        circuit.close()


def test_explicit_nodes_connect_where_a_customer_is(sites_deck: Path) -> None:
    """A customer's own connection given as nodes (the EV study's chargers): the service's two legs at 240 V, a
    phase-to-phase pair at line-to-line kV, one node to neutral."""
    circuit = OpenDSSCircuit(sites_deck, None)
    direct = Direct(sites_deck, circuit._engine.Solution.Convergence())
    try:
        connected, reading = circuit.preview_load_limits([
            {"bus": "house", "nodes": [1, 2], "kw": 7.2, "pf": 0.95},
            {"bus": "671", "nodes": [1, 2], "kw": 50.0, "pf": 0.95},
            {"bus": "652", "nodes": [1], "kw": 30.0, "pf": 0.9}])
        assert [(c["phases"], c["nodes"], c["conn"]) for c in connected] == \
            [(1, [1, 2], "delta"), (1, [1, 2], "delta"), (1, [1], "wye")]
        assert [c["kv"] for c in connected] == pytest.approx(
            [2 * direct.kv_base("house"), math.sqrt(3) * direct.kv_base("671"), direct.kv_base("652")], rel=1e-12)
        theirs = direct.trial([(c["bus"], c["nodes"], c["kv"], c["conn"], c["kW"], c["pf"]) for c in connected])
        np.testing.assert_allclose(reading["vmag_pu"], theirs["vmag_pu"], rtol=0, atol=VOLTAGE_PU)
        assert all(name.startswith(TRIAL_LOAD_PREFIX) for name in
                   list(circuit._batch.Load.Name)[len(circuit.load_setpoints_kw()):])
    finally:
        direct.close()
        circuit.close()
