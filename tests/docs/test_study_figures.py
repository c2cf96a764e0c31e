"""The study figures the docs quote are what the studies answer: docs/figures/hosting_capacity.json (docs/studies.md,
every bus of the base case at its state and at the daytime minimum) and docs/figures/inverters.json
(docs/inverters.md, the gain from a volt-var trial generator). Each figure in the files is compared with the
studies' answers here; tests/docs/test_figures.py checks that the pages say what the files render.
(The stochastic figures are checked where that study is tested: tests/engine/test_stochastic.py.)"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import datetime, timedelta

import pytest

from api import create_app
from support.helpers import finished
from support.paths import REPO

FIGURES = REPO / "docs" / "figures"
EVERY_BUS = {"buses": ["all"]}  # step 10 kW, 3-phase where the bus has A, B and C: the defaults
DAYTIME = {"hours": ["daytime_minimum"]}
VOLT_VAR = {"inverter": {"mode": "volt_var"}}


def figures(topic: str) -> dict:
    return json.loads((FIGURES / f"{topic}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def results():
    """The studies the figures come from, on a fresh app with 2 workers."""
    app = create_app({"TESTING": True, "WORKERS": 2})
    client = app.test_client()
    bodies = {"state": EVERY_BUS, "daytime": {**EVERY_BUS, **DAYTIME},
              "daytime_volt_var": {**EVERY_BUS, **DAYTIME, **VOLT_VAR},
              "peak_85": {"buses": ["85"], "hours": ["peak_load"]},
              "peak_85_volt_var": {"buses": ["85"], "hours": ["peak_load"], **VOLT_VAR}}
    try:
        yield {name: finished(client, client.post("/studies/hosting_capacity", json=body), timeout_s=600)["result"]
               for name, body in bodies.items()}
    finally:
        app.extensions["jobs"].close()


def hosting(result: dict) -> dict[str, dict]:
    """The rows of the buses that can host a generator, by bus."""
    return {row["bus"]: row for row in result["buses"] if row["hosting_capacity_kW"] is not None}


def kinds(rows: dict[str, dict]) -> dict[str, int]:
    return dict(Counter(row["limited_by"]["kind"] for row in rows.values()))


#: How the page says what limits a bus.
LIMIT_WORDS = {"voltage_high": "voltage rise at", "voltage_low": "voltage drop at", "thermal": "the loading of",
               "max_kw": "max_kw"}


def least(rows: dict[str, dict]) -> dict:
    bus = min(rows, key=lambda b: (rows[b]["hosting_capacity_kW"], b))
    bound = rows[bus]["limited_by"]
    return {"kW": rows[bus]["hosting_capacity_kW"], "bus": bus, "element": bound["element"],
            "limit": LIMIT_WORDS[bound["kind"]]}


def when(hour_of_year: int) -> str:
    """An hour of the shapes' (non-leap) year as the page says it: "11:00 on 11 October"."""
    moment = datetime(2001, 1, 1) + timedelta(hours=hour_of_year)
    return f"{moment:%H}:00 on {moment.day} {moment:%B}"


@pytest.mark.slow
def test_the_hosting_capacity_figures_are_what_the_studies_answer(results):
    said = figures("hosting_capacity")
    state, daytime = hosting(results["state"]), hosting(results["daytime"])
    capacities = [row["hosting_capacity_kW"] for row in state.values()]
    thermal = [row["hosting_capacity_kW"] for row in state.values() if row["limited_by"]["kind"] == "thermal"]
    preexisting = {entry["element"] for entry in results["state"]["preexisting"]}
    assert preexisting and not any(row["limited_by"]["element"] in preexisting for row in state.values())
    assert said["scenario_state"] == {
        "buses": len(state), "limited_by": kinds(state), "thermal_least_kW": min(thermal),
        "thermal_median_kW": statistics.median(thermal), "least": least(state),
        "median_kW": statistics.median(capacities)}
    (hour,) = results["daytime"]["hours"]
    (peak,) = results["peak_85"]["hours"]
    ranked = sorted(daytime.values(), key=lambda row: row["hosting_capacity_kW"])
    assert ranked[-1]["limited_by"]["kind"] == "max_kw"
    assert said["daytime_minimum"] == {
        "hour_of_year": hour["hour_of_year"], "when": when(hour["hour_of_year"]), "load_kW": round(hour["load_kW"]),
        "limited_by": kinds(daytime), "least": least(daytime),
        "median_kW": statistics.median(row["hosting_capacity_kW"] for row in ranked),
        "most": {"kW": ranked[-1]["hosting_capacity_kW"], "bus": ranked[-1]["bus"]},
        "next_kW": ranked[-2]["hosting_capacity_kW"]}
    assert said["peak_load"] == {"hour_of_year": peak["hour_of_year"], "load_kW": round(peak["load_kW"])}


@pytest.mark.slow
def test_the_inverter_gain_figures_are_what_the_studies_answer(results):
    said = figures("inverters")
    plain, smart = hosting(results["daytime"]), hosting(results["daytime_volt_var"])
    assert results["daytime_volt_var"]["criteria"]["inverter"] == {
        "mode": "volt_var", "volt_var": {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.44, 0.0, 0.0, -0.44]}}
    gains = {bus: smart[bus]["hosting_capacity_kW"] - row["hosting_capacity_kW"] for bus, row in plain.items()}
    low, high = min(gains, key=lambda b: (gains[b], b)), max(gains, key=lambda b: (gains[b], b))
    assert said["hour_of_year"] == results["daytime"]["hours"][0]["hour_of_year"]
    assert (said["buses"], said["median_gain_kW"]) == (len(gains), statistics.median(gains.values()))
    assert (said["buses_gaining"], said["buses_unchanged"], said["buses_losing"]) == (
        sum(g > 0 for g in gains.values()), sum(g == 0 for g in gains.values()), sum(g < 0 for g in gains.values()))
    assert said["least"] == {"bus": low, "gain_kW": gains[low], "plain_kW": plain[low]["hosting_capacity_kW"],
                             "volt_var_kW": smart[low]["hosting_capacity_kW"],
                             "plain_element": plain[low]["limited_by"]["element"],
                             "volt_var_element": smart[low]["limited_by"]["element"]}
    assert plain[low]["limited_by"]["kind"] == smart[low]["limited_by"]["kind"] == "voltage_high"  # "both times"
    assert said["most"] == {"bus": high, "gain_kW": gains[high], "plain_kW": plain[high]["hosting_capacity_kW"],
                            "volt_var_kW": smart[high]["hosting_capacity_kW"],
                            "volt_var_element": smart[high]["limited_by"]["element"]}
    for row in said["named"]:  # each still limited by voltage rise at its own node
        bus = row["bus"]
        assert (row["plain_kW"], row["volt_var_kW"]) == (plain[bus]["hosting_capacity_kW"],
                                                         smart[bus]["hosting_capacity_kW"])
        assert (smart[bus]["limited_by"]["kind"], smart[bus]["limited_by"]["element"]) == \
            ("voltage_high", f"{bus}.{smart[bus]['nodes'][0]}")
    (before,), (after,) = results["peak_85"]["buses"], results["peak_85_volt_var"]["buses"]
    assert said["peak_load"] == {"bus": "85", "plain_kW": before["hosting_capacity_kW"],
                                 "volt_var_kW": after["hosting_capacity_kW"],
                                 "plain_element": before["limited_by"]["element"],
                                 "volt_var_element": after["limited_by"]["element"]}
