"""A long time series runs as chunks of hours one after the other (`studies.time_series.CHUNK_HOURS`), each starting
from the controls the chunk before left: the regulators' taps and the switched capacitor banks. So a series cut
into chunks answers exactly as one run straight through, on a feeder whose capacitor controls switch during the
series: the IEEE 8500-node feeder around hour 4330, where a light-load hour opens capbank1 and capbank2 (before the
banks were carried, each chunk started from the scenario's banks and the hours after a boundary solved elsewhere).

The plan's tasks run here, in this process (`studies.tasks.run_task`), so the chunk length can be made short."""

from __future__ import annotations

import math
from typing import Any

import pytest

from engine.feeder import load_feeder
from engine.settings import EngineSettings
from studies import time_series
from studies.plans import TimeSeriesPlan
from studies.tasks import run_task
from support.paths import SHARED_REFERENCE

IEEE8500 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "8500-Node" / "Master.dss"
SPEC = {"hours": 12, "start_hour": 4324, "load_shape": "residential", "generator_shape": "pv",
        "neighbourhood_shapes": {}}


def run_series(settings: EngineSettings) -> dict[str, Any]:
    plan = TimeSeriesPlan(settings, [], "default", 0, dict(SPEC))
    tasks = plan.first_tasks()
    while tasks:
        tasks = [follow for task in tasks for follow in plan.take(task, run_task(task))]
    return plan.result()


@pytest.mark.slow
def test_a_series_cut_into_chunks_answers_as_one_run_straight_through(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = EngineSettings(feeder=load_feeder(IEEE8500, neighbourhood_file=None))
    straight = run_series(settings)
    monkeypatch.setattr(time_series, "CHUNK_HOURS", 3)
    chunked = run_series(settings)
    assert len(chunked["hours"]) == len(straight["hours"]) == SPEC["hours"]
    for one, other in zip(straight["hours"], chunked["hours"]):
        assert one["taps"] == other["taps"], one["hour_of_year"]
        for key in ("min_voltage_pu", "max_voltage_pu", "substation_kW", "substation_kVAR", "losses_kW"):
            assert other[key] == pytest.approx(one[key], rel=1e-7, abs=1e-7), (one["hour_of_year"], key)
    assert chunked["totals"] == pytest.approx(straight["totals"])


def plan_for(nodes_per_bus: int, buses: int) -> TimeSeriesPlan:
    """A year's plan as the API makes it for a feeder of buses x nodes_per_bus nodes."""
    from studies.requests import ScenarioInput, time_series_plan
    from web.study_schemas import TimeSeriesBody

    given = ScenarioInput(EngineSettings(), "default", [], 0,
                          [{"name": f"b{k}", "nodes": list(range(1, nodes_per_bus + 1))} for k in range(buses)], [1])
    return time_series_plan(TimeSeriesBody(hours=8760, start_hour=0), given)


def test_a_large_feeder_runs_its_year_in_shorter_chunks_of_whole_days() -> None:
    """A week of the 8500-node feeder's hours took 8-15 s, so progress and a cancel waited that long: a feeder of
    thousands of nodes gets chunks of whole days (about 2 s of work each); a small one keeps a week's."""
    small, large = plan_for(3, 93), plan_for(3, 2844)  # 279 nodes (our deck's size), 8,532 (the 8500-node feeder's)
    assert small.chunk_hours == time_series.CHUNK_HOURS == 168 and small.total == math.ceil(8760 / 168)
    assert large.chunk_hours == 24 and large.total == 365
    assert [task["work"]["hours"] for task in large.first_tasks()] == [24]
    assert time_series.chunk_hours(3_000) % 24 == 0 and 24 < time_series.chunk_hours(3_000) < 168
