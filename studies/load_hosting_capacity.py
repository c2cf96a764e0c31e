"""Load hosting capacity: how much new load (EV chargers, heat pumps) one bus takes before something breaks, and
what breaks first.

For each bus a trial load (`engine.trial_loads`: constant power, OpenDSS load model 1, at the request's lagging
power factor) is connected as a trial generator is and previewed (a dry run: the regulators act, then the circuit
goes back to the state the trial started from) at multiples of `step_kw`, found by doubling and then bisection on
one warm engine, as generation's hosting capacity is (`studies.hosting_capacity`). The trial at
`hosting_capacity_kW` passes and the one a step above violates (`studies.limits`, with nodes already below the low
limit set apart as pre-existing, like overloads and high nodes). A task is one bus at one starting state: the
scenario's, or one hour's (`studies.hours`); the plan keeps, per bus, the least capacity over the hours.

Hours: `peak_load` (the hour of the highest total load under the shapes) and `evening_peak` (the highest total
load among the evening hours, 16:00 to 21:00: `EVENING_HOURS`), or hours of the year.
"""

from __future__ import annotations

import math
from typing import Any

from engine.errors import NotConvergedError
from engine.interface import StudyEngine
from studies.hosting_capacity import Criteria, largest_passing
from studies.hours import HourItem, resolve_hours, starting_reading, yearly_load_kw
from studies.limits import element_names, first_violation, preexisting_entries, starting_state
from studies.time_series import DeckShapes

#: The power factor of a new load when the request gives none: 0.95 lagging. SAE J2894/1 (power quality
#: requirements for plug-in electric vehicle chargers) sets a least total power factor for a charger at rated
#: output (summaries of its 2019 edition give 0.90; chargers with active power-factor correction run near unity):
#: 0.95 keeps a compliant charger's reactive draw in the answer without assuming the worst the standard allows.
DEFAULT_PF = 0.95
NAMED_LOAD_HOURS = ("peak_load", "evening_peak")
#: The evening, as hours of the day (hour h of the year is the hour from h % 24 o'clock): 16:00 to 21:00, the
#: 4-9 p.m. peak period of California's residential time-of-use rates (e.g. SCE's TOU-D-4-9PM; periods set under
#: CPUC rulemaking R.15-12-012), when home EV charging and the evening load add up.
EVENING_HOURS = range(16, 21)


def load_capacity_of_bus(circuit: StudyEngine, bus: str, phases: int, pf: float, criteria: Criteria,
                         start: Any) -> dict[str, Any]:
    """One bus's row from the state the circuit is in (`start`, a `studies.limits.StartingState`). A trial whose
    power flow does not converge is `not_converged` (a load beyond what the feeder can carry)."""
    layout = circuit.snapshot.layout
    steps_max = max(1, math.floor(criteria.max_kw / criteria.step_kw + 1e-9))
    trials, nodes = 0, []

    def violation_at(steps: int) -> dict[str, Any] | None:
        nonlocal trials, nodes
        trials += 1
        kw = steps * criteria.step_kw
        try:
            (connected,), reading = circuit.preview_load_limits([{"bus": bus, "phases": phases, "kw": kw, "pf": pf}])
        except NotConvergedError:
            return {"kind": "not_converged", "element": None, "value": kw, "limit": None}
        nodes = connected["nodes"]
        return first_violation(reading, start, criteria, layout)

    passing, bound = largest_passing(violation_at, steps_max)
    capacity = passing * criteria.step_kw
    if bound is None:
        bound = {"kind": "max_kw", "element": None, "value": capacity, "limit": criteria.max_kw}
    return {"bus": bus, "phases": phases, "nodes": nodes, "hosting_capacity_kW": capacity, "limited_by": bound,
            "trials": trials, "reason": None}


def run(circuit: StudyEngine, work: dict[str, Any]) -> dict[str, Any]:
    """A task: the rows of a group of buses from one starting state (`work["hour"]`: None for the scenario's),
    and that state's pre-existing violations (overloads, nodes above the high and below the low limit)."""
    criteria = Criteria(**work["criteria"])
    hour = work.get("hour")
    with starting_reading(circuit, hour) as reading:
        layout = circuit.snapshot.layout
        start = starting_state(reading, element_names(layout, circuit.transformer_names), criteria, layout, low=True)
        rows = [load_capacity_of_bus(circuit, bus, phases, work["pf"], criteria, start)
                for bus, phases in work["buses"]]
    return {"rows": rows, "preexisting": preexisting_entries(start, criteria,
                                                             None if hour is None else hour["hour_of_year"])}


def resolve_load_hours(items: list[HourItem], shapes: dict[str, Any], load_kw: list[float],
                       load_neighbourhoods: list[int | None], deck: DeckShapes | None = None) -> list[dict[str, Any]]:
    """The hours a load study names, as `studies.hours.resolve_hours` gives them, with `evening_peak`: the hour of
    the highest total load kW among the evening hours (`EVENING_HOURS`), the earliest of equals."""
    yearly = yearly_load_kw(shapes, load_kw, load_neighbourhoods, deck)
    evening = [h for h in range(len(yearly)) if h % 24 in EVENING_HOURS]
    evening_peak = max(evening, key=lambda h: (yearly[h], -h))
    numbered = [evening_peak if item == "evening_peak" else item for item in items]
    resolved = resolve_hours(numbered, shapes, load_kw, load_neighbourhoods, deck)
    return [{**hour, "name": "evening_peak"} if item == "evening_peak" else hour
            for hour, item in zip(resolved, items)]
