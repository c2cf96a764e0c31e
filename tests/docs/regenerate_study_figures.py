"""Write docs/figures/hosting_capacity.json and inverters.json afresh from the studies test_study_figures.py runs
(the same bodies, the same summaries), when a change moves the answers; then `python docs/figures/render.py`.

    python tests/docs/regenerate_study_figures.py

The test compares every figure with the studies' answers, so a stale file fails it; this script is how to refresh
one deliberately (and the diff of the pages shows what moved).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent), str(HERE)]

import test_study_figures as figures  # noqa: E402
from api import create_app  # noqa: E402
from support.helpers import finished  # noqa: E402


def whole_numbers(value: Any) -> Any:
    """160.0 -> 160, so the pages print whole kW as they always have."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def run_studies() -> dict[str, dict]:
    app = create_app({"TESTING": True, "WORKERS": 2})
    client = app.test_client()
    bodies = {"state": figures.EVERY_BUS, "daytime": {**figures.EVERY_BUS, **figures.DAYTIME},
              "daytime_volt_var": {**figures.EVERY_BUS, **figures.DAYTIME, **figures.VOLT_VAR},
              "peak_85": {"buses": ["85"], "hours": ["peak_load"]},
              "peak_85_volt_var": {"buses": ["85"], "hours": ["peak_load"], **figures.VOLT_VAR}}
    try:
        return {name: finished(client, client.post("/studies/hosting_capacity", json=body), timeout_s=900)["result"]
                for name, body in bodies.items()}
    finally:
        app.extensions["jobs"].close()


def hosting_capacity_figures(results: dict[str, dict], said: dict) -> dict:
    state, daytime = figures.hosting(results["state"]), figures.hosting(results["daytime"])
    thermal = [row["hosting_capacity_kW"] for row in state.values() if row["limited_by"]["kind"] == "thermal"]
    (hour,), (peak,) = results["daytime"]["hours"], results["peak_85"]["hours"]
    ranked = sorted(daytime.values(), key=lambda row: row["hosting_capacity_kW"])
    return {**said,
            "scenario_state": {"buses": len(state), "limited_by": figures.kinds(state), "thermal_least_kW": min(thermal),
                               "thermal_median_kW": statistics.median(thermal), "least": figures.least(state),
                               "median_kW": statistics.median(row["hosting_capacity_kW"] for row in state.values())},
            "daytime_minimum": {"hour_of_year": hour["hour_of_year"], "when": figures.when(hour["hour_of_year"]),
                                "load_kW": round(hour["load_kW"]), "limited_by": figures.kinds(daytime),
                                "least": figures.least(daytime),
                                "median_kW": statistics.median(row["hosting_capacity_kW"] for row in ranked),
                                "most": {"kW": ranked[-1]["hosting_capacity_kW"], "bus": ranked[-1]["bus"]},
                                "next_kW": ranked[-2]["hosting_capacity_kW"]},
            "peak_load": {"hour_of_year": peak["hour_of_year"], "load_kW": round(peak["load_kW"])}}


def inverter_figures(results: dict[str, dict], said: dict) -> dict:
    plain, smart = figures.hosting(results["daytime"]), figures.hosting(results["daytime_volt_var"])
    gains = {bus: smart[bus]["hosting_capacity_kW"] - row["hosting_capacity_kW"] for bus, row in plain.items()}
    low, high = min(gains, key=lambda b: (gains[b], b)), max(gains, key=lambda b: (gains[b], b))
    (before,), (after,) = results["peak_85"]["buses"], results["peak_85_volt_var"]["buses"]
    return {**said, "hour_of_year": results["daytime"]["hours"][0]["hour_of_year"], "buses": len(gains),
            "median_gain_kW": statistics.median(gains.values()),
            "buses_gaining": sum(g > 0 for g in gains.values()), "buses_unchanged": sum(g == 0 for g in gains.values()),
            "buses_losing": sum(g < 0 for g in gains.values()),
            "least": {"bus": low, "gain_kW": gains[low], "plain_kW": plain[low]["hosting_capacity_kW"],
                      "volt_var_kW": smart[low]["hosting_capacity_kW"],
                      "plain_element": plain[low]["limited_by"]["element"],
                      "volt_var_element": smart[low]["limited_by"]["element"]},
            "most": {"bus": high, "gain_kW": gains[high], "plain_kW": plain[high]["hosting_capacity_kW"],
                     "volt_var_kW": smart[high]["hosting_capacity_kW"],
                     "volt_var_element": smart[high]["limited_by"]["element"]},
            "named": [{"bus": row["bus"], "plain_kW": plain[row["bus"]]["hosting_capacity_kW"],
                       "volt_var_kW": smart[row["bus"]]["hosting_capacity_kW"]} for row in said["named"]],
            "peak_load": {"bus": "85", "plain_kW": before["hosting_capacity_kW"],
                          "volt_var_kW": after["hosting_capacity_kW"], "plain_element": before["limited_by"]["element"],
                          "volt_var_element": after["limited_by"]["element"]}}


def main() -> None:
    results = run_studies()
    for topic, make in (("hosting_capacity", hosting_capacity_figures), ("inverters", inverter_figures)):
        path = figures.FIGURES / f"{topic}.json"
        written = whole_numbers(make(results, json.loads(path.read_text(encoding="utf-8"))))
        path.write_text(json.dumps(written, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path.name}: written")


if __name__ == "__main__":
    main()
