"""Scenarios through the Flask app: isolation, fork, undo, dry runs, export/import, diff, ETags, idempotency keys.

References: a second engine driven through OpenDSSCircuit by hand (the same ops on a fresh circuit), the
scenario's own earlier answers, and the rules of RFC 9110 and the Idempotency-Key draft."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from api import create_app
from scenarios import feeder_sha256
from simulation_core import OpenDSSCircuit
from support.helpers import assert_error_shape

PV67 = {"bus_name": "67", "phases": 3, "kw": 500}
PV16 = {"bus_name": "16", "phases": 1, "kw": 200}
BUSIER5 = {"neighbourhood": 5, "factor": 1.3}


@pytest.fixture
def app():
    return create_app({"TESTING": True, "MAX_SCENARIOS": 6})


@pytest.fixture
def client(app):
    return app.test_client()


def new_scenario(client, **body) -> str:
    response = client.post("/scenarios", json=body)
    assert response.status_code == 201, response.json
    return response.json["scenario"]["id"]


def vmag(results: dict) -> np.ndarray:
    return np.array([row["VMag_pu"] for row in results["bus_details"]])


def state(client, scenario: str) -> dict:
    return client.get(f"/scenarios/{scenario}/state").json


# ---------------------------------------------------------------------------- the resource
def test_create_answers_201_with_location_and_base_results(client):
    response = client.post("/scenarios", json={"name": "pv at 67"})
    assert response.status_code == 201
    scenario = response.json["scenario"]
    assert response.headers["Location"] == f"/scenarios/{scenario['id']}"
    assert scenario["name"] == "pv at 67" and scenario["sequence"] == 0 and scenario["forked_from"] is None
    assert scenario["created_at"].endswith("Z")
    assert len(scenario["id"]) >= 16 and all(c.isalnum() or c in "-_" for c in scenario["id"])
    assert response.json["results"] == client.get("/state").json["results"]  # the base case, as default is


def test_ids_are_unguessable_and_distinct(client):
    ids = {new_scenario(client) for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) >= 16 for i in ids)  # 12 random bytes: 96 bits


def test_changes_to_one_scenario_never_show_in_another(client):
    a, b = new_scenario(client), new_scenario(client)
    before_default, before_b = client.get("/state").data, client.get(f"/scenarios/{b}/state").data
    assert client.post(f"/scenarios/{a}/add_generator", json=PV67).status_code == 200
    assert client.get("/state").data == before_default
    assert client.get(f"/scenarios/{b}/state").data == before_b
    assert state(client, a)["results"]["power_summary"]["total_generation_kW"] == pytest.approx(500, rel=1e-3)


def test_top_level_routes_act_on_default(client):
    client.post("/add_generator", json=PV16)
    assert client.get("/scenarios/default/state").data == client.get("/state").data
    assert client.get("/scenarios/default/generators").json == client.get("/generators").json
    assert client.get("/scenarios/default/changes").json["changes"][0]["action"]["generator"] == "gen_16_3"


def test_fork_starts_from_the_parents_current_state(client):
    parent = new_scenario(client, name="parent")
    client.post(f"/scenarios/{parent}/add_generator", json=PV67)
    client.post(f"/scenarios/{parent}/modify_load_neighbourhood", json=BUSIER5)
    child = new_scenario(client, name="child", **{"from": parent})
    assert state(client, child)["results"] == state(client, parent)["results"]
    described = client.get(f"/scenarios/{child}").json["scenario"]
    assert described["forked_from"] == parent and described["changes"] == 2
    client.post(f"/scenarios/{child}/reset", json={})
    assert state(client, parent)["results"]["power_summary"]["total_generation_kW"] > 400


def test_list_get_and_delete(client):
    scenario = new_scenario(client, name="gone soon")
    listed = {s["id"]: s for s in client.get("/scenarios").json["scenarios"]}
    assert set(listed) >= {"default", scenario}
    assert listed[scenario]["changes"] == 0
    detail = client.get(f"/scenarios/{scenario}").json["scenario"]
    assert detail["power_summary"] == state(client, scenario)["results"]["power_summary"]
    assert client.delete(f"/scenarios/{scenario}").json["deleted"]["id"] == scenario
    assert_error_shape(client.get(f"/scenarios/{scenario}/state"), 404, "scenario")
    assert scenario not in {s["id"] for s in client.get("/scenarios").json["scenarios"]}


def test_default_cannot_be_deleted(client):
    assert_error_shape(client.delete("/scenarios/default"), 409, "scenario")


@pytest.mark.parametrize("body,field", [
    ({"name": ""}, "name"), ({"name": "x" * 65}, "name"), ({"name": "tab\there"}, "name"), ({"name": 5}, "name"),
    ({"from": 5}, "from"), ({"nam": "typo"}, "nam"),
])
def test_bad_create_bodies_are_400_and_create_nothing(client, body, field):
    before = client.get("/scenarios").json
    assert_error_shape(client.post("/scenarios", json=body), 400, field)
    assert client.get("/scenarios").json == before


def test_fork_of_an_unknown_scenario_is_404(client):
    assert_error_shape(client.post("/scenarios", json={"from": "nowhere"}), 404, "scenario")


def test_the_scenario_limit_says_what_it_is_and_how_to_raise_it(client):
    for _ in range(5):  # MAX_SCENARIOS 6, default included
        new_scenario(client)
    body = assert_error_shape(client.post("/scenarios", json={}), 429, "scenarios")
    assert "6" in body["message"] and "--max-scenarios" in body["message"]
    assert len(client.get("/scenarios").json["scenarios"]) == 6


# ---------------------------------------------------------------------------- journal and undo
def test_journal_lists_applied_changes_only(client):
    scenario = new_scenario(client)
    first = client.post(f"/scenarios/{scenario}/add_generator", json=PV67).json["action"]
    client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "nowhere", "phases": 1, "kw": 1})
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood?dry_run=true", json=BUSIER5)
    second = client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json=BUSIER5).json["action"]
    changes = client.get(f"/scenarios/{scenario}/changes").json["changes"]
    assert [c["action"] for c in changes] == [first, second]
    assert [c["sequence"] for c in changes] == [1, 2]
    assert all(c["at"].endswith("Z") and "T" in c["at"] for c in changes)


def test_undo_restores_the_earlier_answer_number_for_number(client):
    scenario = new_scenario(client)
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json={"neighbourhood": 12, "factor": 1.8})
    earlier = state(client, scenario)["results"]
    taps_before = client.get(f"/scenarios/{scenario}/transformers").json["transformers"]
    moved = client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 3000})
    assert client.get(f"/scenarios/{scenario}/transformers").json["transformers"] != taps_before  # taps moved
    assert moved.json["results"] != earlier
    undone = client.post(f"/scenarios/{scenario}/undo", json={})
    assert undone.status_code == 200
    assert undone.json["action"] == {"type": "undo", "sequence": 3, "undid": 2}
    assert undone.json["results"] == earlier  # every number, regulator taps' effect included
    assert client.get(f"/scenarios/{scenario}/transformers").json["transformers"] == taps_before
    assert client.get(f"/scenarios/{scenario}/generators").json["generators"] == []


def test_repeated_undo_walks_back_and_then_409(client):
    scenario = new_scenario(client)
    base = state(client, scenario)["results"]
    client.post(f"/scenarios/{scenario}/add_generator", json=PV67)
    after_one = state(client, scenario)["results"]
    client.post(f"/scenarios/{scenario}/reset", json={})
    assert client.post(f"/scenarios/{scenario}/undo", json={}).json["results"] == after_one  # undo a reset
    assert client.post(f"/scenarios/{scenario}/undo", json={}).json["results"] == base
    assert_error_shape(client.post(f"/scenarios/{scenario}/undo", json={}), 409, "scenario")
    assert state(client, scenario)["sequence"] == 4  # undo moves the sequence on; the refused one did not


def test_undo_etag_never_comes_back(client):
    scenario = new_scenario(client)
    first = client.get(f"/scenarios/{scenario}/state").headers["ETag"]
    client.post(f"/scenarios/{scenario}/add_generator", json=PV67)
    undone = client.post(f"/scenarios/{scenario}/undo", json={})
    assert undone.headers["ETag"] not in (first, None)
    assert client.get(f"/scenarios/{scenario}/state").headers["ETag"] == undone.headers["ETag"]


# ---------------------------------------------------------------------------- dry runs
DRY_RUNS = [
    ("post", "add_generator", PV67, 200),
    ("post", "modify_load_neighbourhood", BUSIER5, 200),
    ("delete", "generators/gen_16_3", None, 200),
    ("post", "reset", {}, 200),
    ("post", "undo", {}, 200),
]


@pytest.mark.parametrize("method,route,body,status", DRY_RUNS)
def test_dry_run_answers_as_the_change_would_and_changes_nothing(client, method, route, body, status):
    scenario = new_scenario(client)
    client.post(f"/scenarios/{scenario}/add_generator", json=PV16)
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json={"neighbourhood": 3, "factor": 1.5})
    reads = ["state", "changes", "generators", "neighbourhoods", "transformers", "buses", "lines", "export"]
    before = {r: client.get(f"/scenarios/{scenario}/{r}").data for r in reads}
    url = f"/scenarios/{scenario}/{route}?dry_run=true"
    preview = getattr(client, method)(url, json=body) if body is not None else getattr(client, method)(url)
    assert preview.status_code == status, preview.json
    assert preview.json["action"]["dry_run"] is True
    assert {r: client.get(f"/scenarios/{scenario}/{r}").data for r in reads} == before  # byte for byte
    url = f"/scenarios/{scenario}/{route}"
    real = getattr(client, method)(url, json=body) if body is not None else getattr(client, method)(url)
    expected_action = {k: v for k, v in preview.json["action"].items() if k != "dry_run"}
    assert real.json["action"] == expected_action
    assert np.max(np.abs(vmag(real.json["results"]) - vmag(preview.json["results"]))) < 1e-9
    assert real.json["results"]["power_summary"] == pytest.approx(preview.json["results"]["power_summary"],
                                                                  rel=1e-9, abs=1e-6)


def test_refused_dry_run_is_the_same_error(client):
    body = {"bus_name": "16", "phases": 3, "kw": 1}
    assert_error_shape(client.post("/add_generator?dry_run=true", json=body), 422, "phases")


# ---------------------------------------------------------------------------- export and import
def test_export_is_plain_ops_of_the_current_state(client):
    scenario = new_scenario(client, name="pv")
    client.post(f"/scenarios/{scenario}/add_generator", json=PV16)
    client.post(f"/scenarios/{scenario}/reset", json={})
    client.post(f"/scenarios/{scenario}/add_generator", json=PV67)
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json=BUSIER5)
    client.post(f"/scenarios/{scenario}/add_generator", json=PV16)
    client.post(f"/scenarios/{scenario}/undo", json={})
    document = client.get(f"/scenarios/{scenario}/export").json
    assert document == {"format": "ieee123-scenario", "version": 1, "feeder": {"name": "ieee123", "sha256": feeder_sha256()},
                        "name": "pv", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500.0},
                                                  {"op": "modify_load_neighbourhood", "neighbourhood": 5,
                                                   "factor": 1.3}]}


def test_export_then_import_equals_at_every_node(client):
    scenario = new_scenario(client)
    client.post(f"/scenarios/{scenario}/add_generator", json=PV67)
    client.post(f"/scenarios/{scenario}/add_generator", json={**PV16, "phase": 3})
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json=BUSIER5)
    client.delete(f"/scenarios/{scenario}/generators/gen_16_3")
    document = client.get(f"/scenarios/{scenario}/export").json
    imported = client.post("/scenarios/import", json=document)
    assert imported.status_code == 201
    copy = imported.json["scenario"]["id"]
    assert imported.headers["Location"] == f"/scenarios/{copy}"
    assert np.max(np.abs(vmag(state(client, copy)["results"]) - vmag(state(client, scenario)["results"]))) < 1e-9
    assert client.get(f"/scenarios/{copy}/export").json["changes"] == document["changes"]


def test_import_equals_the_same_ops_on_a_fresh_engine():
    """Reference: OpenDSSCircuit driven by hand with the same changes."""
    client = create_app({"TESTING": True}).test_client()
    ops = [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 800},
           {"op": "modify_load_neighbourhood", "neighbourhood": 9, "factor": 1.4}]
    document = {"format": "ieee123-scenario", "version": 1, "feeder": {"sha256": feeder_sha256()}, "changes": ops}
    copy = client.post("/scenarios/import", json=document).json["scenario"]["id"]
    by_hand = OpenDSSCircuit()
    by_hand.add_generator("67", 3, 800)
    by_hand.scale_neighbourhood_loads(9, 1.4)
    assert np.max(np.abs(vmag(state(client, copy)["results"]) - by_hand.snapshot.arrays["vmag_pu"])) < 1e-9


def document_with(**overrides) -> dict:
    document = {"format": "ieee123-scenario", "version": 1, "feeder": {"sha256": feeder_sha256()}, "name": "x",
                "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500},
                            {"op": "modify_load_neighbourhood", "neighbourhood": 5, "factor": 1.1}]}
    document.update(overrides)
    return document


GOOD_CHANGE = {"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500}


@pytest.mark.parametrize("document,status,field", [
    (document_with(feeder={"sha256": "0" * 64}), 409, "feeder.sha256"),
    (document_with(version=2), 422, "version"),
    (document_with(format="other"), 400, "format"),
    (document_with(changes=[GOOD_CHANGE, {"op": "fly"}]), 400, "changes[1].op"),
    (document_with(changes=[GOOD_CHANGE, {"bus_name": "67"}]), 400, "changes[1].op"),
    (document_with(changes=[GOOD_CHANGE, {**GOOD_CHANGE, "kw": "500"}]), 400, "changes[1].kw"),
    (document_with(changes=[GOOD_CHANGE, {**GOOD_CHANGE, "extra": 1}]), 400, "changes[1].extra"),
    (document_with(changes=[GOOD_CHANGE, {**GOOD_CHANGE, "kw": -1}]), 422, "changes[1].kw"),
    (document_with(changes=[GOOD_CHANGE, {**GOOD_CHANGE, "bus_name": "nowhere"}]), 422, "changes[1].bus_name"),
    (document_with(changes=[GOOD_CHANGE, {"op": "remove_generator", "name": "gen_1_1"}]), 422, "changes[1].name"),
    (document_with(changes=[{"op": "modify_load_neighbourhood", "neighbourhood": 99, "factor": 1}]), 422,
     "changes[0].neighbourhood"),
])
def test_bad_documents_are_refused_naming_index_and_field_and_create_nothing(client, document, status, field):
    before = client.get("/scenarios").json
    assert_error_shape(client.post("/scenarios/import", json=document), status, field)
    assert client.get("/scenarios").json == before


# ---------------------------------------------------------------------------- diff
def test_diff_against_base_and_another_scenario(client):
    scenario, other = new_scenario(client), new_scenario(client)
    client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 2500})
    client.post(f"/scenarios/{other}/modify_load_neighbourhood", json=BUSIER5)
    ours, theirs = state(client, scenario)["results"], state(client, other)["results"]
    diff = client.get(f"/scenarios/{scenario}/diff?against={other}").json
    assert diff["against"] == other and diff["sequence"] == 1 and diff["other_sequence"] == 1
    for key, value in diff["summary"].items():
        assert value == {"this": ours["power_summary"][key], "other": theirs["power_summary"][key],
                         "delta": pytest.approx(ours["power_summary"][key] - theirs["power_summary"][key])}
    mine = {(r["Bus"], r["Node"]): r["VMag_pu"] for r in ours["bus_details"]}
    other_v = {(r["Bus"], r["Node"]): r["VMag_pu"] for r in theirs["bus_details"]}
    deltas = [abs(r["delta_pu"]) for r in diff["buses"]]
    assert deltas == sorted(deltas, reverse=True) and len(deltas) == len(mine)
    for row in diff["buses"]:
        key = (row["Bus"], row["Node"])
        assert (row["VMag_pu"], row["other_VMag_pu"]) == (mine[key], other_v[key])
        assert row["delta_pu"] == pytest.approx(mine[key] - other_v[key], abs=1e-15)
    lines = {r["Line"]: r for r in ours["line_flows"]}
    assert all(row["P_kW"] == lines[row["Line"]]["P_kW"] for row in diff["lines"])
    new = {(v["type"], v["element"]) for v in diff["violations"]["new"]}
    our_voltage = {("voltage", v["element"]) for v in ours["violations"]["voltage"]}
    their_voltage = {("voltage", v["element"]) for v in theirs["violations"]["voltage"]}
    assert {k for k in new if k[0] == "voltage"} == our_voltage - their_voltage

    against_base = client.get(f"/scenarios/{scenario}/diff").json
    base = client.get("/scenarios/default/state").json["results"]  # default is still the base case
    assert against_base["summary"]["total_generation_kW"]["other"] == base["power_summary"]["total_generation_kW"]
    assert against_base["other_sequence"] == 0


def test_diff_csv_gives_the_bus_rows(client):
    scenario = new_scenario(client)
    client.post(f"/scenarios/{scenario}/add_generator", json=PV67)
    text = client.get(f"/scenarios/{scenario}/diff?format=csv").data.decode()
    header, first = text.splitlines()[:2]
    assert header == "Bus,Node,VMag_pu,other_VMag_pu,delta_pu"
    assert first.split(",")[0] == client.get(f"/scenarios/{scenario}/diff").json["buses"][0]["Bus"]


def test_diff_against_unknown_scenario_is_404(client):
    assert_error_shape(client.get("/diff?against=nowhere"), 404, "scenario")


# ---------------------------------------------------------------------------- ETags and preconditions
def test_etag_changes_exactly_when_state_changes(client):
    tag = client.get("/state").headers["ETag"]
    assert client.get("/buses").headers["ETag"] == tag and client.get("/lines").headers["ETag"] == tag
    client.post("/add_generator?dry_run=true", json=PV16)
    client.post("/add_generator", json={"bus_name": "nowhere", "phases": 1, "kw": 1})
    assert client.get("/state").headers["ETag"] == tag
    changed = client.post("/add_generator", json=PV16)
    assert changed.headers["ETag"] != tag and client.get("/state").headers["ETag"] == changed.headers["ETag"]


def test_if_none_match_gives_304_without_body(client):
    tag = client.get("/state").headers["ETag"]
    response = client.get("/state", headers={"If-None-Match": tag})
    assert response.status_code == 304 and response.data == b"" and response.headers["ETag"] == tag
    client.post("/add_generator", json=PV16)
    assert client.get("/state", headers={"If-None-Match": tag}).status_code == 200


def test_stale_if_match_is_412_and_applies_nothing(client):
    stale = client.get("/state").headers["ETag"]
    client.post("/add_generator", json=PV16)
    before = client.get("/state").data
    body = assert_error_shape(client.post("/modify_load_neighbourhood", json=BUSIER5,
                                          headers={"If-Match": stale}), 412, "If-Match")
    assert "ETag" in body["message"]
    assert client.get("/state").data == before
    current = client.get("/state").headers["ETag"]
    assert client.post("/modify_load_neighbourhood", json=BUSIER5, headers={"If-Match": current}).status_code == 200
    assert client.post("/reset", json={}, headers={"If-Match": "*"}).status_code == 200


def test_if_match_of_another_scenario_is_stale(client):
    other = new_scenario(client)
    tag = client.get(f"/scenarios/{other}/state").headers["ETag"]
    assert_error_shape(client.post("/reset", json={}, headers={"If-Match": tag}), 412, "If-Match")


# ---------------------------------------------------------------------------- idempotency keys
def test_a_retried_key_returns_the_first_answer_and_applies_nothing(client):
    first = client.post("/add_generator", json=PV16, headers={"Idempotency-Key": "k-1"})
    client.post("/modify_load_neighbourhood", json=BUSIER5)  # the state moves on meanwhile
    retry = client.post("/add_generator", json=PV16, headers={"Idempotency-Key": "k-1"})
    assert (retry.status_code, retry.data) == (first.status_code, first.data)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert client.get("/state").json["sequence"] == 2


def test_a_key_reused_with_another_body_is_422(client):
    client.post("/add_generator", json=PV16, headers={"Idempotency-Key": "k-2"})
    before = client.get("/state").data
    assert_error_shape(client.post("/add_generator", json={**PV16, "kw": 300}, headers={"Idempotency-Key": "k-2"}),
                       422, "Idempotency-Key")
    assert_error_shape(client.post("/reset", json={}, headers={"Idempotency-Key": "k-2"}), 422, "Idempotency-Key")
    assert client.get("/state").data == before


def test_a_keyed_change_with_an_integer_beyond_64_bits_is_refused_not_a_crash(client):
    """Found by schemathesis: the key's fingerprint could not serialise the integer, so the answer was a 500."""
    before = client.get("/state").data
    response = client.post("/modify_load_neighbourhood", json={"neighbourhood": -(2 ** 93), "factor": 1.1},
                           headers={"Idempotency-Key": "huge"})
    assert_error_shape(response, 404, "neighbourhood")
    assert client.get("/state").data == before


