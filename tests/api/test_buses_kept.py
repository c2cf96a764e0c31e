"""GET /buses' JSON is kept between changes (engine.circuit.OpenDSSCircuit.buses_json) and still follows every change
that moves a row: a generator added, removed, a reset; the rows are those of the engine's buses()."""

from __future__ import annotations

import orjson


def generators_on(client) -> dict[str, list[str]]:
    return {bus["name"]: bus["generators"] for bus in client.get("/buses").json["buses"] if bus["generators"]}


def test_buses_follow_generators_added_removed_and_reset(client):
    first = client.get("/buses").data
    assert client.post("/modify_load_neighbourhood", json={"neighbourhood": 1, "factor": 1.05}).status_code == 200
    assert client.get("/buses").data == first  # a load change moves no row
    assert client.post("/add_generator", json={"bus_name": "16", "phases": 1, "kw": 50}).status_code == 200
    assert generators_on(client) == {"16": ["gen_16_3"]}
    assert client.post("/add_generator", json={"bus_name": "67", "phases": 3, "kw": 80}).status_code == 200
    assert generators_on(client) == {"16": ["gen_16_3"], "67": ["gen_67_123"]}
    assert client.delete("/generators/gen_16_3").status_code == 200
    assert generators_on(client) == {"67": ["gen_67_123"]}
    assert client.post("/reset", json={}).status_code == 200
    assert client.get("/buses").data == first


def test_buses_json_is_the_rows_of_buses(client, base_circuit):
    rows = client.get("/buses").json["buses"]
    assert rows == orjson.loads(base_circuit.buses_json()) == base_circuit.buses()
