"""Studies against references nobody here wrote: OpenDSS driven directly in this test (brute-force hosting
capacity scans, hour-by-hour series) and the change routes themselves (batch cases); plus the jobs' contract."""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from api import create_app
from simulation_core import MODEL_DIR, OpenDSSCircuit
from studies import hours, time_series
from support.direct_feeder import LIMITS, SHAPES, STEP, DirectFeeder, named_hours
from support.helpers import assert_error_shape, finished

@pytest.fixture(scope="module")
def app():
    application = create_app({"TESTING": True, "WORKERS": 2, "MAX_JOBS": 3})
    yield application
    application.extensions["jobs"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


#: IEEE 123's one bus with no ground reference: XFM1's 480 V delta-delta secondary (Transformers.dss).
UNGROUNDED = "610"


def connection(client, bus: str, phases: int) -> tuple[list[int], float, str]:
    """Nodes, rated kV and connection as docs/api.md gives them: phase to phase where the system has no ground."""
    info = client.get(f"/buses/{bus}").json["bus"]
    delta = "delta" if bus == UNGROUNDED else ""
    if phases == 3 and {1, 2, 3} <= set(info["nodes"]):
        return [1, 2, 3], info["kv_base_ln"] * math.sqrt(3), delta
    if delta:
        return info["nodes"][:2], info["kv_base_ln"] * math.sqrt(3), delta
    return [info["nodes"][0]], info["kv_base_ln"], delta


def assert_row_is_the_scan(row: dict, nodes: list[int], scanned: tuple) -> None:
    capacity, found = scanned
    assert row["hosting_capacity_kW"] == pytest.approx(capacity)
    assert row["nodes"] == nodes
    if found:
        kind, elements, value = found
        assert row["limited_by"]["kind"] == kind and row["limited_by"]["element"].lower() in elements, row
    else:
        assert row["limited_by"]["kind"] == "max_kw"


@pytest.mark.parametrize("bus,phases,rule", [("67", 3, "exclude"), ("35", 3, "exclude"), ("16", 1, "exclude"),
                                             ("83", 3, "exclude"), ("75", 1, "exclude"), ("75", 1, "worsened"),
                                             ("103", 1, "worsened"), ("16", 1, "worsened"), ("610", 3, "exclude"),
                                             ("610", 1, "exclude")])
def test_hosting_capacity_equals_a_brute_force_scan(client, bus, phases, rule):
    """The scenario's state, each rule for pre-existing overloads (at 75 and 103 the rules disagree: a 1-phase
    generator there pushes the head's overloaded phase further, which only `worsened` counts)."""
    limits = {**LIMITS, "preexisting": rule}
    body = {"buses": [bus], "phases": phases, "step_kw": STEP, "max_kw": 8000, "limits": {"preexisting": rule}}
    result = finished(client, client.post("/studies/hosting_capacity?wait=60", json=body))["result"]
    row = result["buses"][0]
    nodes, kv, conn = connection(client, bus, phases)
    feeder = DirectFeeder()
    assert_row_is_the_scan(row, nodes, feeder.scan(bus, nodes, kv, limits, 8000, conn))
    assert (row["binding_hour"], row["by_hour"], result["hours"]) == (None, None, None)
    assert {p["element"].lower(): p["value"] for p in result["preexisting"]} == pytest.approx(
        {e.lower(): x for e, x in feeder.overloaded(limits).items()}, rel=1e-6)
    assert all(set(p) == {"element", "value", "limit"} and p["limit"] == 100 for p in result["preexisting"])


@pytest.mark.parametrize("bus,phases", [("85", 1), ("114", 1), ("92", 1), ("67", 3)])
def test_hosting_capacity_over_named_hours_equals_a_scan_at_each_hour(client, bus, phases):
    """["daytime_minimum", "peak_load"]: each hour scanned from its own state; the row is the least of them."""
    body = {"buses": [bus], "phases": phases, "step_kw": STEP, "max_kw": 8000,
            "hours": ["daytime_minimum", "peak_load"]}
    result = finished(client, client.post("/studies/hosting_capacity?wait=60", json=body))["result"]
    row = result["buses"][0]
    named = named_hours(client)
    hours = [named["daytime_minimum"], named["peak_load"]]
    assert [(h["name"], h["hour_of_year"]) for h in result["hours"]] == list(zip(
        ["daytime_minimum", "peak_load"], hours))
    for entry, hour in zip(result["hours"], hours):
        assert entry["load_kW"] == pytest.approx(named["total_kw"] * SHAPES["residential"][hour], rel=1e-9)
    nodes, kv, _ = connection(client, bus, phases)
    scans, overloads = {}, []
    for hour in hours:
        feeder = DirectFeeder(hour)
        scans[hour] = feeder.scan(bus, nodes, kv, LIMITS, 8000)
        overloads += [(e.lower(), hour, x) for e, x in feeder.overloaded(LIMITS).items()]
    assert row["by_hour"] == {str(h): pytest.approx(scans[h][0]) for h in sorted(hours)}
    binding = min(hours, key=lambda h: (scans[h][0], h))
    assert row["binding_hour"] == binding
    assert_row_is_the_scan(row, nodes, scans[binding])
    assert sorted((p["element"].lower(), p["hour_of_year"]) for p in result["preexisting"]) == sorted(
        (e, h) for e, h, _ in overloads)


@pytest.fixture(scope="module")
def all_buses(client):
    body = {"buses": ["all"], "step_kw": 50, "max_kw": 6000, "limits": {"reverse_power": True}}
    return finished(client, client.post("/studies/hosting_capacity", json=body), timeout_s=300)


def test_every_hosting_capacity_row_is_on_its_boundary(client, all_buses):
    """The trial at the capacity passes and the one a step above violates, in a bare engine."""
    limits = {**LIMITS, "reverse_power": True}
    feeder = DirectFeeder()
    rows = all_buses["result"]["buses"]
    assert len(rows) == len(client.get("/buses").json["buses"])
    for row in rows:
        if row["reason"]:
            assert row["hosting_capacity_kW"] is None and row["bus"] in ("94_open", "300_open")
            continue
        assert row["hosting_capacity_kW"] % 50 == 0 and row["trials"] > 0
        _, kv, conn = connection(client, row["bus"], row["phases"])
        nodes, capacity = row["nodes"], row["hosting_capacity_kW"]
        if capacity > 0:
            assert feeder.trial(row["bus"], nodes, kv, capacity, limits, conn) is None, row
        if row["limited_by"]["kind"] == "max_kw":
            assert capacity == 6000
        else:
            above = feeder.trial(row["bus"], nodes, kv, capacity + 50, limits, conn)
            assert above is not None and above[0] == row["limited_by"]["kind"], row


def test_no_bus_is_limited_by_a_preexisting_overload(all_buses):
    listed = {p["element"] for p in all_buses["result"]["preexisting"]}
    assert listed == {"Line.l115", "Line.sw1", "Line.l3", "Line.l7", "Line.l10"}
    bounds = [row["limited_by"]["element"] for row in all_buses["result"]["buses"] if row["limited_by"]]
    assert bounds and not listed & set(bounds)


def test_hosting_capacity_csv_flattens_the_rows(client, all_buses):
    text = client.get(f"/jobs/{all_buses['id']}/result?format=csv").data.decode().splitlines()
    assert text[0] == ("bus,phases,nodes,hosting_capacity_kW,binding_hour,limited_by_kind,limited_by_element,"
                       "limited_by_value,limited_by_limit,trials,reason")
    assert len(text) == 1 + len(all_buses["result"]["buses"])


def test_hosting_capacity_csv_has_a_column_per_hour(client):
    body = {"buses": ["85", "94_open"], "step_kw": STEP, "hours": [4320, "daytime_minimum"]}
    job = finished(client, client.post("/studies/hosting_capacity?wait=60", json=body))
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/result?format=csv").data.decode())))
    row = job["result"]["buses"][0]
    hours = sorted(int(h) for h in row["by_hour"])
    assert [k for k in rows[0] if k.startswith("kW_at_hour_")] == [f"kW_at_hour_{h}" for h in hours]
    assert float(rows[0]["binding_hour"]) == row["binding_hour"] and rows[1]["reason"] and not rows[1]["binding_hour"]
    assert all(float(rows[0][f"kW_at_hour_{h}"]) == row["by_hour"][str(h)] for h in hours)


def test_an_hours_state_is_a_one_hour_series_from_that_hour():
    """What trials at an hour start from is what a 1-hour time series from that hour computes (a generator and a
    neighbourhood factor in the scenario, a neighbourhood with its own shape); afterwards the circuit is back."""
    circuit = OpenDSSCircuit()
    circuit.add_generator("67", 3, 1200.0)
    circuit.scale_neighbourhood_loads(5, 1.2)
    shapes = {"load_shape": "residential", "neighbourhood_shapes": {"3": "commercial"}, "generator_shape": "pv"}
    series = time_series.run(circuit, time_series.chunk_work({**shapes, "start_hour": 4330, "hours": 1}, 0, 1))
    (expected,) = series["rows"]
    with hours.starting_reading(circuit, hours.hour_work(shapes, 4330)) as reading:
        assert (reading["vmag_pu"].min(), reading["vmag_pu"].max()) == (expected["min_voltage_pu"],
                                                                         expected["max_voltage_pu"])
        assert (reading["source_kw"], reading["load_kw"], reading["generation_kw"]) == (
            expected["substation_kW"], expected["load_kW"], expected["generation_kW"])
        assert reading["generation_kw"] == pytest.approx(1200.0 * SHAPES["pv"][4330], rel=1e-6)
    circuit._engine.Solution.Solve()  # back in the scenario's state, to the deck's power-flow tolerance (1e-7)
    assert np.asarray(circuit._engine.Circuit.AllBusMagPu()) == pytest.approx(circuit.snapshot.arrays["vmag_pu"],
                                                                              abs=1e-7)


# ---------------------------------------------------------------------------- time series
def test_a_day_equals_opendss_driven_hour_by_hour(client):
    scenario = client.post("/scenarios", json={"name": "pv"}).json["scenario"]["id"]
    client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 1200})
    client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json={"neighbourhood": 5, "factor": 1.2})
    body = {"hours": 24, "start_hour": 8750, "load_shape": "residential", "neighbourhood_shapes": {"3": "commercial"},
            "generator_shape": "pv"}
    job = finished(client, client.post(f"/scenarios/{scenario}/studies/time_series?wait=60", json=body))
    hours = job["result"]["hours"]
    assert [h["hour_of_year"] for h in hours] == [(8750 + h) % 8760 for h in range(24)]  # wraps at the year's end

    shapes = {name: np.loadtxt(MODEL_DIR / "shapes" / f"{name}.csv") for name in ("residential", "commercial", "pv")}
    neighbourhood_3 = {b.lower() for b in client.get("/neighbourhoods").json["neighbourhoods"][2]["buses"]}
    dss = DirectFeeder().dss
    dss.Text.Command("New Generator.pv bus1=67.1.2.3 phases=3 kv=4.16 kw=1200 pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
    setpoints = {}
    for load in dss.Loads.AllNames():
        dss.Loads.Name(load)
        bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
        factor = 1.2 if load in {"s19a", "s20a", "s22b", "s24c"} else 1.0  # neighbourhood 5's loads
        setpoints[load] = (dss.Loads.kW() * factor, dss.Loads.kvar() * factor,
                           "commercial" if bus in neighbourhood_3 else "residential")
    for load, (kw, kvar, _) in setpoints.items():
        dss.Loads.Name(load)
        dss.Loads.kW(kw)
        dss.Loads.kvar(kvar)
    dss.Solution.Solve()
    for h, row in enumerate(hours):
        year_hour = (8750 + h) % 8760
        for load, (kw, kvar, shape) in setpoints.items():
            dss.Loads.Name(load)
            dss.Loads.kW(kw * shapes[shape][year_hour])
            dss.Loads.kvar(kvar * shapes[shape][year_hour])
        dss.Generators.Name("pv")
        dss.Generators.kW(1200 * shapes["pv"][year_hour])
        dss.Solution.Solve()
        v = np.array(dss.Circuit.AllBusMagPu())
        assert row["min_voltage_pu"] == pytest.approx(v.min(), abs=1e-6)
        assert row["max_voltage_pu"] == pytest.approx(v.max(), abs=1e-6)
        assert row["substation_kW"] == pytest.approx(-dss.Circuit.TotalPower()[0], rel=1e-4)
        assert row["losses_kW"] == pytest.approx(dss.Circuit.Losses()[0] / 1000, rel=1e-4)
        assert row["generation_kW"] == pytest.approx(1200 * shapes["pv"][year_hour], rel=1e-4, abs=1e-6)
    totals = job["result"]["totals"]
    assert totals["generation_kWh"] == pytest.approx(sum(h["generation_kW"] for h in hours))
    assert totals["energy_imported_kWh"] - totals["energy_exported_kWh"] == pytest.approx(
        sum(h["substation_kW"] for h in hours))
    assert client.get(f"/scenarios/{scenario}/state").json["sequence"] == 2  # the study changed nothing


def test_series_longer_than_a_chunk_carries_taps_across(client):
    """Three chunks run one after the other equal one engine driven hour by hour through all 400 hours."""
    job = finished(client, client.post("/studies/time_series?wait=60", json={"hours": 400, "start_hour": 100}))
    hours = job["result"]["hours"]
    assert [h["hour"] for h in hours] == list(range(400)) and job["tasks"]["total"] == 3
    residential = np.loadtxt(MODEL_DIR / "shapes" / "residential.csv")
    dss = DirectFeeder().dss
    setpoints = {}
    for load in dss.Loads.AllNames():
        dss.Loads.Name(load)
        setpoints[load] = (dss.Loads.kW(), dss.Loads.kvar())
    for h, row in enumerate(hours):
        for load, (kw, kvar) in setpoints.items():
            dss.Loads.Name(load)
            dss.Loads.kW(kw * residential[100 + h])
            dss.Loads.kvar(kvar * residential[100 + h])
        dss.Solution.Solve()
        v = np.array(dss.Circuit.AllBusMagPu())
        assert (row["min_voltage_pu"], row["max_voltage_pu"]) == pytest.approx((v.min(), v.max()), abs=1e-6), h
        assert row["substation_kW"] == pytest.approx(-dss.Circuit.TotalPower()[0], rel=1e-4)
    assert job["result"]["totals"]["tap_changes"] > 0


# ---------------------------------------------------------------------------- batch
def test_batch_cases_equal_the_same_changes_through_the_change_routes(client):
    cases = [
        {"name": "pv67", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 900}]},
        {"name": "busy", "changes": [{"op": "modify_load_neighbourhood", "neighbourhood": 12, "factor": 1.6},
                                     {"op": "add_generator", "bus_name": "16", "phases": 1, "kw": 150}]},
        {"name": "refused", "changes": [{"op": "add_generator", "bus_name": "16", "phases": 3, "kw": 1}]},
        {"changes": [{"op": "reset"}, {"op": "add_generator", "bus_name": "35", "phases": 3, "kw": 300}]},
    ] + [{"name": f"pv67 at {kw}", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": kw}]}
         for kw in range(100, 2500, 100)]
    base = client.post("/scenarios", json={}).json["scenario"]["id"]
    client.post(f"/scenarios/{base}/modify_load_neighbourhood", json={"neighbourhood": 3, "factor": 1.3})
    before = client.get(f"/scenarios/{base}/state").data
    job = finished(client, client.post(f"/scenarios/{base}/studies/batch?wait=60", json={"cases": cases}))
    rows = job["result"]["cases"]
    assert [r["name"] for r in rows][:4] == ["pv67", "busy", "refused", "case 4"]
    assert rows[2]["error"]["field"] == "changes[0].phases" and "power_summary" not in rows[2]
    assert client.get(f"/scenarios/{base}/state").data == before
    for case, row in zip(cases, rows):
        if row["error"]:
            continue
        fresh = client.post("/scenarios", json={"from": base}).json["scenario"]["id"]
        for change in case["changes"]:
            op = dict(change)
            route = op.pop("op")
            response = client.post(f"/scenarios/{fresh}/{route}", json=op) if route != "reset" else \
                client.post(f"/scenarios/{fresh}/reset", json={})
            assert response.status_code == 200
        expected = client.get(f"/scenarios/{fresh}/state?sections=power_summary,voltage_profile").json["results"]
        client.delete(f"/scenarios/{fresh}")
        assert row["power_summary"] == pytest.approx(expected["power_summary"], rel=1e-6, abs=1e-6)
        assert row["voltage_profile"] == pytest.approx(expected["voltage_profile"], abs=1e-8)


@pytest.mark.parametrize("body,field", [
    ({"cases": [{"changes": [{"op": "fly"}]}]}, "cases[0].changes[0].op"),
    ({"cases": [{"changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": "x"}]}]},
     "cases[0].changes[0].kw"),
    ({"cases": []}, "cases"),
])
def test_bad_batches_are_400_naming_the_field(client, body, field):
    assert_error_shape(client.post("/studies/batch", json=body), 400, field)


