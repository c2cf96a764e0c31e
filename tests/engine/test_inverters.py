"""Smart-inverter generators against OpenDSS driven directly, with the PVSystem, XYcurve and InvControl definitions
typed here from README's "Smart inverters" section (not from our code), on the light-load state where the curves
act (every neighbourhood x 0.25): node voltages to 1e-6 pu, each inverter's kW and kvar to 0.01.

The reference engine takes the same changes in the same order, each solved, as the API does (regulators move
with each solve, so the path matters); an update of an inverter generator is, in OpenDSS, its old elements
switched off (control first) and new ones defined, which is what README says the API does.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from api import create_app
from simulation_core import OpenDSSCircuit
from support.helpers import assert_error_shape
from support.inverter_reference import LIGHT, VOLT_VAR, VOLT_WATT, Reference
from support.paths import DATA, REPO
from support.plain_generator_answers import session


def light_load(client, reference: Reference) -> None:
    for neighbourhood in client.get("/neighbourhoods").json["neighbourhoods"]:
        response = client.post("/modify_load_neighbourhood", json={"neighbourhood": neighbourhood["id"],
                                                                    "factor": LIGHT})
        assert response.status_code == 200
        reference.scale(neighbourhood["loads"], LIGHT)


def assert_same(client, circuit: OpenDSSCircuit, reference: Reference) -> None:
    ours = np.asarray(circuit._engine.Circuit.AllBusMagPu())
    theirs = np.asarray(reference.dss.Circuit.AllBusMagPu())
    assert list(circuit._engine.Circuit.AllNodeNames()) == list(reference.dss.Circuit.AllNodeNames())
    worst = np.max(np.abs(ours - theirs))
    assert worst < 1e-6, f"node voltages differ by {worst:.2e} pu"
    state = client.get("/state?sections=bus_details").json["results"]["bus_details"]
    assert np.max(np.abs(np.array([row["VMag_pu"] for row in state]) - theirs)) < 1e-6
    rows = {row["name"]: row for row in client.get("/generators").json["generators"]}
    for generator in reference.defined:
        kw, kvar = reference.output(generator)
        row = rows[generator]
        assert row["delivered_kW"] == pytest.approx(kw, abs=0.01), generator
        assert row["delivered_kVAR"] == pytest.approx(kvar, abs=0.01), generator
        assert row["curtailed_kW"] == pytest.approx(row["kw"] - kw, abs=0.01)


@pytest.fixture
def grid():
    circuit = OpenDSSCircuit()
    client = create_app({"CIRCUIT": circuit, "TESTING": True}).test_client()
    reference = Reference()
    light_load(client, reference)
    return client, circuit, reference


CASES = {
    "volt_var": {"mode": "volt_var"},
    "volt_watt": {"mode": "volt_watt"},
    "volt_var_volt_watt": {"mode": "volt_var_volt_watt"},
    "constant_pf": {"mode": "constant_pf", "pf": -0.9},
}


@pytest.mark.parametrize("mode", list(CASES))
def test_each_mode_equals_opendss_driven_directly(grid, mode):
    client, circuit, reference = grid
    inverter = CASES[mode]
    response = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 400, "inverter": inverter})
    assert response.status_code == 200, response.json
    reference.inverter("gen_85_3", "85", [3], 400.0, inverter)
    assert_same(client, circuit, reference)
    row = client.get("/generators").json["generators"][0]
    assert row["mode"] == mode and row["kva"] == 400.0
    kw, kvar = reference.output("gen_85_3")
    if mode in ("volt_var", "volt_var_volt_watt", "constant_pf"):
        assert kvar < -20, "the curve (or the power factor) absorbs vars at this voltage"
        assert row["delivered_kVAR"] < 0
    if mode in ("volt_watt",):
        assert kw < 390 and abs(kvar) < 0.01, "volt-watt curtails above 1.06 pu and sets no vars"
    summary = client.get("/state?sections=power_summary").json["results"]["power_summary"]
    assert summary["total_generation_kW"] == pytest.approx(kw, abs=0.01)
    assert summary["total_generation_kVAR"] == pytest.approx(kvar, abs=0.01)


def test_a_sequence_of_updates_mode_changes_and_removals_equals_opendss(grid):
    """Several inverters at once, 3-phase too, updates that change the mode (and back to a plain generator, and
    again an inverter), custom curves, a removal: after each step, the same as the reference."""
    client, circuit, reference = grid
    custom = {"mode": "volt_var", "kva": 500, "volt_var": {"v": [0.9, 0.97, 1.01, 1.04], "q": [0.3, 0.1, 0, -0.4]}}
    steps = [
        ("85", 1, [3], 400.0, {"mode": "volt_var"}),
        ("67", 3, [1, 2, 3], 1500.0, {"mode": "volt_watt", "volt_watt": {"v": [1.04, 1.08], "p": [1.0, 0.5]}}),
        ("85", 1, [3], 400.0, {"mode": "volt_var_volt_watt"}),
        ("67", 3, [1, 2, 3], 1200.0, {"mode": "constant_pf", "pf": 0.95, "kva": 1300}),
        ("85", 1, [3], 350.0, None),
        ("85", 1, [3], 300.0, custom),
        ("67", 3, [1, 2, 3], 900.0, {"mode": "unity"}),
    ]
    for bus, phases, nodes, kw, inverter in steps:
        body = {"bus_name": bus, "phases": phases, "kw": kw, **({"inverter": inverter} if inverter else {})}
        response = client.post("/add_generator", json=body)
        assert response.status_code == 200, response.json
        generator = response.json["action"]["generator"]
        if inverter is None:
            reference.switch_off(generator)
            reference.dss.Text.Command(f"New Generator.{generator} bus1={bus}.{nodes[0]} phases=1 "
                                       f"kv={response.json['action']['kv']!r} kW={kw!r} pf=1 model=1 "
                                       f"vminpu=0.5 vmaxpu=1.5")
            reference.solve()
        else:
            reference.inverter(generator, bus, nodes, kw, inverter)
        assert_same(client, circuit, reference)
    response = client.delete("/generators/gen_67_123")
    assert response.status_code == 200
    reference.switch_off("gen_67_123")
    reference.solve()
    assert_same(client, circuit, reference)
    assert [row["name"] for row in client.get("/generators").json["generators"]] == ["gen_85_3"]


def test_the_rows_and_actions_carry_the_settings_with_their_defaults(client):
    response = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 150,
                                                   "inverter": {"mode": "volt_var_volt_watt"}})
    assert response.status_code == 200
    settings = {"mode": "volt_var_volt_watt", "kva": 150.0, "volt_var": VOLT_VAR, "volt_watt": VOLT_WATT}
    assert response.json["action"]["inverter"] == settings
    row = client.get("/generators").json["generators"][0]
    assert row["inverter"] == settings and row["mode"] == "volt_var_volt_watt" and row["kva"] == 150.0
    assert row["curtailed_kW"] == pytest.approx(row["kw"] - row["delivered_kW"])
    assert client.get("/buses/85").json["bus"]["generators"] == [row]
    removed = client.delete("/generators/gen_85_3").json["action"]
    assert removed["inverter"] == settings


def test_plain_generators_answer_byte_for_byte_as_before_smart_inverters():
    """The session of `plain_generator_answers.py` (changes, reads, import, undo, hosting capacity, time series,
    batch) gives the very bytes it gave on the commit before this feature (tests/data, made there)."""
    expected = json.loads((DATA / "plain_generator_answers.json").read_text())
    app = create_app({"TESTING": True, "WORKERS": 1})
    try:
        answers = session(app.test_client())
    finally:
        app.extensions["jobs"].close()
    assert answers == expected


# ---------------------------------------------------------------------------------------------- bad input
BAD = [
    ({"mode": "droop"}, 400, "inverter.mode"),
    ({"kva": 100}, 400, "inverter.mode"),
    ({"mode": "volt_var", "colour": 1}, 400, "inverter.colour"),
    ({"mode": "volt_var", "kva": "big"}, 400, "inverter.kva"),
    ({"mode": "volt_var", "volt_var": {"v": [0.9, 1.0, 1.1], "q": [0.4, 0, -0.4]}}, 400, "inverter.volt_var.v"),
    ({"mode": "volt_var", "kva": 0}, 422, "inverter.kva"),
    ({"mode": "volt_var", "kva": -5}, 422, "inverter.kva"),
    ({"mode": "volt_var", "kva": 1e6}, 422, "inverter.kva"),
    ({"mode": "volt_var", "pf": 0.9}, 422, "inverter.pf"),
    ({"mode": "constant_pf"}, 422, "inverter.pf"),
    ({"mode": "constant_pf", "pf": 0}, 422, "inverter.pf"),
    ({"mode": "constant_pf", "pf": 1.2}, 422, "inverter.pf"),
    ({"mode": "constant_pf", "pf": -0.01}, 422, "inverter.pf"),
    ({"mode": "unity", "volt_var": VOLT_VAR}, 422, "inverter.volt_var"),
    ({"mode": "volt_var", "volt_watt": VOLT_WATT}, 422, "inverter.volt_watt"),
    ({"mode": "volt_var", "volt_var": {"v": [0.92, 0.98, 0.97, 1.08], "q": [0.44, 0, 0, -0.44]}}, 422,
     "inverter.volt_var.v[2]"),
    ({"mode": "volt_var", "volt_var": {"v": [0.92, 0.98, 1.02, 1.6], "q": [0.44, 0, 0, -0.44]}}, 422,
     "inverter.volt_var.v[3]"),
    ({"mode": "volt_var", "volt_var": {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.44, 0, 0, -0.5]}}, 422,
     "inverter.volt_var.q[3]"),
    ({"mode": "volt_var", "volt_var": {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.2, 0.3, 0, -0.44]}}, 422,
     "inverter.volt_var.q[1]"),
    ({"mode": "volt_watt", "volt_watt": {"v": [1.1, 1.06], "p": [1, 0.2]}}, 422, "inverter.volt_watt.v[1]"),
    ({"mode": "volt_watt", "volt_watt": {"v": [1.06, 1.1], "p": [1, 1.5]}}, 422, "inverter.volt_watt.p[1]"),
    ({"mode": "volt_watt", "volt_watt": {"v": [1.06, 1.1], "p": [0.2, 1.0]}}, 422, "inverter.volt_watt.p[1]"),
]


@pytest.mark.parametrize("inverter,status,field", BAD)
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(client, inverter, status, field):
    before = client.get("/state").data
    response = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 100, "inverter": inverter})
    body = assert_error_shape(response, status, field)
    assert body["field"] == field
    assert client.get("/state").data == before
    assert client.get("/generators").json["generators"] == []


def test_kva_is_required_when_kw_is_zero(client):
    response = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 0,
                                                   "inverter": {"mode": "volt_var"}})
    assert_error_shape(response, 422, "inverter.kva")
    response = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 0,
                                                   "inverter": {"mode": "volt_var", "kva": 50}})
    assert response.status_code == 200
    assert response.json["action"]["inverter"]["kva"] == 50.0


def test_controls_that_do_not_settle_are_a_422_and_the_change_is_rolled_back(client):
    """A curve from full injection to full absorption within 0.3 mV/V makes the vars swing each control
    iteration (at 1500 kW at bus 85, light load), beyond the deck's 100 control iterations."""
    for neighbourhood in range(1, 15):
        client.post("/modify_load_neighbourhood", json={"neighbourhood": neighbourhood, "factor": LIGHT})
    client.post("/add_generator", json={"bus_name": "76", "phases": 3, "kw": 300, "inverter": {"mode": "volt_var"}})
    before, rows = client.get("/state").data, client.get("/generators").json
    steep = {"mode": "volt_var", "volt_var": {"v": [1.0, 1.0001, 1.0002, 1.0003], "q": [0.44, 0.44, -0.44, -0.44]}}
    response = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 1500, "inverter": steep})
    body = assert_error_shape(response, 422)
    assert "did not settle within 100 control iterations" in body["message"] and "rolled back" in body["message"]
    assert client.get("/state").data == before and client.get("/generators").json == rows
    after = client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 100,
                                                "inverter": {"mode": "volt_var"}})
    assert after.status_code == 200, after.json


