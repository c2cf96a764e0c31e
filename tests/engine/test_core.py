"""OpenDSSCircuit: changes do what they say, read back from the engine through its own per-element calls."""

from __future__ import annotations

import json
import math

import pytest

from engine.solver import Solver
from simulation_core import (DEFAULT_NEIGHBOURHOOD_FILE, NotConvergedError, NotFoundError, OpenDSSCircuit,
                             SimulationError)


def engine_generator_kw(circuit: OpenDSSCircuit, name: str) -> float:
    """Power delivered by one generator, asked of the engine element by element (not our batch path)."""
    engine = circuit._engine
    engine.Circuit.SetActiveElement(f"Generator.{name}")
    return -engine.CktElement.TotalPowers()[0]


def engine_load_setpoints(circuit: OpenDSSCircuit) -> dict[str, tuple[float, float]]:
    engine = circuit._engine
    result = {}
    for name in engine.Loads.AllNames():
        engine.Loads.Name(name)
        result[name] = (engine.Loads.kW(), engine.Loads.kvar())
    return result


def test_every_load_is_in_exactly_one_neighbourhood(base_circuit):
    neighbourhoods = json.loads(DEFAULT_NEIGHBOURHOOD_FILE.read_text())["neighbourhoods"]
    assert len(neighbourhoods) == 14
    membership = {}
    for nb, buses in neighbourhoods.items():
        for bus in buses:
            assert bus not in membership, f"bus {bus} is in neighbourhoods {membership[bus]} and {nb}"
            membership[bus] = nb
    engine = base_circuit._engine
    load_buses = {}
    for name in engine.Loads.AllNames():
        engine.Circuit.SetActiveElement(f"Load.{name}")
        load_buses[name] = engine.CktElement.BusNames()[0].split(".")[0]
    assert len(load_buses) == 91
    orphans = [load for load, bus in load_buses.items() if bus not in membership]
    assert orphans == []
    assert membership["94"] == "10" and membership["197"] == "13"
    assert set(membership) == set(engine.Circuit.AllBusNames())


@pytest.mark.parametrize("bus,phases,phase,kw,nodes", [
    ("16", 1, None, 200.0, [3]),
    ("1", 1, None, 150.0, [1]),
    ("1", 1, 2, 75.0, [2]),
    ("67", 3, None, 500.0, [1, 2, 3]),
    ("13", 3, None, 1200.0, [1, 2, 3]),
])
def test_generator_delivers_requested_kw(circuit, bus, phases, phase, kw, nodes):
    action = circuit.add_generator(bus, phases, kw, phase=phase)
    assert action["nodes"] == nodes and action["created"]
    delivered = engine_generator_kw(circuit, action["generator"])
    assert delivered == pytest.approx(kw, rel=1e-3)
    rows = [r for r in circuit.results()["bus_details"] if r["Bus"] == bus]
    assert sum(r["Gen_kW"] for r in rows) == pytest.approx(delivered, rel=1e-9)
    assert circuit.results()["power_summary"]["total_generation_kW"] == pytest.approx(delivered, rel=1e-9)


@pytest.mark.parametrize("bus,phases,kv", [("16", 1, 4.16 / math.sqrt(3)), ("67", 3, 4.16)])
def test_generator_rated_kv_matches_connection(circuit, bus, phases, kv):
    action = circuit.add_generator(bus, phases, 100.0)
    circuit._engine.Generators.Name(action["generator"])
    assert circuit._engine.Generators.kV() == pytest.approx(kv, rel=1e-3)
    assert circuit._engine.Generators.PF() == pytest.approx(1.0)


def test_second_call_updates_the_same_generator(circuit):
    first = circuit.add_generator("16", 1, 200.0)
    second = circuit.add_generator("16", 1, 350.0)
    assert first["generator"] == second["generator"]
    assert (first["created"], second["created"], second["updated"]) == (True, False, True)
    assert circuit._engine.Generators.Count() == 1
    assert engine_generator_kw(circuit, second["generator"]) == pytest.approx(350.0, rel=1e-3)
    assert circuit.results()["power_summary"]["total_generation_kW"] == pytest.approx(350.0, rel=1e-3)


