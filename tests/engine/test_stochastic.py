"""Stochastic hosting capacity against references nobody here wrote: every sample's first failure and last pass
replayed with OpenDSS driven directly (PV defined by hand from the result's own `pv` lists), the engine's
many-customer trial against the same PV in a bare engine, placements against the deck's loads; the same seed
giving the same answer on one worker and two; bounds named by field."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import opendssdirect
import pandas as pd
import pytest

from api import create_app
from simulation_core import DEFAULT_MASTER_FILE, OpenDSSCircuit
from support.bare_feeder import GENERATOR, customer_connection
from support.direct_feeder import LIMITS, DirectFeeder, named_hours
from support.helpers import assert_error_shape, finished
from support.paths import REPO

ROUTE = "/studies/stochastic_hosting_capacity"


def make_app(workers: int):
    return create_app({"TESTING": True, "WORKERS": workers, "MAX_JOBS": 3})


@pytest.fixture(scope="module")
def app():
    application = make_app(2)
    yield application
    application.extensions["jobs"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def study(client, body: dict, prefix: str = "", timeout_s: float = 180) -> dict:
    """A finished stochastic study's job."""
    return finished(client, client.post(f"{prefix}{ROUTE}?wait=60", json=body), timeout_s)


# ---------------------------------------------------------------------------- OpenDSS driven by hand
def add_pv_by_hand(dss, pv: list[dict]) -> None:
    """The result's systems as OpenDSS generators written by hand (support.bare_feeder.customer_connection: where
    a customer's load connects, as the bench's stochastic floor places them too)."""
    for k, system in enumerate(pv):
        dss.Text.Command(f"New Generator.replay{k} {customer_connection(dss, system['bus'], system['nodes'])} "
                         f"kw={system['kW']} {GENERATOR}")


def replay(pv: list[dict], limits: dict) -> tuple[str, set[str], float] | None:
    """A trial replayed in a freshly compiled bare engine: the kind, worst elements and value, or None."""
    feeder = DirectFeeder()
    add_pv_by_hand(feeder.dss, pv)
    feeder.dss.Solution.Solve()
    assert feeder.dss.Solution.Converged()
    return feeder.violates(limits)


def deck_loads() -> dict[tuple[str, tuple[int, ...]], float]:
    """Each load of the deck, read in a bare engine: (bus, nodes) -> kW."""
    dss = opendssdirect.NewContext()
    dss.Text.Command(f"Compile [{DEFAULT_MASTER_FILE}]")
    loads = {}
    for name in dss.Loads.AllNames():
        dss.Circuit.SetActiveElement(f"Load.{name}")
        bus, *nodes = dss.CktElement.BusNames()[0].split(".")
        dss.Loads.Name(name)
        key = (bus.lower(), tuple(int(n) for n in nodes) or (1, 2, 3))
        assert key not in loads
        loads[key] = dss.Loads.kW()
    return loads


@pytest.mark.parametrize("limits", [{}, {"voltage_high_pu": 1.1, "reverse_power": True}],
                         ids=["default limits", "reverse power"])
def test_every_sample_replays_with_opendss_driven_directly(client, limits):
    """The PV set of each sample's first failure fails in a bare engine with the kind it names (at its element),
    and the set of its last pass passes."""
    result = study(client, {"samples": 6, "seed": 11, "limits": limits})["result"]
    judged = {**LIMITS, **limits}
    failures = 0
    for sample in result["samples"]:
        if sample["first_failure"]:
            failures += 1
            found = replay(sample["first_failure"]["pv"], judged)
            bound = sample["first_failure"]["limited_by"]
            assert found is not None and found[0] == bound["kind"], (sample["sample"], found, bound)
            assert bound["element"].lower() in {e.lower() for e in found[1]}
            assert found[2] == pytest.approx(bound["value"], rel=1e-6, abs=1e-6)
        if sample["last_pass"]:
            assert replay(sample["last_pass"]["pv"], judged) is None, sample["sample"]
    assert failures > 0  # the replay of failures was exercised


