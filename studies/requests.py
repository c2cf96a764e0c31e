"""From a study request (the API's body, or the command line's options made into the same body) to a plan.

One place checks sizes and values and names the field, for the HTTP API and `python -m studies` alike.
"""

from __future__ import annotations

from typing import Any

from engine.inverter_settings import normalize_inverter
from web.study_schemas import (BatchBody, EvAdoptionBody, HostingCapacityBody, LoadHostingCapacityBody,
                               StochasticHostingCapacityBody, StudyHours, TimeSeriesBody)
from engine.checks import MAX_GENERATOR_KW
from engine.errors import SimulationError
from engine.trial_loads import MAX_TRIAL_LOAD_KW, MIN_PF
from studies import ev_adoption, stochastic, time_series
from studies.hosting_capacity import Criteria
from studies.limits import Limits
from studies.hours import HourError, resolve_hours
from studies.jobs import StudyError
from studies.load_hosting_capacity import resolve_load_hours
from studies.plans import (BatchPlan, EvAdoptionPlan, HostingCapacityPlan, LoadHostingCapacityPlan,
                           StochasticHostingCapacityPlan, TimeSeriesPlan)
from studies.time_series import HOURS_PER_YEAR, DeckShapes
from engine.settings import EngineSettings

MAX_BATCH_CASES = 1000
MAX_CASE_CHANGES = 100


class ScenarioInput:
    """What a study reads: the scenario's ops and sequence when it starts, the feeder's buses and neighbourhoods,
    each load's kW set-point and neighbourhood in the engine's order (what named hours are found from), and (for
    the studies that need them) its customers with where their PV connects; the buses that cannot host a
    generator, with the reason."""

    def __init__(self, engine: EngineSettings, scenario: str, ops: list[dict[str, Any]], sequence: int,
                 buses: list[dict[str, Any]], neighbourhood_ids: list[int], load_kw: list[float] | None = None,
                 load_neighbourhoods: list[int | None] | None = None,
                 customers: list[dict[str, Any]] | None = None, refused: dict[str, str] | None = None,
                 load_shapes: dict[str, Any] | None = None) -> None:
        """`load_shapes`: the deck's own (the circuit's `load_shapes()`); None or none on any load: ours."""
        self.engine, self.scenario, self.ops, self.sequence = engine, scenario, ops, sequence
        self.buses, self.neighbourhood_ids = buses, neighbourhood_ids
        self.load_kw, self.load_neighbourhoods = load_kw or [], load_neighbourhoods or []
        self.customers = customers or []
        self.refused = refused or {}
        self.deck = DeckShapes.of(load_shapes) if load_shapes else None


def hosting_capacity_plan(body: HostingCapacityBody, given: ScenarioInput) -> HostingCapacityPlan:
    check_range(body.step_kw, "step_kw", 1.0, 10_000.0)
    check_range(body.max_kw, "max_kw", body.step_kw, MAX_GENERATOR_KW)
    check_range(body.limits.worsened_by_pct, "limits.worsened_by_pct", 0.0, 100.0)
    criteria = Criteria(step_kw=body.step_kw, max_kw=body.max_kw, **body.limits.model_dump())
    resolved, shapes = study_hours(body, given)
    return HostingCapacityPlan(given.engine, given.ops, given.scenario, given.sequence,
                               selected_buses(given.buses, body.buses), body.phases, criteria, resolved, shapes,
                               trial_inverter(body.inverter), given.refused, **series_shapes(shapes, given))


def load_hosting_capacity_plan(body: LoadHostingCapacityBody, given: ScenarioInput) -> LoadHostingCapacityPlan:
    check_range(body.step_kw, "step_kw", 1.0, 10_000.0)
    check_range(body.max_kw, "max_kw", body.step_kw, MAX_TRIAL_LOAD_KW)
    check_range(body.pf, "pf", MIN_PF, 1.0)
    check_range(body.limits.worsened_by_pct, "limits.worsened_by_pct", 0.0, 100.0)
    criteria = Criteria(step_kw=body.step_kw, max_kw=body.max_kw, **body.limits.model_dump())
    resolved, shapes = study_hours(body, given, resolve_load_hours)
    return LoadHostingCapacityPlan(given.engine, given.ops, given.scenario, given.sequence,
                                   selected_buses(given.buses, body.buses), body.phases, criteria, body.pf, resolved,
                                   shapes, given.refused, **series_shapes(shapes, given))


def trial_inverter(inverter: Any) -> dict[str, Any] | None:
    """A study's trial inverter, checked as add_generator checks one (less kVA: each trial's is its kW)."""
    if inverter is None:
        return None
    try:
        return normalize_inverter(inverter.model_dump(exclude_none=True), 1.0, trial=True)
    except SimulationError as error:
        raise StudyError(422, str(error), error.field) from error


