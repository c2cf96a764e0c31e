"""From a study request (the API's body, or the command line's options made into the same body) to a plan.

One place checks sizes and values and names the field, for the HTTP API and `python -m studies` alike.
"""

from __future__ import annotations

from typing import Any

from study_schemas import BatchBody, HostingCapacityBody, TimeSeriesBody
from simulation_core import MAX_GENERATOR_KW
from studies.hosting_capacity import Criteria
from studies.jobs import StudyError
from studies.plans import BatchPlan, HostingCapacityPlan, TimeSeriesPlan
from studies.time_series import HOURS_PER_YEAR

MAX_BATCH_CASES = 1000
MAX_CASE_CHANGES = 100


class ScenarioInput:
    """What a study reads: the scenario's ops and sequence when it starts, and the feeder's buses and
    neighbourhoods."""

    def __init__(self, engine: dict[str, Any], scenario: str, ops: list[dict[str, Any]], sequence: int,
                 buses: list[dict[str, Any]], neighbourhood_ids: list[int]) -> None:
        self.engine, self.scenario, self.ops, self.sequence = engine, scenario, ops, sequence
        self.buses, self.neighbourhood_ids = buses, neighbourhood_ids


def hosting_capacity_plan(body: HostingCapacityBody, given: ScenarioInput) -> HostingCapacityPlan:
    check_range(body.step_kw, "step_kw", 1.0, 10_000.0)
    check_range(body.max_kw, "max_kw", body.step_kw, MAX_GENERATOR_KW)
    criteria = Criteria(step_kw=body.step_kw, max_kw=body.max_kw, **body.limits.model_dump())
    return HostingCapacityPlan(given.engine, given.ops, given.scenario, given.sequence,
                               selected_buses(given.buses, body.buses), body.phases, criteria)


def time_series_plan(body: TimeSeriesBody, given: ScenarioInput) -> TimeSeriesPlan:
    check_range(body.hours, "hours", 1, HOURS_PER_YEAR)
    check_range(body.start_hour, "start_hour", 0, HOURS_PER_YEAR - 1)
    check_shape(body.load_shape, "load_shape", body.hours)
    check_shape(body.generator_shape, "generator_shape", body.hours)
    known = {str(n) for n in given.neighbourhood_ids}
    for key, shape in body.neighbourhood_shapes.items():
        if key not in known:
            raise StudyError(422, f"neighbourhood_shapes: no neighbourhood {key!r}; expected one of "
                                  f"{', '.join(sorted(known, key=int))}", "neighbourhood_shapes")
        check_shape(shape, f"neighbourhood_shapes.{key}", body.hours)
    return TimeSeriesPlan(given.engine, given.ops, given.scenario, given.sequence, body.model_dump())


def batch_plan(body: BatchBody, given: ScenarioInput) -> BatchPlan:
    if len(body.cases) > MAX_BATCH_CASES:
        raise StudyError(422, f"cases: at most {MAX_BATCH_CASES} cases, got {len(body.cases)}", "cases")
    for position, case in enumerate(body.cases):
        if len(case.changes) > MAX_CASE_CHANGES:
            raise StudyError(422, f"cases[{position}].changes: at most {MAX_CASE_CHANGES} changes per case, "
                                  f"got {len(case.changes)}", f"cases[{position}].changes")
    cases = [{"name": case.name or f"case {position + 1}",
              "changes": [change.model_dump(exclude_none=True) for change in case.changes]}
             for position, case in enumerate(body.cases)]
    return BatchPlan(given.engine, given.ops, given.scenario, given.sequence, cases)


def selected_buses(buses: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    if wanted == ["all"]:
        return buses
    by_name = {bus["name"]: bus for bus in buses}
    chosen = []
    for position, name in enumerate(wanted):
        bus = by_name.get(name.lower())
        if bus is None:
            raise StudyError(422, f"buses[{position}]: unknown bus {name[:40]!r}; GET /buses lists them, or send "
                                  f'["all"]', f"buses[{position}]")
        chosen.append(bus)
    return chosen


def check_range(value: float, field: str, low: float, high: float) -> None:
    if not low <= value <= high:
        raise StudyError(422, f"{field}: expected {low:g} to {high:g}, got {value:g}", field)


def check_shape(shape: Any, field: str, hours: int) -> None:
    """An inline shape: one finite multiplier from 0 to 10 per hour of the study."""
    if isinstance(shape, str):
        return
    if len(shape) != hours:
        raise StudyError(422, f"{field}: expected {hours} multipliers (one per hour), got {len(shape)}", field)
    bad = next((i for i, v in enumerate(shape) if not (0.0 <= v <= 10.0)), None)  # NaN fails too
    if bad is not None:
        raise StudyError(422, f"{field}[{bad}]: expected a multiplier from 0 to 10, got {shape[bad]}",
                         f"{field}[{bad}]")
