"""Read endpoints, reset, delete, query options and violations (issue 3), through the Flask test client."""

from __future__ import annotations

import csv
import io
import math

import pytest

from simulation_core import EngineSettings, OpenDSSCircuit
from support.helpers import assert_error_shape


def test_health(client):
    body = client.get("/health").json
    assert body == {"status": "success", "ready": True, "converged": True, "sequence": 0, "buses": 132,
                    "generators": 0, "scenario": "default", "scenarios": 1, "live_scenarios": 1, "durable": False, "studies": {"executor": "local", "workers": body["studies"]["workers"]},
                    "hosts": []}
    assert body["studies"]["workers"] >= 1


def test_buses_have_coordinates_distance_and_neighbourhood(client, base_circuit):
    buses = client.get("/buses").json["buses"]
    assert len(buses) == 132
    by_name = {b["name"]: b for b in buses}
    assert by_name["150"]["distance_km"] == 0.0
    assert by_name["1"]["distance_km"] == pytest.approx(0.401 * 0.3048, rel=1e-6)  # Sw1 (1 ft) + L115 (400 ft)
    assert (by_name["450"]["x"], by_name["450"]["y"]) == (5450.0, 2100.0)
    assert by_name["94"]["neighbourhood"] == 10 and by_name["94"]["loads"] == ["s94a"]
    assert sum(len(b["loads"]) for b in buses) == 91
    assert by_name["16"]["nodes"] == [3]
    assert by_name["16"]["kv_base_ln"] == pytest.approx(4.16 / math.sqrt(3), rel=1e-4)


def test_one_bus_with_voltages_loads_generators_lines(client):
    client.post("/add_generator", json={"bus_name": "16", "phases": 1, "kw": 100})
    bus = client.get("/buses/16").json["bus"]
    assert [v["Node"] for v in bus["voltages"]] == [3]
    assert bus["loads"] == [{"name": "s16c", "kW": 40.0, "kVAR": 20.0}]
    assert bus["generators"][0]["name"] == "gen_16_3"
    assert bus["generators"][0]["delivered_kW"] == pytest.approx(100, rel=1e-3)
    assert [line["Line"] for line in bus["lines"]] == ["l16"]


def test_unknown_bus_suggests_close_names(client):
    body = assert_error_shape(client.get("/buses/15O"), 404, "name")
    assert "did you mean" in body["message"] and "GET /buses" in body["message"]


def test_bus_names_are_case_insensitive(client):
    assert client.get("/buses/150R").json["bus"]["name"] == "150r"


def test_lines_equal_line_flows(client):
    lines = client.get("/lines").json["lines"]
    assert lines == client.get("/state").json["results"]["line_flows"]
    assert len(lines) == 126


def test_neighbourhoods_track_cumulative_factor(client):
    client.post("/modify_load_neighbourhood", json={"neighbourhood": 5, "factor": 0.8})
    client.post("/modify_load_neighbourhood", json={"neighbourhood": 5, "factor": 0.5})
    rows = {n["id"]: n for n in client.get("/neighbourhoods").json["neighbourhoods"]}
    assert len(rows) == 14 and sum(len(n["loads"]) for n in rows.values()) == 91
    five = rows[5]
    assert five["cumulative_factor"] == pytest.approx(0.4)
    assert five["kW"] == pytest.approx(five["base_kW"] * 0.4) and five["kVAR"] == pytest.approx(five["base_kVAR"] * 0.4)
    assert sum(n["base_kW"] for n in rows.values()) == pytest.approx(3490.0)
    assert sum(n["base_kVAR"] for n in rows.values()) == pytest.approx(1920.0)


def test_generators_list_set_and_delivered(client):
    client.post("/add_generator", json={"bus_name": "67", "phases": 3, "kw": 500})
    client.post("/add_generator", json={"bus_name": "16", "phases": 1, "kw": 50})
    generators = {g["name"]: g for g in client.get("/generators").json["generators"]}
    assert set(generators) == {"gen_67_123", "gen_16_3"}
    assert generators["gen_67_123"]["delivered_kW"] == pytest.approx(500, rel=1e-3)
    assert generators["gen_67_123"]["nodes"] == [1, 2, 3]


def test_delete_generator_then_404(client):
    client.post("/add_generator", json={"bus_name": "67", "phases": 3, "kw": 500})
    response = client.delete("/generators/gen_67_123")
    assert response.status_code == 200
    assert response.json["results"]["power_summary"]["total_generation_kW"] == 0.0
    assert client.get("/generators").json["generators"] == []
    assert_error_shape(client.delete("/generators/gen_67_123"), 404, "name")
    assert_error_shape(client.delete("/generators/anything"), 404, "name")


def test_reset_restores_start_up_results(client):
    start = client.get("/state").json["results"]
    client.post("/add_generator", json={"bus_name": "67", "phases": 3, "kw": 900})
    client.post("/modify_load_neighbourhood", json={"neighbourhood": 3, "factor": 1.5})
    response = client.post("/reset", json={})
    assert response.status_code == 200 and response.json["action"] == {"type": "reset", "sequence": 3}
    assert response.json["results"] == start
    assert client.get("/state").json["results"] == start
    assert client.get("/generators").json["generators"] == []


def test_reset_needs_json(client):
    assert_error_shape(client.post("/reset"), 415)