def study_hours(body: StudyHours, given: ScenarioInput, resolve: Any = resolve_hours
                ) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """The hours a study starts its trials from, resolved by `resolve` (None: the scenario's state), and their
    shapes."""
    shapes = {"load_shape": load_shape(body.load_shape, given), "neighbourhood_shapes": dict(body.neighbourhood_shapes),
              "generator_shape": body.generator_shape}
    check_neighbourhoods(body.neighbourhood_shapes, given.neighbourhood_ids)
    if body.hours is None:
        return None, None
    try:
        return resolve(body.hours, shapes, given.load_kw, given.load_neighbourhoods, given.deck), shapes
    except HourError as error:
        raise StudyError(422, str(error), error.field) from error


def load_shape(asked: Any, given: ScenarioInput) -> Any:
    """The load shape a study uses: as asked, or (omitted) the deck's own when its loads have them, else ours."""
    if asked is None:
        return time_series.DECK if given.deck is not None else time_series.DEFAULT_LOAD_SHAPE
    if asked == time_series.DECK and given.deck is None:
        raise StudyError(422, "load_shape: this feeder's loads have no load shapes of their own (yearly= or "
                              "daily=); expected one of residential, commercial, pv, or one multiplier per hour",
                         "load_shape")
    return asked


def series_shapes(shapes: dict[str, Any] | None, given: ScenarioInput) -> dict[str, Any]:
    """What a plan needs of the shapes beyond their names (its keyword arguments): `deck`, the deck's shapes when
    the loads follow them, and `load_shapes`, what its result says the loads follow (none without shapes: the
    scenario's own state)."""
    if shapes is None:
        return {}
    deck = given.deck if shapes["load_shape"] == time_series.DECK else None
    return {"deck": deck, "load_shapes": time_series.shapes_followed(
        shapes["load_shape"], shapes["neighbourhood_shapes"], given.load_neighbourhoods, deck.loads if deck else [])}


def time_series_plan(body: TimeSeriesBody, given: ScenarioInput) -> TimeSeriesPlan:
    check_range(body.hours, "hours", 1, HOURS_PER_YEAR)
    check_range(body.start_hour, "start_hour", 0, HOURS_PER_YEAR - 1)
    shape = load_shape(body.load_shape, given)
    check_shape(shape, "load_shape", body.hours)
    check_shape(body.generator_shape, "generator_shape", body.hours)
    check_neighbourhoods(body.neighbourhood_shapes, given.neighbourhood_ids)
    for key, neighbourhood_shape in body.neighbourhood_shapes.items():
        check_shape(neighbourhood_shape, f"neighbourhood_shapes.{key}", body.hours)
    spec = {**body.model_dump(), "load_shape": shape}
    nodes = sum(len(bus["nodes"]) for bus in given.buses)
    return TimeSeriesPlan(given.engine, given.ops, given.scenario, given.sequence, spec, **series_shapes(spec, given),
                          chunk_hours=time_series.chunk_hours(nodes))


def check_neighbourhoods(shapes: dict[str, Any], neighbourhood_ids: list[int]) -> None:
    """Every key of neighbourhood_shapes names a neighbourhood of the feeder."""
    known = {str(n) for n in neighbourhood_ids}
    for key in shapes:
        if key not in known:
            raise StudyError(422, f"neighbourhood_shapes: no neighbourhood {key[:20]!r}; expected one of "
                                  f"{', '.join(sorted(known, key=int))}", "neighbourhood_shapes")


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


