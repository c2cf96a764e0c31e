"""One server, several feeders: our IEEE 123-bus deck (the default) and the IEEE 13-node deck. Scenarios are made on
either, name their feeder, answer as OpenDSS driven directly on that feeder's deck, fork and export on their own
feeder, are imported onto the feeder their document names (409 naming both otherwise), share a bounded number of
engines across feeders, and study their own feeder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from api import create_app
from engine.feeder import load_feeder
from engine.settings import EngineSettings
from scenarios import feeder_sha256
from support.bare_feeder import solved_directly
from support.helpers import assert_error_shape, finished
from support.paths import SHARED_REFERENCE

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"


@pytest.fixture(scope="module")
def thirteen() -> Any:
    return load_feeder(IEEE13, "thirteen")


@pytest.fixture(scope="module")
def app(thirteen: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state = tmp_path_factory.mktemp("state") / "state.db"  # scenarios beyond the live limit rest in it
    application = create_app({"TESTING": True, "WORKERS": 1, "MAX_SCENARIOS": 8, "MAX_LIVE_SCENARIOS": 3,
                              "STATE_FILE": str(state),
                              "FEEDERS": [EngineSettings(), EngineSettings(feeder=thirteen)]})
    yield application
    application.extensions["jobs"].close()


@pytest.fixture()
def client(app: Any) -> Iterator[Any]:
    client = app.test_client()
    yield client
    for scenario in client.get("/scenarios").json["scenarios"]:
        if scenario["id"] != "default":
            client.delete(f"/scenarios/{scenario['id']}")


def direct_voltages(commands: list[str]) -> dict[tuple[str, int], float]:
    """IEEE 13 in a plain engine, solved as the server solves it, after these commands typed by hand."""
    dss = solved_directly(IEEE13, commands)
    return {(name.split(".")[0], int(name.split(".")[1])): v
            for name, v in zip(dss.Circuit.AllNodeNames(), dss.Circuit.AllBusMagPu())}


def voltages(results: dict[str, Any]) -> dict[tuple[str, int], float]:
    return {(row["Bus"], row["Node"]): row["VMag_pu"] for row in results["bus_details"]}


def create(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/scenarios", json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_get_feeders_lists_both_the_default_first(client: Any, thirteen: Any) -> None:
    feeders = client.get("/feeders").json["feeders"]
    assert [(f["name"], f["default"]) for f in feeders] == [("ieee123", True), ("thirteen", False)]
    assert feeders[1]["sha256"] == thirteen.sha256 and feeders[1]["buses"] == 16
    assert feeders[0]["buses"] > 100


def test_a_scenario_on_the_second_feeder_answers_as_opendss_on_that_deck(client: Any) -> None:
    made = create(client, name="t", feeder="thirteen")
    assert made["scenario"]["feeder"] == "thirteen"
    expected = direct_voltages([])
    assert voltages(made["results"]).keys() == expected.keys()
    assert max(abs(voltages(made["results"])[k] - v) for k, v in expected.items()) < 1e-6
    scenario = made["scenario"]["id"]
    answer = client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "675", "phases": 3, "kw": 400})
    assert answer.status_code == 200, answer.json
    expected = direct_voltages(["New Generator.by_hand bus1=675.1.2.3 phases=3 kv=4.160000 kw=400.0 pf=1 model=1 "
                                "vminpu=0.5 vmaxpu=1.5"])
    assert max(abs(voltages(answer.json["results"])[k] - v) for k, v in expected.items()) < 1e-6
    # the default scenario is untouched and still on our deck
    assert client.get("/scenarios/default").json["scenario"]["feeder"] == "ieee123"
    assert client.get("/buses/67").status_code == 200 and client.get(f"/scenarios/{scenario}/buses/67").status_code == 404


def test_every_scenario_names_its_feeder_and_forks_stay_on_it(client: Any) -> None:
    parent = create(client, feeder="thirteen")["scenario"]["id"]
    fork = create(client, **{"from": parent})["scenario"]
    assert fork["feeder"] == "thirteen" and fork["forked_from"] == parent
    assert create(client)["scenario"]["feeder"] == "ieee123"
    listed = {s["id"]: s["feeder"] for s in client.get("/scenarios").json["scenarios"]}
    assert listed[parent] == listed[fork["id"]] == "thirteen" and listed["default"] == "ieee123"
    before = client.get("/scenarios").json
    assert_error_shape(client.post("/scenarios", json={"from": parent, "feeder": "ieee123"}), 409, "feeder")
    assert_error_shape(client.post("/scenarios", json={"feeder": "nowhere"}), 404, "feeder")
    assert_error_shape(client.post("/scenarios", json={"feeder": 13}), 400, "feeder")
    assert client.get("/scenarios").json == before


def test_documents_carry_their_feeder_and_import_onto_it(client: Any, thirteen: Any) -> None:
    scenario = create(client, name="pv", feeder="thirteen")["scenario"]["id"]
    client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "680", "phases": 3, "kw": 300})
    document = client.get(f"/scenarios/{scenario}/export").json
    assert document["feeder"] == {"name": "thirteen", "sha256": thirteen.sha256}
    imported = client.post("/scenarios/import", json=document)
    assert imported.status_code == 201 and imported.json["scenario"]["feeder"] == "thirteen"
    assert client.get("/export").json["feeder"] == {"name": "ieee123", "sha256": feeder_sha256()}
    before = client.get("/scenarios").json
    other = {**document, "feeder": {"name": "thirteen", "sha256": "1" * 64}}
    refused = assert_error_shape(client.post("/scenarios/import", json=other), 409, "feeder.sha256")
    assert "feeder thirteen (deck sha256 111111111111…)" in refused["message"]
    assert f"thirteen (deck sha256 {thirteen.sha256[:12]}…)" in refused["message"] and "ieee123" in refused["message"]
    assert client.get("/scenarios").json == before


def test_engines_are_shared_across_feeders_within_the_live_limit(client: Any, app: Any) -> None:
    """Live limit 3 (the default scenario's engine included): scenarios on both feeders, used in turn, are
    evicted and rebuilt on engines of their own feeder, each answering as it did."""
    made = [create(client, feeder=name) for name in ("thirteen", "ieee123", "thirteen", "ieee123")]
    ids = [m["scenario"]["id"] for m in made]
    buses = {"thirteen": "675", "ieee123": "67"}
    for scenario, info in zip(ids, made):
        response = client.post(f"/scenarios/{scenario}/add_generator",
                               json={"bus_name": buses[info["scenario"]["feeder"]], "phases": 3, "kw": 100})
        assert response.status_code == 200, response.json
    assert app.extensions["scenarios"].live_count() <= 3
    for scenario, info in zip(ids, made):
        generators = client.get(f"/scenarios/{scenario}/generators").json["generators"]
        assert [g["bus"] for g in generators] == [buses[info["scenario"]["feeder"]]]
    assert app.extensions["scenarios"].live_count() <= 3


def test_a_study_runs_on_its_scenarios_feeder(client: Any) -> None:
    scenario = create(client, feeder="thirteen")["scenario"]["id"]
    response = client.post(f"/scenarios/{scenario}/studies/hosting_capacity?wait=60",
                           json={"buses": ["680"], "step_kw": 500, "max_kw": 1000})
    job = finished(client, response)
    assert job["status"] == "done", job
    assert [row["bus"] for row in job["result"]["buses"]] == ["680"]
    wrong = client.post(f"/scenarios/{scenario}/studies/hosting_capacity", json={"buses": ["67"]})
    assert_error_shape(wrong, 422, "buses[0]")


def test_a_second_feeder_that_does_not_compile_stops_the_app(tmp_path: Path) -> None:
    master = tmp_path / "broken.dss"
    master.write_text("New Circuit.broken\nNew Lod.oops bus1=sourcebus\n")
    from engine.errors import FeederError

    with pytest.raises(FeederError, match="broken"):
        create_app({"TESTING": True, "WORKERS": 1,
                    "FEEDERS": [EngineSettings(), EngineSettings(feeder=load_feeder(master))]})


def test_a_diff_compares_scenarios_of_one_feeder(client: Any) -> None:
    thirteen = create(client, feeder="thirteen")["scenario"]["id"]
    refused = assert_error_shape(client.get(f"/scenarios/{thirteen}/diff?against=default"), 409, "against")
    assert "feeder thirteen" in refused["message"] and "ieee123" in refused["message"]
    other = create(client, feeder="thirteen")["scenario"]["id"]
    client.post(f"/scenarios/{other}/add_generator", json={"bus_name": "675", "phases": 3, "kw": 300})
    diff = client.get(f"/scenarios/{other}/diff?against={thirteen}")
    assert diff.status_code == 200 and diff.json["against"] == thirteen