def test_keys_are_per_scenario(client):
    other = new_scenario(client)
    client.post("/add_generator", json=PV16, headers={"Idempotency-Key": "same"})
    response = client.post(f"/scenarios/{other}/add_generator", json=PV16, headers={"Idempotency-Key": "same"})
    assert response.status_code == 200 and "Idempotent-Replayed" not in response.headers
    assert state(client, other)["sequence"] == 1


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_key_length_is_checked(client, key):
    assert_error_shape(client.post("/add_generator", json=PV16, headers={"Idempotency-Key": key}), 400,
                       "Idempotency-Key")


def test_a_retry_while_the_first_is_running_is_409(app, client):
    scenario = app.extensions["scenarios"].get("default")
    answers = {}
    with scenario.lock:  # the first request holds its key and waits for the engine
        first = threading.Thread(target=lambda: answers.setdefault("first", app.test_client().post(
            "/add_generator", json=PV16, headers={"Idempotency-Key": "slow"})))
        first.start()
        deadline = time.monotonic() + 5
        while ("default", "slow") not in app.extensions["scenarios"]._in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        retry = client.post("/add_generator", json=PV16, headers={"Idempotency-Key": "slow"})
        assert_error_shape(retry, 409, "Idempotency-Key")
    first.join(10)
    assert answers["first"].status_code == 200
    assert client.get("/state").json["sequence"] == 1


