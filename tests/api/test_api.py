"""The HTTP layer through Flask's test client: envelopes, status codes, and an unchanged grid after every error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.helpers import assert_error_shape
from support.paths import REPO

GOOD_GENERATOR = {"bus_name": "16", "phases": 1, "kw": 200}


def test_add_generator_success_envelope(client):
    response = client.post("/add_generator", json=GOOD_GENERATOR)
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "success"
    assert body["action"] == {"type": "add_generator", "sequence": 1, "generator": "gen_16_3", "bus": "16",
                              "phases": 1, "nodes": [3], "conn": "wye", "kw": 200.0, "kv": pytest.approx(2.4018, rel=1e-4),
                              "created": True, "updated": False}
    summary = body["results"]["power_summary"]
    assert summary["total_generation_kW"] == pytest.approx(200, rel=1e-3)
    assert set(body["results"]) >= {"power_summary", "voltage_profile", "bus_details", "line_flows", "losses"}


def test_modify_load_neighbourhood_success_envelope(client):
    response = client.post("/modify_load_neighbourhood", json={"neighbourhood": 5, "factor": 0.8})
    assert response.status_code == 200
    action = response.json["action"]
    assert (action["neighbourhood"], action["factor"], action["cumulative_factor"]) == (5, 0.8, 0.8)
    assert action["loads_changed"] == ["s19a", "s20a", "s22b", "s24c"]


def test_state_returns_last_results_without_change(client):
    posted = client.post("/add_generator", json=GOOD_GENERATOR).json["results"]
    state = client.get("/state").json
    assert state["status"] == "success" and state["sequence"] == 1
    assert state["results"] == posted


@pytest.mark.parametrize("body,status,field", [
    ({"bus_name": "16", "phases": True, "kw": 200}, 400, "phases"),
    ({"bus_name": "16", "phases": 1, "kw": True}, 400, "kw"),
    ({"bus_name": "16", "phases": 1, "kw": "200"}, 400, "kw"),
    ({"bus_name": 16, "phases": 1, "kw": 200}, 400, "bus_name"),
    ({"bus_name": "16", "phases": 2, "kw": 200}, 400, "phases"),
    ({"bus_name": "16", "phases": 1.0, "kw": 200}, 400, "phases"),
    ({"bus_name": "16", "phases": 1}, 400, "kw"),
    ({"bus_name": "16", "phases": 1, "kw": 200, "extra": 1}, 400, "extra"),
    ({"bus_name": "16", "phases": 1, "kw": 200, "phase": 4}, 400, "phase"),
    ({"bus_name": "nowhere", "phases": 1, "kw": 200}, 404, "bus_name"),
    ({"bus_name": "16 kW=1e9", "phases": 1, "kw": 200}, 404, "bus_name"),
    ({"bus_name": "16", "phases": 3, "kw": 200}, 422, "phases"),
    ({"bus_name": "16", "phases": 1, "kw": -5}, 422, "kw"),
    ({"bus_name": "16", "phases": 1, "kw": 1e12}, 422, "kw"),
    ({"bus_name": "13", "phases": 3, "kw": 100000}, 422, None),
])
def test_add_generator_errors_leave_grid_unchanged(client, body, status, field):
    before = client.get("/state").data
    assert_error_shape(client.post("/add_generator", json=body), status, field)
    assert client.get("/state").data == before


@pytest.mark.parametrize("body,status,field", [
    ({"neighbourhood": 5.7, "factor": 0.8}, 400, "neighbourhood"),
    ({"neighbourhood": "5", "factor": 0.8}, 400, "neighbourhood"),
    ({"neighbourhood": True, "factor": 0.8}, 400, "neighbourhood"),
    ({"neighbourhood": 5, "factor": None}, 400, "factor"),
    ({"neighbourhood": 5}, 400, "factor"),
    ({"neighbourhood": 99, "factor": 0.8}, 404, "neighbourhood"),
    ({"neighbourhood": 5, "factor": -0.5}, 422, "factor"),
    ({"neighbourhood": 5, "factor": 11}, 422, "factor"),
])
def test_modify_load_neighbourhood_errors(client, body, status, field):
    before = client.get("/state").data
    assert_error_shape(client.post("/modify_load_neighbourhood", json=body), status, field)
    assert client.get("/state").data == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_refused(client, literal):
    response = client.post("/add_generator", data=f'{{"bus_name": "16", "phases": 1, "kw": {literal}}}',
                           content_type="application/json")
    assert_error_shape(response, 422, "kw")


@pytest.mark.parametrize("data,content_type,status", [
    ('{"bus_name": "16", ', "application/json", 400),
    ("", "application/json", 400),
    ("[1, 2]", "application/json", 400),
    ('"text"', "application/json", 400),
    ("bus_name=16&phases=1&kw=200", "application/x-www-form-urlencoded", 415),
    ('{"bus_name": "16", "phases": 1, "kw": 200}', "text/plain", 415),
    ('{"bus_name": "16", "phases": 1, "kw": 200}', None, 415),
])
def test_malformed_bodies(client, data, content_type, status):
    response = client.post("/add_generator", data=data, content_type=content_type)
    assert_error_shape(response, status)


def test_body_over_limit_is_413(client):
    response = client.post("/add_generator", data="{" + " " * 70_000 + "}", content_type="application/json")
    assert_error_shape(response, 413)


def test_unknown_route_and_wrong_method_are_json(client):
    assert_error_shape(client.get("/nowhere"), 404)
    assert_error_shape(client.get("/add_generator"), 405)
    assert_error_shape(client.delete("/state"), 405)


def test_module_level_app_for_wsgi_servers():
    """`waitress-serve api:app` and `from api import app` get one app, built on first use, not at import: in a fresh
    interpreter, `create_app` (counted from just after the import) is called exactly once for three uses; had the
    import built the app, it would be called 0 times; had each use built one, 3 times."""
    script = """
import json
import api
built = []
real_create_app = api.create_app
def counting_create_app(*args, **kwargs):
    built.append(real_create_app(*args, **kwargs))
    return built[-1]
api.create_app = counting_create_app
first, second = api.app, api.app
from api import app as third
print(json.dumps({"built": len(built), "one_app": first is second is third is built[0],
                  "ready": third.test_client().get("/health").get_json()["ready"]}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"built": 1, "one_app": True, "ready": True}