def test_placements_are_the_loads_own_connections_and_sum_to_the_penetration(client):
    result = study(client, {"samples": 4, "seed": 3, "penetration_pct": {"start": 20, "stop": 120, "step": 50}})[
        "result"]
    loads, ratio = deck_loads(), result["spec"]["size_ratio"]
    total = sum(loads.values())
    assert ratio == 1.2 and result["spec"]["total_load_kW"] == pytest.approx(total) and total == pytest.approx(3490)
    assert [row["pv_kW"] for row in result["levels"]] == [pytest.approx(total * p / 100) for p in (20, 70, 120)]
    for sample in result["samples"]:
        ends = [end for end in (sample["last_pass"], sample["first_failure"]) if end]
        for end in ends:
            keys = [(s["bus"], tuple(s["nodes"])) for s in end["pv"]]
            assert len(set(keys)) == len(keys)  # one system per customer
            assert sum(s["kW"] for s in end["pv"]) == pytest.approx(end["pv_kW"], abs=1e-6)
            for system, key in zip(end["pv"][:-1], keys):
                assert system["kW"] == pytest.approx(loads[key] * ratio)  # full systems, the last one partial
            assert 0 < end["pv"][-1]["kW"] <= loads[keys[-1]] * ratio + 1e-9
            for system in end["pv"]:
                assert system["phases"] == (3 if len(system["nodes"]) == 3 else 1)
        if len(ends) == 2:  # a higher penetration keeps the lower one's systems
            low, high = ends
            assert [s["bus"] for s in high["pv"][:len(low["pv"])]] == [s["bus"] for s in low["pv"]]


def test_a_trial_equals_opendss_driven_directly_and_leaves_the_engine_as_it_was():
    """PV at a line-to-line load (35), a 3-phase load (48) and line-to-neutral loads at once: every node voltage
    equals a bare engine with the same generators defined by hand (1e-6 pu); the engine is back in its state."""
    circuit = OpenDSSCircuit()
    customers = circuit.customers()
    chosen = [i for i, c in enumerate(customers) if c["bus"] in ("35", "48", "83", "65", "1")]
    assert {len(customers[i]["nodes"]) for i in chosen} == {1, 2, 3}
    systems = [(i, 150.0 + 10 * k) for k, i in enumerate(chosen)]
    before = circuit.snapshot.arrays["vmag_pu"].copy()
    reading = circuit.preview_customer_pv_limits(systems)
    feeder = DirectFeeder()
    add_pv_by_hand(feeder.dss, [{**customers[i], "kW": kw} for i, kw in systems])
    feeder.dss.Solution.Solve()
    by_hand = dict(zip(feeder.dss.Circuit.AllNodeNames(), feeder.dss.Circuit.AllBusMagPu()))
    layout = circuit.snapshot.layout
    ours = {f"{b}.{n}": v for b, n, v in zip(layout.node_bus, layout.node_number, reading["vmag_pu"])}
    assert ours.keys() == by_hand.keys()
    assert max(abs(ours[k] - by_hand[k]) for k in ours) < 1e-6
    assert reading["source_kw"] == pytest.approx(-feeder.dss.Circuit.TotalPower()[0], abs=1e-3)
    again = circuit.preview_customer_pv_limits([])
    np.testing.assert_allclose(again["vmag_pu"], before, atol=1e-9)
    assert circuit.disabled_generators() == 0 and circuit.generators() == []


def test_range_levels_and_samples_agree(client):
    job = study(client, {"samples": 10, "seed": 2})
    result = job["result"]
    assert job["tasks"] == {"done": 10, "total": 10}  # one task per sample
    samples, levels = result["samples"], result["levels"]
    assert [s["sample"] for s in samples] == list(range(10))
    passes = [s["last_pass"]["penetration_pct"] if s["last_pass"] else 0.0 for s in samples]
    assert result["min_hc_pct"] == min(passes) and result["max_hc_pct"] == max(passes)
    assert result["min_hc_kW"] == pytest.approx(min(passes) / 100 * 3490)
    for row in levels:
        assert row["samples_passing"] + sum(row["samples_failing"].values()) == 10
        assert row["samples_passing"] == sum(p >= row["penetration_pct"] for p in passes)
    everyone = [row["penetration_pct"] for row in levels if row["samples_passing"] == 10]
    assert result["min_hc_pct"] == (max(everyone) if everyone else 0.0)
    for sample in samples:  # a sample stops at its first failure, one level above its last pass
        if sample["first_failure"]:
            above = sample["last_pass"]["penetration_pct"] + 10 if sample["last_pass"] else 10
            assert sample["first_failure"]["penetration_pct"] == above
            assert sample["trials"] == round(above / 10)
    top = levels[-1]
    if top["most_frequent_element"]:
        elements = [s["first_failure"]["limited_by"]["element"] for s in samples if s["first_failure"]]
        assert elements.count(top["most_frequent_element"]) == top["most_frequent_element_samples"] \
            == max(elements.count(e) for e in elements)