def test_batch_limits_say_the_limit(client):
    many = {"cases": [{"changes": []}] * 1001}
    assert "1000" in assert_error_shape(client.post("/studies/batch", json=many), 422, "cases")["message"]
    long_case = {"cases": [{"changes": [{"op": "reset"}] * 101}]}
    assert "100" in assert_error_shape(client.post("/studies/batch", json=long_case), 422,
                                       "cases[0].changes")["message"]


# ---------------------------------------------------------------------------- jobs
@pytest.mark.parametrize("route,body,field", [
    ("hosting_capacity", {"buses": ["nowhere"]}, "buses[0]"),
    ("hosting_capacity", {"step_kw": 0}, "step_kw"),
    ("hosting_capacity", {"step_kw": 100, "max_kw": 50}, "max_kw"),
    ("hosting_capacity", {"phases": 2}, "phases"),
    ("hosting_capacity", {"hours": [1, 2, 3, "noon"]}, "hours[3]"),
    ("hosting_capacity", {"hours": [1, 2, 3, 8760]}, "hours[3]"),
    ("hosting_capacity", {"hours": [1, 2, 3, 4.5]}, "hours[3]"),
    ("hosting_capacity", {"hours": list(range(25))}, "hours"),
    ("hosting_capacity", {"hours": []}, "hours"),
    ("hosting_capacity", {"limits": {"preexisting": "ignore"}}, "limits.preexisting"),
    ("hosting_capacity", {"limits": {"worsened_by_pct": -1.0}}, "limits.worsened_by_pct"),
    ("hosting_capacity", {"hours": [1], "load_shape": [1.0]}, "load_shape"),
    ("hosting_capacity", {"hours": [1], "neighbourhood_shapes": {"15": "commercial"}}, "neighbourhood_shapes"),
    ("time_series", {"hours": 0}, "hours"),
    ("time_series", {"hours": 8761}, "hours"),
    ("time_series", {"start_hour": 8760}, "start_hour"),
    ("time_series", {"hours": 2, "load_shape": [1.0]}, "load_shape"),
    ("time_series", {"hours": 2, "load_shape": [1.0, -1.0]}, "load_shape[1]"),
    ("time_series", {"load_shape": "sunny"}, "load_shape"),
    ("time_series", {"neighbourhood_shapes": {"15": "commercial"}}, "neighbourhood_shapes"),
])
def test_bad_study_requests_name_the_field(client, route, body, field):
    known = len(client.get("/jobs").json["jobs"])
    response = client.post(f"/studies/{route}", json=body)
    assert response.status_code in (400, 422)
    assert_error_shape(response, response.status_code, field)
    assert len(client.get("/jobs").json["jobs"]) == known  # nothing queued


