"""The studies benchmark runs in one command and reports every figure, with the API's hosting capacities equal to
the engine floor's. No timing is asserted (timings are the script's job, on a quiet machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One `--quick` run (6 buses, 336 hours, 10 cases, 60 requests, 40 tasks); the tests read its report."""
    cwd = tmp_path_factory.mktemp("studies-bench")
    out = cwd / "studies.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "studies_bench.py"), "--quick", "--out", str(out)],
                         cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run, json.loads(out.read_text())


def positive(*numbers: float) -> bool:
    return all(isinstance(n, (int, float)) and n > 0 for n in numbers)


def search_trials(capacity_kw: float, step_kw: float, max_kw: float) -> int:
    """How many trials the API's search (doubling from one step, then bisection) makes to end at this capacity."""
    top = int(max_kw / step_kw + 1e-9)
    passing, failing, steps, trials = 0, None, 1, 0
    while failing is None:
        steps, trials = min(steps, top), trials + 1
        if steps * step_kw > capacity_kw:
            failing = steps
        elif steps == top:
            break
        else:
            passing, steps = steps, steps * 2
    while failing is not None and failing - passing > 1:
        middle, trials = (passing + failing) // 2, trials + 1
        passing, failing = (middle, failing) if middle * step_kw <= capacity_kw else (passing, middle)
    return trials


def test_the_floors(short_run):
    floor = short_run[1]["floor"]
    hc, series = floor["hosting_capacity"], floor["time_series"]
    assert hc["buses"] == len(hc["rows"]) == 6 and len(hc["runs"]) == 2
    assert positive(hc["wall_s"], hc["trials"], hc["ms_per_trial"], *hc["runs"])
    for row in hc["rows"]:
        assert row["hosting_capacity_kW"] % 10 == 0 and 0 <= row["hosting_capacity_kW"] <= 10_000
        assert row["kind"] in ("voltage_high", "voltage_low", "thermal", "not_converged", "max_kw")
        assert row["phases"] in (1, 3)
        assert row["trials"] == search_trials(row["hosting_capacity_kW"], 10, 10_000), row
    assert series["hours"] == 336 and positive(series["wall_s"], *series["runs"])


def test_hosting_capacity_through_the_api_equals_the_floor(short_run):
    report = short_run[1]
    floor = report["floor"]["hosting_capacity"]
    runs = report["hosting_capacity"]
    assert set(runs) == {"workers_1", "workers_2", "dask_2"}
    for key, workers in (("workers_1", 1), ("workers_2", 2), ("dask_2", 2)):
        run = runs[key]
        assert run["differ_from_floor"] == [] and run["missing"] == [], key
        assert run["buses"] == 6 and run["tasks"] == 6 and run["trials"] == floor["trials"], key
        assert run["workers"] == workers and positive(run["wall_s"], run["job_s"], run["workers_cpu_s"]), key
        assert run["job_s"] <= run["wall_s"] + 0.01, key


def test_series_batch_and_latency(short_run):
    report = short_run[1]
    for key in ("time_series", "time_series_after_studies"):
        series = report[key]
        assert series["hours"] == 336 and series["tasks"] == 2 and positive(series["wall_s"])
        assert series["max_abs_diff_substation_kW"] < 1e-3 and series["max_abs_diff_voltage_pu"] < 1e-6
        assert series["hours_taps_differ"] == 0
    batch = report["batch"]
    assert batch["cases"] == 10 and batch["tasks"] == 1 and positive(batch["wall_s"], batch["ms_per_case"])
    latency = report["latency"]
    assert latency["study_ran_throughout"] is True
    for key in ("idle", "during_study"):
        assert latency[key]["n"] == 60 and positive(latency[key]["p50"], latency[key]["p90"])


def test_dask_overhead(short_run):
    overhead = short_run[1]["dask_overhead"]
    assert overhead["tasks"] == 40
    for executor in ("dask", "process_pool"):
        for kind in ("trivial", "one_trial_hc"):
            figures = overhead[executor][kind]
            assert positive(figures["one_at_a_time_ms"], figures["all_at_once_ms"]), (executor, kind)