def test_export_import_and_a_batch_case_carry_the_inverter(client):
    """The journal's op keeps the settings (every default filled in): an imported copy has the same generators and
    the same state to the last digit (the same changes in the same order), still a version-1 document; a batch case
    with the same change answers as the change route."""
    inverter = {"mode": "volt_var_volt_watt", "kva": 450, "volt_watt": {"v": [1.04, 1.09], "p": [1, 0.4]}}
    body = {"bus_name": "85", "phases": 1, "kw": 400, "inverter": inverter}
    changed = client.post("/add_generator", json=body)
    assert changed.status_code == 200
    document = client.get("/export").json
    assert document["version"] == 1
    (op,) = document["changes"]
    assert op["inverter"] == {**inverter, "volt_var": VOLT_VAR} and op["phase"] == 3
    copy = client.post("/scenarios/import", json=document).json["scenario"]["id"]
    assert client.get(f"/scenarios/{copy}/state").json["results"] == client.get("/state").json["results"]
    assert client.get(f"/scenarios/{copy}/generators").json == client.get("/generators").json
    fork = client.post("/scenarios", json={"name": "before"}).json["scenario"]["id"]  # from the base case
    job = client.post(f"/scenarios/{fork}/studies/batch?wait=60", json={"cases": [
        {"name": "smart", "changes": [{"op": "add_generator", **body}]}]}).json["job"]
    assert job["status"] == "done", job
    assert job["result"]["cases"][0]["power_summary"] == changed.json["results"]["power_summary"]


def test_the_command_line_carries_inverter_generators_in_a_scenario_document(client, tmp_path):
    import subprocess
    import sys

    client.post("/add_generator", json={"bus_name": "85", "phases": 1, "kw": 300, "inverter": {"mode": "volt_var"}})
    document = tmp_path / "smart.json"
    document.write_text(json.dumps(client.get("/export").json))
    out = tmp_path / "day.csv"
    done = subprocess.run([sys.executable, "-m", "studies", "time-series", "--scenario", str(document), "--hours", "24",
                           "--workers", "1", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, *lines = out.read_text().splitlines()
    assert {"generation_kVAR", "curtailed_kW"} <= set(header.split(","))
    # The command line's totals and hours are the API's for the same scenario, curtailment included.
    job = client.post("/studies/time_series?wait=60", json={"hours": 24}).json["job"]
    assert job["status"] == "done", job
    assert json.loads(done.stdout) == pytest.approx(job["result"]["totals"], rel=1e-9, abs=1e-9)
    curtailed = [float(row["curtailed_kW"]) for row in csv.DictReader([header, *lines])]
    assert curtailed == pytest.approx([row["curtailed_kW"] for row in job["result"]["hours"]], rel=1e-9, abs=1e-9)