def test_default_size_ratio_reaches_stop(client):
    """At 250 % (size_ratio 2.5 by default) every customer has PV, 2.5 x its load."""
    result = study(client, {"samples": 1, "penetration_pct": {"start": 250, "stop": 250, "step": 10},
                            "limits": {"voltage_high_pu": 1.2, "thermal_pct": 1000}})["result"]
    assert result["spec"]["size_ratio"] == 2.5
    end = result["samples"][0]["last_pass"] or result["samples"][0]["first_failure"]
    assert len(end["pv"]) == len(deck_loads()) and sum(s["kW"] for s in end["pv"]) == pytest.approx(2.5 * 3490)


def test_the_same_seed_gives_the_same_answer_on_one_worker_and_two(client):
    """(The 2-worker Dask cluster, started with README's lines, is compared in test_cluster.py.)"""
    body = {"samples": 8, "seed": 42, "penetration_pct": {"start": 10, "stop": 150, "step": 20}}
    one = make_app(1)
    try:
        alone = study(one.test_client(), body)["result"]
    finally:
        one.extensions["jobs"].close()
    assert study(client, body)["result"] == alone
    other = study(client, {**body, "seed": 43})["result"]
    assert other["samples"] != alone["samples"]


def test_csv_tables(client):
    job = study(client, {"samples": 3, "seed": 5})
    levels = client.get(f"/jobs/{job['id']}/result?format=csv").data.decode().splitlines()
    assert levels[0] == ("penetration_pct,pv_kW,samples_passing,failing_voltage_high,failing_voltage_low,"
                         "failing_thermal,failing_reverse_power,failing_not_converged,most_frequent_element,"
                         "most_frequent_element_samples")
    assert len(levels) == 1 + 20
    samples = client.get(f"/jobs/{job['id']}/result?format=csv&table=samples")
    assert "samples.csv" in samples.headers["Content-Disposition"]
    lines = samples.data.decode().splitlines()
    assert lines[0].startswith("sample,last_pass_pct,last_pass_kW,") and len(lines) == 4
    hc = client.post("/studies/hosting_capacity?wait=60", json={"buses": ["67"], "step_kw": 500}).json["job"]
    assert_error_shape(client.get(f"/jobs/{hc['id']}/result?format=csv&table=samples"), 422, "table")


@pytest.mark.parametrize("body,field", [
    ({"samples": 0}, "samples"),
    ({"samples": 1001}, "samples"),
    ({"samples": 2.5}, "samples"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**32}, "seed"),
    ({"penetration_pct": {"start": 0}}, "penetration_pct.start"),
    ({"penetration_pct": {"start": "10"}}, "penetration_pct.start"),
    ({"penetration_pct": {"start": 50, "stop": 40}}, "penetration_pct.stop"),
    ({"penetration_pct": {"step": 0}}, "penetration_pct.step"),
    ({"penetration_pct": {"start": 1, "stop": 200, "step": 1}}, "penetration_pct.step"),
    ({"penetration_pct": {"stop": 300}, "size_ratio": 2}, "penetration_pct.stop"),
    ({"penetration_pct": {"stop": 1200}}, "penetration_pct.stop"),
    ({"size_ratio": 0}, "size_ratio"),
    ({"size_ratio": 11}, "size_ratio"),
    ({"limits": {"thermal_pct": "hot"}}, "limits.thermal_pct"),
    ({"hours_of_sun": 3}, "hours_of_sun"),
    ({"hours": ["noon"]}, "hours[0]"),
    ({"hours": [8760]}, "hours[0]"),
    ({"hours": list(range(25))}, "hours"),
    ({"hours": [1], "neighbourhood_shapes": {"15": "commercial"}}, "neighbourhood_shapes"),
    ({"limits": {"preexisting": "ignore"}}, "limits.preexisting"),
    ({"limits": {"worsened_by_pct": -1}}, "limits.worsened_by_pct"),
])
def test_bad_requests_name_the_field_and_queue_nothing(client, body, field):
    before = len(client.get("/jobs").json["jobs"])
    response = client.post(ROUTE, json=body)
    assert response.status_code in (400, 422)
    assert_error_shape(response, response.status_code, field)
    assert len(client.get("/jobs").json["jobs"]) == before


@pytest.mark.parametrize("route,field", [(ROUTE, "samples"), (ROUTE, "seed"), ("/studies/time_series", "hours")])
def test_a_whole_number_beyond_any_bound_is_422_naming_the_field(client, route, field):
    """JSON allows any size of number: one too large to print is still a 422, not a 500."""
    response = client.post(route, data='{"%s": 1%s}' % (field, "0" * 400), content_type="application/json")
    assert "bits" in assert_error_shape(response, 422, field)["message"]