def test_the_report(short_run):
    run, report = short_run
    targets = report["targets"]
    assert len(targets) == 10 and all(t["result"] in ("PASS", "FAIL") for t in targets)
    assert all(isinstance(t["value"], (int, float)) for t in targets)
    named = {t["name"]: t for t in targets}
    assert named["HC buses differing from floor"] == {"name": "HC buses differing from floor", "value": 0,
                                                      "target": "0", "result": "PASS"}
    assert "HC 2 hours --workers 2 / (floor / 2)" in named
    env = report["environment"]
    assert env["cpu"] and env["cpu_count"] >= 1 and env["python"] and env["opendssdirect"]
    assert set(report["other_processes_cpu_pct"]) >= {"floor HC", "HC --workers 2", "latency"}
    for server in report["servers"].values():
        assert server["wrote_into_cwd"] == [] and server["printed_stopped"]
    assert "Targets:" in run.stdout and "Machine:" in run.stdout and "Per-task time" in run.stdout


def test_the_docs_figures_of_the_studies(short_run):
    """The studies' and the stochastic bench's part of docs/figures/bench.json, from this run's JSON, under keys
    the file has."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import docs_figures
    finally:
        sys.path.remove(str(REPO / "bench"))
    report = short_run[1]
    stochastic = json.loads(Path(report["out"]).with_name("studies-stochastic.json").read_text())
    measured = {**docs_figures.studies([{"studies": report}]),
                "stochastic": docs_figures.stochastic([{"stochastic": stochastic}])}
    assert measured["studies"]["hc_floor_s"] == round(report["floor"]["hosting_capacity"]["wall_s"], 2)
    assert measured["studies"]["buses"] == 6 and measured["hours"]["runs"] == 1
    assert measured["stochastic"]["trials"] == stochastic["floor"]["trials"] and measured["stochastic"]["samples"] == 4
    docs = REPO / "docs" / "figures" / "bench.json"
    if docs.exists():
        assert docs_figures.leaves(measured) <= docs_figures.leaves(json.loads(docs.read_text(encoding="utf-8")))


def test_hosting_capacity_at_two_named_hours_equals_its_floor(short_run):
    """Every bus x the daytime minimum and the peak, on the local pool of 2: the same hours, the same capacities
    at each hour and the same trials as the floor (opendssdirect alone, one process)."""
    hours = short_run[1]["hours"]
    floor, api = hours["floor"], hours["api"]
    assert set(floor["hours"]) == {"daytime_minimum", "peak_load"} and api["hours_match_floor"] is True
    assert api["differ_from_floor"] == [] and api["buses"] == floor["buses"] == 6
    assert api["tasks"] == 12 and api["trials"] == floor["trials"] and len(floor["runs"]) == 2
    assert positive(api["wall_s"], floor["wall_s"], hours["ratio_to_floor_over_2"])
    assert "Hosting capacity at " in short_run[0].stdout


def test_a_volt_var_change_and_a_volt_var_study_against_their_floors(short_run):
    """The inverter case (bench/inverter_bench.py): the change's p50 in-process and over HTTP beside the floor's,
    and the volt-var hosting capacity of the same 6 buses equal to the floor's, bus by bus."""
    inverters = short_run[1]["inverters"]
    change, study = inverters["change"], inverters["study"]
    assert change["floor"]["n"] == change["in_process"]["n"] == change["http"]["n"] == 40
    assert positive(change["floor"]["p50"], change["in_process"]["p50"], change["http"]["p50"],
                    change["in_process_over_floor"], *change["floor"]["runs_p50"])
    assert change["http"]["p50"] > change["in_process"]["p50"], "HTTP adds its transport"
    assert study["api"]["differ_from_floor"] == [] and study["api"]["buses"] == study["floor"]["buses"] == 6
    assert study["api"]["trials"] == study["floor"]["trials"] and len(study["floor"]["runs"]) == 2
    named = {t["name"] for t in short_run[1]["targets"]}
    assert {"volt-var change p50 / engine floor", "HC volt-var --workers 2 / (floor / 2)"} <= named
    assert "Volt-var change (new definition, light load)" in short_run[0].stdout