def test_a_study_answers_202_with_location_and_progress(client):
    response = client.post("/studies/time_series", json={"hours": 700})
    assert response.status_code == 202
    job = response.json["job"]
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert job["kind"] == "time_series" and job["status"] in ("queued", "running") and job["scenario"] == "default"
    seen = set()
    while job["status"] in ("queued", "running"):
        seen.add(job["progress"])
        time.sleep(0.02)
        job = client.get(f"/jobs/{job['id']}").json["job"]
    assert job["status"] == "done" and job["progress"] == 1.0 and len(job["result"]["hours"]) == 700
    assert len(seen) >= 2  # progress moved while it ran
    assert job["id"] in {j["id"] for j in client.get("/jobs").json["jobs"]}
    assert "result" not in client.get("/jobs").json["jobs"][0]


def test_a_change_during_a_study_does_not_disturb_it(client):
    scenario = client.post("/scenarios", json={}).json["scenario"]["id"]
    response = client.post(f"/scenarios/{scenario}/studies/time_series", json={"hours": 500})
    client.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 3000})
    job = finished(client, response)
    assert job["sequence"] == 0
    assert all(h["generation_kW"] == 0 for h in job["result"]["hours"])


@pytest.mark.parametrize("route,body", [
    ("time_series", {"hours": 8760}),
    ("load_hosting_capacity", {"buses": ["all"], "step_kw": 1, "hours": list(range(0, 8760, 400))}),
    ("ev_adoption", {"adoption_pct": {"start": 1, "stop": 100, "step": 1}, "samples": 200}),
])
def test_cancel_stops_the_work_within_a_second(client, route, body):
    job = client.post(f"/studies/{route}", json=body).json["job"]
    time.sleep(0.5)
    started = time.monotonic()
    cancelled = client.delete(f"/jobs/{job['id']}").json["job"]
    assert cancelled["status"] == "cancelled" and time.monotonic() - started < 1.0
    assert cancelled["progress"] < 1
    assert_error_shape(client.get(f"/jobs/{job['id']}/result"), 409, "job")


def test_too_many_jobs_is_429_saying_the_limit(client):
    running = [client.post("/studies/time_series", json={"hours": 8760}).json["job"]["id"] for _ in range(3)]
    body = assert_error_shape(client.post("/studies/time_series", json={"hours": 24}), 429, "jobs")
    assert "3" in body["message"] and "--max-jobs" in body["message"]
    for job in running:
        client.delete(f"/jobs/{job}")


def test_unknown_job_is_404(client):
    assert_error_shape(client.get("/jobs/nothing"), 404, "job")
    assert_error_shape(client.delete("/jobs/nothing"), 404, "job")


@pytest.mark.slow
def test_a_dead_worker_fails_its_job_clearly_and_the_next_study_runs(client):
    job = client.post("/studies/time_series", json={"hours": 8760}).json["job"]
    time.sleep(1.0)
    workers = multiprocessing.active_children()
    assert workers, "the pool's worker processes are children of this process"
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/jobs/{job['id']}").json["job"]
    assert job["status"] == "failed" and "worker process" in job["error"]
    assert client.get("/health").status_code == 200
    again = finished(client, client.post("/studies/time_series?wait=60", json={"hours": 24}))
    assert len(again["result"]["hours"]) == 24