def stochastic_hosting_capacity_plan(body: StochasticHostingCapacityBody, given: ScenarioInput
                                     ) -> StochasticHostingCapacityPlan:
    """Bounds named by field: samples, seed, the penetration range (at most 100 levels, within what every
    customer together can hold), size_ratio."""
    check_range(body.samples, "samples", 1, stochastic.MAX_SAMPLES)
    check_range(body.seed, "seed", 0, 2**32 - 1)
    span = body.penetration_pct
    if not span.start > 0:
        raise StudyError(422, f"penetration_pct.start: expected a penetration above 0 %, got {span.start:g}",
                         "penetration_pct.start")
    check_range(span.stop, "penetration_pct.stop", span.start, 100.0 * stochastic.MAX_SIZE_RATIO)
    if not span.step > 0:
        raise StudyError(422, f"penetration_pct.step: expected a step above 0 %, got {span.step:g}",
                         "penetration_pct.step")
    count = (span.stop - span.start) / span.step + 1
    if count > stochastic.MAX_LEVELS + 1e-9:
        raise StudyError(422, f"penetration_pct.step: at most {stochastic.MAX_LEVELS} penetrations, and "
                              f"{span.start:g} to {span.stop:g} by {span.step:g} gives {int(count + 1e-9)}",
                         "penetration_pct.step")
    ratio = stochastic.default_size_ratio(span.stop) if body.size_ratio is None else body.size_ratio
    if not 0 < ratio <= stochastic.MAX_SIZE_RATIO:
        raise StudyError(422, f"size_ratio: expected above 0 and up to {stochastic.MAX_SIZE_RATIO:g}, got {ratio:g}",
                         "size_ratio")
    total = sum(customer["kW"] for customer in given.customers)
    if total <= 0:
        raise StudyError(422, "penetration_pct: the scenario has no load, and penetration is a share of its load kW",
                         "penetration_pct")
    if span.stop > 100.0 * ratio + 1e-9:
        raise StudyError(422, f"penetration_pct.stop: {span.stop:g} % is beyond what every customer together can "
                              f"hold with size_ratio {ratio:g} ({100 * ratio:g} % of the load, {total * ratio:g} kW); "
                              f"lower stop or raise size_ratio", "penetration_pct.stop")
    largest = max(customer["kW"] for customer in given.customers) * ratio
    if largest > MAX_GENERATOR_KW:
        raise StudyError(422, f"size_ratio: the largest customer's system would be {largest:g} kW, above the limit "
                              f"of {MAX_GENERATOR_KW:g} kW per generator", "size_ratio")
    check_range(body.limits.worsened_by_pct, "limits.worsened_by_pct", 0.0, 100.0)
    resolved, shapes = study_hours(body, given)
    spec = {"penetration_pct": span.model_dump(), "samples": body.samples, "seed": body.seed, "size_ratio": ratio}
    return StochasticHostingCapacityPlan(given.engine, given.ops, given.scenario, given.sequence, spec,
                                         given.customers, Limits(**body.limits.model_dump()), resolved, shapes,
                                         trial_inverter(body.inverter), **series_shapes(shapes, given))


def ev_adoption_plan(body: EvAdoptionBody, given: ScenarioInput) -> EvAdoptionPlan:
    """Bounds named by field: samples, seed, the adoption range (above 0, at most 100 %, at most 100 adoptions),
    charger_kW, coincidence, pf; a feeder with no loads has no customers."""
    check_range(body.samples, "samples", 1, ev_adoption.MAX_SAMPLES)
    check_range(body.seed, "seed", 0, 2**32 - 1)
    span = body.adoption_pct
    if not 0 < span.start <= 100:
        raise StudyError(422, f"adoption_pct.start: expected above 0 and up to 100 %, got {span.start:g}",
                         "adoption_pct.start")
    check_range(span.stop, "adoption_pct.stop", span.start, 100.0)
    if not span.step > 0:
        raise StudyError(422, f"adoption_pct.step: expected a step above 0 %, got {span.step:g}", "adoption_pct.step")
    count = (span.stop - span.start) / span.step + 1
    if count > ev_adoption.MAX_LEVELS + 1e-9:
        raise StudyError(422, f"adoption_pct.step: at most {ev_adoption.MAX_LEVELS} adoptions, and {span.start:g} to "
                              f"{span.stop:g} by {span.step:g} gives {int(count + 1e-9)}", "adoption_pct.step")
    check_range(body.charger_kW, "charger_kW", ev_adoption.MIN_CHARGER_KW, ev_adoption.MAX_CHARGER_KW)
    if not 0 < body.coincidence <= 1:
        raise StudyError(422, f"coincidence: expected above 0 and up to 1, got {body.coincidence:g}", "coincidence")
    check_range(body.pf, "pf", MIN_PF, 1.0)
    check_range(body.limits.worsened_by_pct, "limits.worsened_by_pct", 0.0, 100.0)
    if not given.customers:
        raise StudyError(422, "adoption_pct: the feeder has no loads, and adoption is a share of its customers (its "
                              "loads)", "adoption_pct")
    resolved, shapes = study_hours(body, given, resolve_load_hours)
    spec = {"adoption_pct": span.model_dump(), "samples": body.samples, "seed": body.seed,
            "charger_kW": body.charger_kW, "coincidence": body.coincidence, "pf": body.pf}
    return EvAdoptionPlan(given.engine, given.ops, given.scenario, given.sequence, spec, len(given.customers),
                          Limits(**body.limits.model_dump()), resolved, shapes, **series_shapes(shapes, given))


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
        raise StudyError(422, f"{field}: expected {shown(low)} to {shown(high)}, got {shown(value)}", field)


def shown(value: float) -> str:
    """A number as a message writes it: floats by %g, whole numbers in full, one too large to print (JSON allows
    any size) by its size."""
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"a whole number of {value.bit_length()} bits"
    return f"{value:g}" if isinstance(value, float) else str(value)


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