def test_state_sections(client):
    body = client.get("/state?sections=power_summary,voltage_profile").json
    assert set(body["results"]) == {"power_summary", "voltage_profile"}
    assert_error_shape(client.get("/state?sections=power_summary,nope"), 400, "sections")
    assert_error_shape(client.get("/state?colour=blue"), 400, "colour")


@pytest.mark.parametrize("url,rows,first_column", [("/buses?format=csv", 132, "name"),
                                                   ("/lines?format=csv", 126, "Line"),
                                                   ("/state?format=csv", 278, "Bus")])
def test_csv_tables(client, url, rows, first_column):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert len(table) == rows and list(table[0])[0] == first_column


def test_csv_values_equal_json(client):
    table = list(csv.DictReader(io.StringIO(client.get("/state?format=csv").data.decode())))
    rows = client.get("/state").json["results"]["bus_details"]
    assert [float(r["VMag_pu"]) for r in table] == [r["VMag_pu"] for r in rows]


def test_thermal_violations_match_engine_percent_of_normal(base_circuit):
    engine = base_circuit._engine
    names = engine.PDElements.AllNames()
    pct = engine.PDElements.AllPctNorm(False)
    expected = {n for n, p in zip(names, pct) if p > 100.0 and not n.lower().startswith("capacitor")}
    reported = {v["element"] for v in base_circuit.results()["violations"]["thermal"]}
    assert {e.lower() for e in reported} == {e.lower() for e in expected}
    assert base_circuit.results()["power_summary"]["thermal_violations"] == len(reported)


def test_voltage_limits_are_configurable():
    circuit = OpenDSSCircuit(settings=EngineSettings.of((0.99, 1.03)))
    results = circuit.results()
    magnitudes = [r["VMag_pu"] for r in results["bus_details"]]
    expected = sum(1 for v in magnitudes if v < 0.99 or v > 1.03)
    assert expected > 0 and len(results["violations"]["voltage"]) == expected
    assert results["power_summary"]["voltage_violations"] == expected
    for violation in results["violations"]["voltage"]:
        assert violation["limit_pu"] == (0.99 if violation["kind"] == "undervoltage" else 1.03)


def test_reverse_power_is_reported(client):
    response = client.post("/add_generator", json={"bus_name": "13", "phases": 3, "kw": 5000})
    results = response.json["results"]
    assert results["power_summary"]["total_circuit_power_kW"] < 0
    assert results["power_summary"]["reverse_power"] is True
    assert results["violations"]["reverse_power"]["value_kW"] == results["power_summary"]["total_circuit_power_kW"]
    assert results["losses"]["percent_of_input"] is None


def test_overvoltage_from_a_large_generator(client):
    results = client.post("/add_generator", json={"bus_name": "114", "phases": 1, "kw": 1500}).json["results"]
    over = [v for v in results["violations"]["voltage"] if v["kind"] == "overvoltage"]
    assert over and all(v["value_pu"] > 1.05 for v in over)
    assert any(v["element"] == "Bus.114" for v in over)


def test_transformers_show_regulator_taps(client, base_circuit):
    rows = {t["name"]: t for t in client.get("/transformers").json["transformers"]}
    assert set(rows) == {"reg1a", "reg2a", "reg3a", "reg3c", "reg4a", "reg4b", "reg4c", "xfm1"}
    assert [rows[r]["tap"] for r in ["reg1a", "reg2a", "reg3a", "reg3c", "reg4a", "reg4b", "reg4c"]] == [6, 0, 2, 0, 8, 2, 5]
    assert (rows["xfm1"]["bus1"], rows["xfm1"]["bus2"], rows["xfm1"]["tap"]) == ("61s", "610", None)
    engine = base_circuit._engine
    engine.Circuit.SetActiveElement("Transformer.reg1a")
    expected = 100 * max(engine.CktElement.CurrentsMagAng()[0:6:2]) / engine.CktElement.NormalAmps()
    assert rows["reg1a"]["loading_pct"] == pytest.approx(expected, rel=1e-9)


def test_open_tie_stubs_are_placed_the_others_are_the_decks(client):
    """Our deck gives every bus coordinates but the open-tie stubs 94_open and 300_open: those are placed from their
    neighbours (`xy_source` "placed"), the others are the deck's."""
    buses = {b["name"]: b for b in client.get("/buses").json["buses"]}
    placed = {name for name, bus in buses.items() if bus["xy_source"] == "placed"}
    assert placed == {"94_open", "300_open"}
    assert all(isinstance(bus["x"], float) and isinstance(bus["y"], float) for bus in buses.values())
    assert buses["94"]["xy_source"] == "deck"


def test_changes_accept_sections(client):
    response = client.post("/add_generator?sections=power_summary", json={"bus_name": "16", "phases": 1, "kw": 100})
    assert set(response.json["results"]) == {"power_summary"}
    assert response.json["results"]["power_summary"]["total_generation_kW"] == pytest.approx(100, rel=1e-3)
    assert_error_shape(client.post("/reset?sections=everything", json={}), 400, "sections")
    assert client.get("/generators").json["generators"][0]["kw"] == 100.0  # the refused reset changed nothing


def test_each_change_carries_its_own_snapshot(circuit):
    first = circuit.add_generator("67", 3, 100.0)
    second = circuit.add_generator("67", 3, 900.0)
    assert (first.snapshot.sequence, second.snapshot.sequence) == (1, 2)
    assert first.snapshot.results["power_summary"]["total_generation_kW"] == pytest.approx(100, rel=1e-3)
    assert second.snapshot is circuit.snapshot