# ---------------------------------------------------------------------------- API key
def test_api_key_guards_create_delete_and_import():
    client = create_app({"TESTING": True, "API_KEY": "s3cret"}).test_client()
    auth = {"Authorization": "Bearer s3cret"}
    assert_error_shape(client.post("/scenarios", json={}), 401)
    scenario = client.post("/scenarios", json={}, headers=auth).json["scenario"]["id"]
    assert_error_shape(client.post(f"/scenarios/{scenario}/add_generator", json=PV16), 401)
    assert_error_shape(client.post(f"/scenarios/{scenario}/undo", json={}), 401)
    document = client.get(f"/scenarios/{scenario}/export").json
    assert_error_shape(client.post("/scenarios/import", json=document), 401)
    assert client.post("/scenarios/import", json=document, headers=auth).status_code == 201
    assert_error_shape(client.delete(f"/scenarios/{scenario}"), 401)
    assert client.delete(f"/scenarios/{scenario}", headers=auth).status_code == 200
    assert client.get("/scenarios").status_code == 200  # reads stay open


# ---------------------------------------------------------------------------- a full journal
def test_a_full_journal_is_folded_and_the_scenario_goes_on(monkeypatch, tmp_path):
    """A controller loop on one scenario never gets stuck: at the limit the journal folds into the scenario's
    starting point; the state, sequence, export and a restart on the same file are unchanged by the fold."""
    import scenarios.registry

    monkeypatch.setattr(scenarios.registry, "MAX_JOURNAL", 4)
    state_file = tmp_path / "grid.sqlite"
    client = create_app({"TESTING": True, "STATE_FILE": str(state_file)}).test_client()
    for factor in (1.1, 1.2, 0.9, 1.05):
        client.post("/modify_load_neighbourhood", json={"neighbourhood": 7, "factor": factor})
    before_fold = client.get("/state").json["results"]
    sixth = client.post("/add_generator", json=PV67)  # the fifth change folds the four before it
    assert sixth.status_code == 200 and sixth.json["action"]["sequence"] == 5
    journal = client.get("/changes").json
    assert journal["since"] == 4 and [c["sequence"] for c in journal["changes"]] == [5]
    assert len(client.get("/export").json["changes"]) == 5
    assert client.post("/undo", json={}).json["results"] == before_fold  # undo back to the fold point
    body = assert_error_shape(client.post("/undo", json={}), 409, "scenario")
    assert "folded" in body["message"]
    after = client.get("/state").json
    restarted = create_app({"TESTING": True, "STATE_FILE": str(state_file)}).test_client()
    assert restarted.get("/state").json["sequence"] == after["sequence"] == 6
    assert np.max(np.abs(vmag(restarted.get("/state").json["results"]) - vmag(after["results"]))) < 1e-9
    assert restarted.get("/changes").json == client.get("/changes").json