def test_three_phase_generator_needs_three_phase_bus(circuit):
    with pytest.raises(SimulationError, match="phases: bus 16 has phases \\[3\\]"):
        circuit.add_generator("16", 3, 100.0)


def test_phase_must_exist_at_bus(circuit):
    with pytest.raises(SimulationError, match="phase: bus 16 has phases \\[3\\], not 1"):
        circuit.add_generator("16", 1, 100.0, phase=1)


@pytest.mark.parametrize("kw", [-1.0, math.nan, math.inf, 1e9, True, "100"])
def test_bad_kw_is_refused_before_the_engine(circuit, kw):
    before = circuit.results()
    with pytest.raises(SimulationError, match="^kw: "):
        circuit.add_generator("16", 1, kw)
    assert circuit.results() is before and circuit.sequence == 0


@pytest.mark.parametrize("bus", ["nope", "16 kW=1e9", "16\nRedirect x", "", "300_open", "94_open"])
def test_unknown_or_unusable_bus_is_refused(circuit, bus):
    with pytest.raises(SimulationError, match="^bus_name: "):
        circuit.add_generator(bus, 1, 10.0)
    assert circuit._engine.Generators.Count() == 0


def test_scaling_compounds_and_touches_only_named_loads(circuit):
    base = engine_load_setpoints(circuit)
    first = circuit.scale_neighbourhood_loads(5, 0.8)
    second = circuit.scale_neighbourhood_loads(5, 0.8)
    assert second["cumulative_factor"] == pytest.approx(0.64)
    assert first["loads_changed"] == ["s19a", "s20a", "s22b", "s24c"]
    after = engine_load_setpoints(circuit)
    for name, (kw, kvar) in base.items():
        factor = 0.64 if name in first["loads_changed"] else 1.0
        assert after[name] == (pytest.approx(kw * factor, rel=1e-12), pytest.approx(kvar * factor, rel=1e-12)), name


def test_neighbourhood_scaling_changes_consumed_load(circuit):
    before = circuit.results()["power_summary"]["total_load_kW"]
    circuit.scale_neighbourhood_loads(13, 0.5)
    after = circuit.results()["power_summary"]["total_load_kW"]
    assert after < before - 100


@pytest.mark.parametrize("neighbourhood", [0, 15, -1, True, 5.0])
def test_unknown_neighbourhood(circuit, neighbourhood):
    with pytest.raises(NotFoundError, match="^neighbourhood: "):
        circuit.scale_neighbourhood_loads(neighbourhood, 0.5)


def test_cumulative_factor_is_bounded(circuit):
    circuit.scale_neighbourhood_loads(2, 10.0)  # earlier scalings compound: 90 so far
    circuit.scale_neighbourhood_loads(2, 9.0)
    with pytest.raises(SimulationError, match="cumulative factor of neighbourhood 2 would be 135"):
        circuit.scale_neighbourhood_loads(2, 1.5)


def test_diverging_change_is_rolled_back_exactly(circuit):
    circuit.add_generator("16", 1, 100.0)
    results_before = circuit.results()
    loads_before = engine_load_setpoints(circuit)
    sequence = circuit.sequence
    with pytest.raises(NotConvergedError, match="rolled back"):
        circuit.add_generator("13", 3, 100_000.0)
    assert circuit.results() is results_before and circuit.sequence == sequence
    assert engine_load_setpoints(circuit) == loads_before
    # the engine is back where it was: re-solving gives the same voltages 
    circuit._engine.Solution.Solve()
    fresh = circuit._read_snapshot().results
    for a, b in zip(fresh["bus_details"], results_before["bus_details"]):
        assert a["VMag_pu"] == pytest.approx(b["VMag_pu"], abs=1e-8)
    assert engine_generator_kw(circuit, "gen_16_3") == pytest.approx(100.0, rel=1e-3)
    # the rolled-back generator's slot is free: a sane request there now works
    action = circuit.add_generator("13", 3, 100.0)
    assert action["created"] and engine_generator_kw(circuit, "gen_13_123") == pytest.approx(100.0, rel=1e-3)