def test_limits_are_said_in_the_message(client):
    assert "at most 100 penetrations" in client.post(ROUTE, json={"penetration_pct": {"start": 1, "stop": 200,
                                                                                      "step": 1}}).json["message"]
    message = client.post(ROUTE, json={"penetration_pct": {"stop": 300}, "size_ratio": 2}).json["message"]
    assert "every customer together" in message and "6980 kW" in message


def test_a_scenario_without_load_is_422(client):
    scenario = client.post("/scenarios", json={}).json["scenario"]["id"]
    for neighbourhood in client.get("/neighbourhoods").json["neighbourhoods"]:
        client.post(f"/scenarios/{scenario}/modify_load_neighbourhood",
                    json={"neighbourhood": neighbourhood["id"], "factor": 0})
    assert_error_shape(client.post(f"/scenarios/{scenario}{ROUTE}", json={}), 422, "penetration_pct")


def test_a_scenario_is_studied_in_its_own_state(client):
    """Neighbourhood 12 at half load: penetration is a share of the scenario's load set-points, and the trials
    start from its state (the first failure and last pass replay there with OpenDSS driven directly)."""
    scenario = client.post("/scenarios", json={}).json["scenario"]["id"]
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json={"neighbourhood": 12, "factor": 0.5})
    neighbourhoods = client.get(f"/scenarios/{scenario}/neighbourhoods").json["neighbourhoods"]
    result = study(client, {"samples": 3, "seed": 9}, prefix=f"/scenarios/{scenario}")["result"]
    assert result["scenario"] == scenario
    assert result["spec"]["total_load_kW"] == pytest.approx(sum(n["kW"] for n in neighbourhoods)) \
        == pytest.approx(3490 - 120)
    half = next(n["loads"] for n in neighbourhoods if n["id"] == 12)
    for sample in result["samples"]:
        for end, fails in ((sample["first_failure"], True), (sample["last_pass"], False)):
            if end is None:
                continue
            feeder = DirectFeeder()
            for load in half:
                feeder.dss.Loads.Name(load)
                kw, kvar = feeder.dss.Loads.kW(), feeder.dss.Loads.kvar()  # (setting kW alone rescales kvar)
                feeder.dss.Loads.kW(kw * 0.5)
                feeder.dss.Loads.kvar(kvar * 0.5)
            feeder.dss.Solution.Solve()
            feeder.own = feeder.measure()
            add_pv_by_hand(feeder.dss, end["pv"])
            feeder.dss.Solution.Solve()
            found = feeder.violates(LIMITS)
            if fails:
                assert found is not None and found[0] == end["limited_by"]["kind"], (found, end["limited_by"])
            else:
                assert found is None


