"""Fuzz the inverter fields: whatever `inverter` holds (on add_generator, in an imported document or a batch case,
and as a hosting-capacity study's trial), the answer is a known status with the JSON envelope, never a 5xx, and an
error changes nothing. Accepted settings are then read back from the generators' rows exactly as normalized.

Examples share state (one app, a fresh circuit, per test): accepted changes stay, as users' do, so later examples
start from the states earlier ones reached (generators with every mode, mode changes by updates).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, strategies as st

from support.fuzzing import EDGE_NUMBERS, check_response, encode, fuzz_settings, json_values, post, report

EXAMPLES = 300
MODES = ["unity", "constant_pf", "volt_var", "volt_watt", "volt_var_volt_watt"]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-3, max_value=3),
                    st.floats(min_value=-1.2, max_value=1.6), st.sampled_from(EDGE_NUMBERS))
voltages = st.floats(min_value=0.45, max_value=1.55)


def curve(output: str, points: int) -> st.SearchStrategy:
    """Near-valid curves (sorted voltages, falling outputs) half the time, anything the other half."""
    valid = st.fixed_dictionaries({
        "v": st.lists(voltages, min_size=points, max_size=points, unique=True).map(sorted),
        output: st.lists(st.floats(min_value=-0.5, max_value=1.1), min_size=points, max_size=points).map(
            lambda values: sorted(values, reverse=True))})
    loose = st.dictionaries(st.sampled_from(["v", output, "x"]),
                            st.lists(numbers, min_size=0, max_size=points + 1) | json_values, max_size=3)
    return valid | loose


def valid_inverter(mode: str) -> st.SearchStrategy:
    """Settings the API accepts (mostly): the mode's own fields, in range."""
    fields: dict[str, st.SearchStrategy] = {}
    if mode == "constant_pf":
        fields["pf"] = st.sampled_from([-0.9, -0.95, 0.9, 1.0]) | st.floats(min_value=-1, max_value=1)
    optional: dict[str, st.SearchStrategy] = {"kva": st.floats(min_value=1, max_value=2000)}
    if mode in ("volt_var", "volt_var_volt_watt"):
        optional["volt_var"] = curve("q", 4)
    if mode in ("volt_watt", "volt_var_volt_watt"):
        optional["volt_watt"] = curve("p", 2)
    return st.fixed_dictionaries({"mode": st.just(mode), **fields}, optional=optional)


inverters = st.one_of(
    st.sampled_from(MODES).flatmap(valid_inverter),
    st.sampled_from(MODES).flatmap(valid_inverter),
    json_values,
    st.fixed_dictionaries({"mode": st.sampled_from(MODES) | json_values}, optional={
        "kva": numbers | json_values, "pf": numbers | st.sampled_from([-0.9, 0.95, 1.0, 0]),
        "volt_var": curve("q", 4) | json_values, "volt_watt": curve("p", 2) | json_values,
        "droop": json_values}),
)


def generator_body(inverter: Any) -> st.SearchStrategy:
    return st.fixed_dictionaries({"bus_name": st.sampled_from(["85", "67", "114", "76"]),
                                  "phases": st.sampled_from([1, 3]), "kw": st.sampled_from([0, 50, 250.5, 600])}
                                 ).map(lambda body: {**body, "inverter": inverter})


@pytest.mark.parametrize("dry_run", [False, True])
def test_any_inverter_field_on_add_generator(client, dry_run):
    """Shares state across examples (see the module's docstring)."""
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES)
    @given(body=inverters.flatmap(generator_body))
    def run(body):
        before = client.get("/state").data
        path = "/add_generator?dry_run=true" if dry_run else "/add_generator"
        response = post(client, path, encode(body))
        seen[response.status_code] += 1
        answer = check_response(client, response, before)
        if response.status_code == 200 and body["inverter"] is None:  # null: a plain generator, as omitted
            assert "inverter" not in answer["action"]
        elif response.status_code == 200:
            settings = answer["action"]["inverter"]
            assert settings["mode"] == body["inverter"]["mode"] and settings["kva"] > 0
            if dry_run:
                assert client.get("/state").data == before
            else:
                row = next(r for r in client.get("/generators").json["generators"]
                           if r["name"] == answer["action"]["generator"])
                assert row["inverter"] == settings and row["mode"] == settings["mode"]
        elif isinstance(body["inverter"], dict) and response.status_code in (400, 422):
            if "field" not in answer:  # a grid that does not converge (or settle) with it: said so, rolled back
                assert "rolled back" in answer["message"], answer
            else:
                assert answer["field"].startswith(("inverter", "phases", "kw")), answer

    run()
    report(f"inverter on add_generator (dry run {dry_run})", seen, EXAMPLES // 2, {200, 400, 422})


def test_any_inverter_field_in_an_imported_document_and_a_batch_case(client):
    """An import is all its changes or nothing; a batch case is refused before any work is queued. Shares state
    across examples (one app; imports add scenarios, deleted again)."""
    seen: Counter = Counter()
    sha = client.get("/export").json["feeder"]["sha256"]

    @fuzz_settings(EXAMPLES // 2)
    @given(body=inverters.flatmap(generator_body))
    def run(body):
        before = client.get("/state").data
        document = {"format": "ieee123-scenario", "version": 1, "feeder": {"sha256": sha},
                    "changes": [{"op": "add_generator", **body}]}
        response = post(client, "/scenarios/import", encode(document))
        seen[response.status_code] += 1
        assert response.status_code in (201, 400, 404, 422), response.data[:300]
        if response.status_code == 201:
            scenario = response.json["scenario"]["id"]
            exported = client.get(f"/scenarios/{scenario}/export").json["changes"][0]
            assert (exported.get("inverter") or {}).get("mode") == (body["inverter"] or {}).get("mode")
            assert client.delete(f"/scenarios/{scenario}").status_code == 200
        else:
            assert response.json["status"] == "error" and client.get("/state").data == before
        batch = post(client, "/studies/batch?wait=30", encode({"cases": [{"changes": [{"op": "add_generator",
                                                                                         **body}]}]}))
        assert batch.status_code in (200, 400, 422), batch.data[:300]
        if batch.status_code == 200:  # a refused change fails its case only
            assert batch.json["job"]["status"] == "done", batch.json

    run()
    report("inverter in documents", seen, EXAMPLES // 4, {201, 400, 422})


def test_any_inverter_field_as_a_hosting_capacity_trial(client):
    """The trial's inverter is checked before anything is queued: no kva, the same ranges; accepted ones run to
    the end (every trial's controls settle or are not_converged). Shares state across examples (one app)."""
    seen: Counter = Counter()

    @fuzz_settings(EXAMPLES // 2)
    @given(inverter=inverters)
    def run(inverter):
        body = {"buses": ["85"], "step_kw": 100, "max_kw": 800, "inverter": inverter}
        response = post(client, "/studies/hosting_capacity?wait=30", encode(body))
        seen[response.status_code] += 1
        assert response.status_code in (200, 400, 422), response.data[:300]
        if response.status_code == 200:
            job = response.json["job"]
            assert job["status"] == "done", job
            assert job["result"]["buses"][0]["hosting_capacity_kW"] is not None
        else:
            assert response.json["field"].startswith("inverter"), response.json
            if isinstance(inverter, dict) and inverter.get("mode") in MODES and "kva" in inverter:
                assert response.status_code == 400, "a trial's kVA is its kW: kva is not a field of it"

    run()
    report("inverter as a trial", seen, EXAMPLES // 4, {200, 400, 422})