def test_diverging_load_scaling_is_rolled_back(circuit, monkeypatch):
    """Every load scaling within the limits converges (even neighbourhood 14 at 100 times, at 0.23 pu), so the
    solver is made to refuse the second one: its set-points and factor must come back."""
    before = engine_load_setpoints(circuit)
    results = circuit.results()
    circuit.scale_neighbourhood_loads(8, 10)
    scaled, scaled_results = engine_load_setpoints(circuit), circuit.results()
    solve = Solver.solve

    def refuse_once(solver: Solver, what: str):
        monkeypatch.setattr(Solver, "solve", solve)
        raise NotConvergedError(f"the power flow did not converge for {what}")

    monkeypatch.setattr(Solver, "solve", refuse_once)
    with pytest.raises(NotConvergedError, match="rolled back"):
        circuit.scale_neighbourhood_loads(8, 10)
    assert next(row for row in circuit.neighbourhoods() if row["id"] == 8)["cumulative_factor"] == 10
    assert engine_load_setpoints(circuit) == scaled
    assert circuit.results() is scaled_results
    circuit.reset()
    assert engine_load_setpoints(circuit) == before
    assert circuit.results()["bus_details"] == results["bus_details"]


def test_results_sections_and_row_counts(base_circuit):
    results = base_circuit.results()
    assert set(results) == {"power_summary", "voltage_profile", "bus_details", "line_flows", "losses", "violations"}
    assert len(results["bus_details"]) == 278
    assert len(results["line_flows"]) == 126
    assert sum(r["Switch"] for r in results["line_flows"]) == 8
    profile = results["voltage_profile"]
    magnitudes = [r["VMag_pu"] for r in results["bus_details"]]
    assert profile["min_voltage_pu"] == min(magnitudes) and profile["max_voltage_pu"] == max(magnitudes)
    assert profile["avg_voltage_pu"] == pytest.approx(sum(magnitudes) / len(magnitudes))


def test_line_flow_rows_match_engine(base_circuit):
    engine = base_circuit._engine
    for row in base_circuit.results()["line_flows"]:
        engine.Circuit.SetActiveElement(f"Line.{row['Line']}")
        powers = engine.CktElement.Powers()
        phases = row["Phases"]
        assert row["P_kW"] == pytest.approx(sum(powers[0:2 * phases:2]), rel=1e-9, abs=1e-9)
        assert row["Q_kVAR"] == pytest.approx(sum(powers[1:2 * phases:2]), rel=1e-9, abs=1e-9)
        currents = engine.CktElement.CurrentsMagAng()[0:2 * phases:2]
        assert row["I_A"] == pytest.approx(currents, rel=1e-9)
        assert row["Loading_pct"] == pytest.approx(100 * max(currents) / engine.CktElement.NormalAmps(), rel=1e-9)
        assert row["Losses_kW"] == pytest.approx(engine.CktElement.Losses()[0] / 1000, rel=1e-6, abs=1e-9)


def test_repeated_solve_changes_nothing(circuit):
    before = circuit.results()["bus_details"]
    circuit._engine.Solution.Solve()
    after = circuit._read_snapshot().results["bus_details"]
    assert max(abs(a["VMag_pu"] - b["VMag_pu"]) for a, b in zip(before, after)) < 1e-8


def test_reset_restores_base_case_exactly(circuit, base_circuit):
    circuit.add_generator("67", 3, 800.0)
    circuit.scale_neighbourhood_loads(3, 1.3)
    action = circuit.reset()
    assert action["sequence"] == 3
    assert circuit.results() == base_circuit.results()


def test_two_circuits_live_side_by_side():
    first, second = OpenDSSCircuit(), OpenDSSCircuit()
    first.add_generator("67", 3, 800.0)
    assert second.results()["power_summary"]["total_generation_kW"] == 0.0
    second._engine.Solution.Solve()
    assert second._read_snapshot().results["power_summary"]["total_generation_kW"] == 0.0


def test_remove_generator(circuit):
    circuit.add_generator("67", 3, 800.0)
    action = circuit.remove_generator("gen_67_123")
    assert action["type"] == "remove_generator"
    assert circuit.results()["power_summary"]["total_generation_kW"] == 0.0
    with pytest.raises(NotFoundError):
        circuit.remove_generator("gen_67_123")