def test_the_command_line_gives_the_apis_numbers(client, tmp_path):
    body = {"samples": 3, "seed": 4, "penetration_pct": {"start": 10, "stop": 100, "step": 30}}
    api = study(client, body)["result"]
    levels, samples = tmp_path / "levels.csv", tmp_path / "samples.csv"
    out = subprocess.run([sys.executable, "-m", "studies", "stochastic-hosting-capacity", "--samples", "3", "--seed",
                          "4", "--start", "10", "--stop", "100", "--step", "30", "--workers", "1", "--out",
                          str(levels), "--samples-out", str(samples)],
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert '"min_hc_pct": %s' % api["min_hc_pct"] in out.stdout
    frame = pd.read_csv(levels)
    assert list(frame["samples_passing"]) == [row["samples_passing"] for row in api["levels"]]
    assert list(pd.read_csv(samples)["last_pass_pct"]) == [
        s["last_pass"]["penetration_pct"] if s["last_pass"] else 0.0 for s in api["samples"]]
    bad = subprocess.run([sys.executable, "-m", "studies", "stochastic-hosting-capacity", "--samples", "0", "--out",
                          str(tmp_path / "x.csv")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: samples: expected 1 to 1000, got 0"


def test_the_docs_figures_are_what_the_study_answers(client):
    """docs/figures/stochastic.json (the base case at 20 samples, and the same samples at the daytime minimum, which
    docs/studies.md quotes) holds what the study answers, figure for figure."""
    import json
    import statistics
    from collections import Counter

    said = json.loads((REPO / "docs" / "figures" / "stochastic.json").read_text(encoding="utf-8"))
    request = {key: said["request"][key] for key in ("penetration_pct", "samples", "seed")}
    result = study(client, request)["result"]
    assert result["spec"]["size_ratio"] == said["request"]["size_ratio"]
    ends = [s["first_failure"] for s in result["samples"] if s["first_failure"]]
    first = min(ends, key=lambda end: end["penetration_pct"])
    last_passes = [s["last_pass"]["penetration_pct"] if s["last_pass"] else 0.0 for s in result["samples"]]
    middle = sorted(last_passes)[(len(last_passes) - 1) // 2:len(last_passes) // 2 + 1]
    assert said["base_case"] == {
        **{key: result[key] for key in ("min_hc_pct", "min_hc_kW", "max_hc_pct", "max_hc_kW")},
        "first_failure": {"penetration_pct": first["penetration_pct"], "pv_kW": first["pv_kW"],
                          "kind": first["limited_by"]["kind"], "element": first["limited_by"]["element"],
                          "value_pu": round(first["limited_by"]["value"], 4)},
        "samples_passing_every_penetration": len(result["samples"]) - len(ends),
        "voltage_high_samples": sum(end["limited_by"]["kind"] == "voltage_high" for end in ends),
        "voltage_high_at_bus_83": sum(end["limited_by"]["kind"] == "voltage_high"
                                      and end["limited_by"]["element"].split(".")[0] == "83" for end in ends),
        "median_last_pass_pct": [middle[0], middle[-1]]}
    assert statistics.median(last_passes) == sum(middle) / len(middle)
    daytime = study(client, {**request, "hours": ["daytime_minimum"]})["result"]
    (hour,) = daytime["hours"]
    ends = [s["first_failure"]["limited_by"] for s in daytime["samples"] if s["first_failure"]]
    by_kind = Counter(end["kind"] for end in ends)
    assert set(by_kind) == {"voltage_high", "thermal"} and len(ends) == len(daytime["samples"])
    assert said["daytime_minimum"] == {
        "hour_of_year": hour["hour_of_year"], "load_kW": round(hour["load_kW"]),
        **{key: daytime[key] for key in ("min_hc_pct", "min_hc_kW", "max_hc_pct", "max_hc_kW")},
        "voltage_high_samples": by_kind["voltage_high"],
        "voltage_high_buses": sorted({end["element"].split(".")[0] for end in ends if end["kind"] == "voltage_high"}),
        "thermal_samples": by_kind["thermal"],
        "thermal_elements": sorted({end["element"] for end in ends if end["kind"] == "thermal"})}


@pytest.mark.parametrize("rule", ["exclude", "worsened"])
def test_hours_and_preexisting_overloads_replay_with_opendss_driven_directly(client, rule):
    """["daytime_minimum", "peak_load"]: each sample's first failure fails at the hour it names, in a bare engine
    in that hour's state, with the kind it names; its last pass passes at every hour; the pre-existing overloads
    are each hour's own (OpenDSS driven directly)."""
    limits = {"preexisting": rule}
    body = {"samples": 5, "seed": 8, "hours": ["daytime_minimum", "peak_load"], "limits": limits}
    result = study(client, body)["result"]
    named = named_hours(client)
    hours = [named["daytime_minimum"], named["peak_load"]]
    assert [(h["name"], h["hour_of_year"]) for h in result["hours"]] == list(zip(["daytime_minimum", "peak_load"],
                                                                                hours))
    judged = {**LIMITS, **limits}
    overloads = [(e.lower(), h) for h in hours for e in DirectFeeder(h).overloaded(judged)]
    assert sorted((p["element"].lower(), p["hour_of_year"]) for p in result["preexisting"]) == sorted(overloads)
    assert overloads  # the peak hour has pre-existing overloads to set apart

    def replay_at(hour: int, pv: list[dict]):
        feeder = DirectFeeder(hour)
        add_pv_by_hand(feeder.dss, pv)
        feeder.dss.Solution.Solve()
        return feeder.violates(judged)

    failures = 0
    for sample in result["samples"]:
        if sample["first_failure"]:
            failures += 1
            bound = sample["first_failure"]["limited_by"]
            assert bound["hour_of_year"] in hours
            found = replay_at(bound["hour_of_year"], sample["first_failure"]["pv"])
            assert found is not None and found[0] == bound["kind"], (sample["sample"], found, bound)
            assert bound["element"].lower() in {e.lower() for e in found[1]}
            earlier = [h for h in hours if h < bound["hour_of_year"]]  # the earliest failing hour binds
            assert all(replay_at(h, sample["first_failure"]["pv"]) is None for h in earlier)
        if sample["last_pass"]:
            assert all(replay_at(h, sample["last_pass"]["pv"]) is None for h in hours), sample["sample"]
    assert failures > 0
