"""Hosting capacity: how much generation one bus takes before something breaks, and what breaks first.

For each bus a generator is connected as `add_generator` connects it and previewed (a dry run: the regulators
act, then the circuit goes back to the state the trial started from) at multiples of `step_kw`, found by
doubling and then bisection on one warm engine. The trial at `hosting_capacity_kW` passes and the one a step
above violates (`studies.limits`). A task is one bus at one starting state: the scenario's, or one hour's
(`studies.hours`); the plan keeps, per bus, the least capacity over the hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from engine.errors import NotConvergedError
from engine.interface import StudyEngine
from studies.hours import starting_reading
from studies.limits import (Limits, StartingState, element_names, first_violation, preexisting_entries,
                            starting_state)


@dataclass(frozen=True)
class Criteria(Limits):
    step_kw: float = 10.0
    max_kw: float = 10_000.0


def largest_passing(violation_at: Callable[[int], dict[str, Any] | None], steps_max: int
                    ) -> tuple[int, dict[str, Any] | None]:
    """The largest number of steps (0 to `steps_max`) whose trial passes, found by doubling from one step until a
    trial violates (or `steps_max` passes) and then bisection; and the violation a step above (None: none up to
    `steps_max`). `violation_at(steps)` tries one."""
    passing, failing, bound = 0, None, None
    steps = 1
    while failing is None:
        steps = min(steps, steps_max)
        found = violation_at(steps)
        if found:
            failing, bound = steps, found
        else:
            passing = steps
            if steps == steps_max:
                break
            steps *= 2
    while failing is not None and failing - passing > 1:
        middle = (passing + failing) // 2
        found = violation_at(middle)
        if found:
            failing, bound = middle, found
        else:
            passing = middle
    return passing, bound


def hosting_capacity_of_bus(circuit: StudyEngine, bus: str, phases: int, criteria: Criteria,
                            start: StartingState, inverter: dict[str, Any] | None = None) -> dict[str, Any]:
    """One bus's row from the state the circuit is in (`start`): doubling from one step until a trial violates
    (or max_kw passes), then bisection. With `inverter`, each trial generator is a smart inverter rated at the
    trial's kW; a trial whose controls do not settle is `not_converged`, like one whose power flow does not."""
    layout = circuit.snapshot.layout
    steps_max = max(1, math.floor(criteria.max_kw / criteria.step_kw + 1e-9))
    trials = 0
    nodes: list[int] = []

    def violation_at(steps: int) -> dict[str, Any] | None:
        nonlocal trials, nodes
        trials += 1
        kw = steps * criteria.step_kw
        try:
            nodes, reading = circuit.preview_generator_limits(bus, phases, kw, prefix="hc", inverter=inverter)
        except NotConvergedError:
            return {"kind": "not_converged", "element": None, "value": kw, "limit": None}
        return first_violation(reading, start, criteria, layout)

    passing, bound = largest_passing(violation_at, steps_max)
    capacity = passing * criteria.step_kw
    if bound is None:
        bound = {"kind": "max_kw", "element": None, "value": capacity, "limit": criteria.max_kw}
    return {"bus": bus, "phases": phases, "nodes": nodes, "hosting_capacity_kW": capacity, "limited_by": bound,
            "trials": trials, "reason": None}


def run(circuit: StudyEngine, work: dict[str, Any]) -> dict[str, Any]:
    """A task: the rows of a group of buses from one starting state (`work["hour"]`: None for the scenario's),
    and that state's pre-existing overloads."""
    criteria = Criteria(**work["criteria"])
    hour = work.get("hour")
    with starting_reading(circuit, hour) as reading:
        layout = circuit.snapshot.layout
        start = starting_state(reading, element_names(layout, circuit.transformer_names), criteria, layout)
        rows = [hosting_capacity_of_bus(circuit, bus, phases, criteria, start, work.get("inverter"))
                for bus, phases in work["buses"]]
    return {"rows": rows, "preexisting": preexisting_entries(start, criteria,
                                                             None if hour is None else hour["hour_of_year"])}


def least_over_hours(by_hour: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One bus's row over the hours studied: the least capacity, at its binding hour (the earliest of equals),
    with `limited_by` there, every hour's capacity in `by_hour`, and the trials of all."""
    hours = sorted(by_hour)
    binding = min(hours, key=lambda h: (by_hour[h]["hosting_capacity_kW"], h))
    row = by_hour[binding]
    return {**row, "binding_hour": binding, "trials": sum(by_hour[h]["trials"] for h in hours),
            "by_hour": {str(h): by_hour[h]["hosting_capacity_kW"] for h in hours}}


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: limited_by spread into columns, nodes space-separated, a column per hour studied."""
    bound = row["limited_by"] or {}
    return {"bus": row["bus"], "phases": row["phases"], "nodes": " ".join(map(str, row["nodes"])),
            "hosting_capacity_kW": row["hosting_capacity_kW"], "binding_hour": row.get("binding_hour"),
            "limited_by_kind": bound.get("kind"), "limited_by_element": bound.get("element"),
            "limited_by_value": bound.get("value"), "limited_by_limit": bound.get("limit"), "trials": row["trials"],
            "reason": row["reason"],
            **{f"kW_at_hour_{hour}": kw for hour, kw in (row.get("by_hour") or {}).items()}}
