"""Request and response models of studies and their jobs.

Split from `schemas.py` so each reads in one sitting; a batch case's changes are the scenario documents' ops.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, field_validator

from engine.settings import ANSI_RANGE_A_PU
from web.scenario_schemas import ChangeOp
from web.schemas import CachedSchemaModel, Envelope, QueryModel, TrialInverter, document_headers, header, one_or_three


class Limits(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    voltage_high_pu: float = Field(default=ANSI_RANGE_A_PU[1], description="A trial violates when a node is above this.")
    voltage_low_pu: float = Field(default=ANSI_RANGE_A_PU[0], description="... or below this and lower than in the state the "
                                                            "trial started from.")
    thermal_pct: float = Field(default=100.0, description="... or a line or transformer above this % of its normal "
                                                          "rating (pre-existing overloads: see preexisting).")
    reverse_power: bool = Field(default=False, description="true: a trial violates when the substation exports.")
    preexisting: Literal["exclude", "worsened"] = Field(default="exclude", description=(
        "An element already above thermal_pct in the state a trial starts from is pre-existing. exclude: never a "
        "limit (the result lists it); worsened: every element counts only once more than worsened_by_pct points "
        "above its own starting loading."))
    worsened_by_pct: float = Field(default=1.0, description="With preexisting worsened: the rise that counts, "
                                                            "percentage points (0 to 100).")


ShapeName = Literal["residential", "commercial", "pv"]
LoadShapeName = Literal["residential", "commercial", "pv", "deck"]
LOAD_SHAPE = ("Omitted: the deck's own load shapes when its loads have them (yearly=, else daily=; a load without "
              "one stays at its set-point), else residential. deck: those (a 422 on a feeder without them)")
HourItem = Union[Annotated[int, Field(ge=0, le=8759)], Literal["peak_load", "daytime_minimum"]]


class StudyHours(CachedSchemaModel):
    """The hours a hosting-capacity study (per bus or stochastic) starts its trials from, and the shapes they are
    found and prepared with."""

    hours: Optional[list[HourItem]] = Field(default=None, min_length=1, max_length=24, description=(
        "Omitted: the scenario's state. Else up to 24 hours of the year (0-8759) or named hours: peak_load (the "
        "highest total load kW under the shapes), daytime_minimum (the lowest among hours whose generator shape is "
        ">= 0.5); on a tie the earliest. Each hour's state is a 1-hour time series' from that hour; a trial passes "
        "only if it passes at every hour (a bus's capacity is its least over the hours)."))
    load_shape: Optional[LoadShapeName] = Field(default=None, description=(
        f"With hours: as in a time series, by name. {LOAD_SHAPE}."))
    neighbourhood_shapes: dict[str, ShapeName] = Field(default_factory=dict, description=(
        'With hours: per neighbourhood id ("1".."14"), its own shape instead of load_shape.'))
    generator_shape: ShapeName = Field(default="pv", description="With hours: multiplier of the scenario's "
                                                                 "generators (not the study's own).")


class HostingCapacityBody(StudyHours):
    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "all": {"summary": "Every bus, 3-phase where possible (README)", "value": {"buses": ["all"]}},
        "two": {"summary": "Buses 67 and 35, 50 kW steps", "value": {"buses": ["67", "35"], "step_kw": 50}},
        "hours": {"summary": "Three buses at the daytime minimum and the peak (README)",
                  "value": {"buses": ["85", "114", "92"], "hours": ["daytime_minimum", "peak_load"],
                            "limits": {"preexisting": "exclude"}}},
        "volt_var": {"summary": "Bus 85 with a volt-var trial generator (README)",
                     "value": {"buses": ["85"], "inverter": {"mode": "volt_var"}}},
    }})
    buses: list[str] = Field(default=["all"], min_length=1, max_length=200,
                             description='["all"] or bus names (GET /buses).')
    phases: int = Field(default=3, description="3: 3-phase where the bus has phases 1-2-3, else 1-phase on its first "
                                               "phase; 1: always 1-phase.", json_schema_extra={"enum": [1, 3]})
    step_kw: float = Field(default=10.0, description="Resolution, kW (1 to 10000).")
    max_kw: float = Field(default=10_000.0, description="Largest size tried, kW (up to 100000).")
    limits: Limits = Field(default_factory=Limits)
    inverter: Optional[TrialInverter] = Field(default=None, description=(
        "The trial generator as a smart inverter (IEEE 1547-2018 modes, as add_generator's inverter) whose kVA is "
        "the trial's kW. Omitted: a constant-kW, unity-power-factor generator."))

    _phases_one_or_three = field_validator("phases")(one_or_three)


LoadHourItem = Union[Annotated[int, Field(ge=0, le=8759)], Literal["peak_load", "evening_peak"]]


class LoadHostingCapacityBody(StudyHours):
    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "all": {"summary": "Every bus, 3-phase where possible", "value": {"buses": ["all"]}},
        "chargers": {"summary": "Three buses at the evening peak, 7.2 kW steps at 0.95 lagging",
                     "value": {"buses": ["85", "114", "92"], "step_kw": 7.2, "max_kw": 2000, "pf": 0.95,
                               "hours": ["evening_peak", "peak_load"]}},
    }})
    hours: Optional[list[LoadHourItem]] = Field(default=None, min_length=1, max_length=24, description=(
        "Omitted: the scenario's state. Else up to 24 hours of the year (0-8759) or named hours: peak_load (the "
        "highest total load kW under the shapes), evening_peak (the highest among the hours from 16:00 to 21:00, "
        "hour of the year % 24 in 16..20); on a tie the earliest. Each hour's state is a 1-hour time series' from "
        "that hour; a bus's capacity is its least over the hours."))
    buses: list[str] = Field(default=["all"], min_length=1, max_length=200,
                             description='["all"] or bus names (GET /buses).')
    phases: int = Field(default=3, description="3: a 3-phase load where the bus has phases 1-2-3, else 1-phase on its "
                                               "first phase; 1: always 1-phase. Connected as a trial generator is "
                                               "(phase to phase where ungrounded, 240 V on a split-phase service).",
                        json_schema_extra={"enum": [1, 3]})
    step_kw: float = Field(default=10.0, description="Resolution, kW (1 to 10000).")
    max_kw: float = Field(default=10_000.0, description="Largest load tried, kW (up to 100000).")
    pf: float = Field(default=0.95, description=(
        "The new load's power factor, lagging (0.5 to 1). Default 0.95: within SAE J2894/1's power-quality "
        "requirements for EV chargers (docs/studies.md)."))
    limits: Limits = Field(default_factory=Limits)

    _phases_one_or_three = field_validator("phases")(one_or_three)


class PenetrationRange(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    start: float = Field(default=10.0, description="First penetration, % of the scenario's total load kW (above 0).")
    stop: float = Field(default=200.0, description="Last penetration, % (at least start; at most size_ratio x 100).")
    step: float = Field(default=10.0, description="Step, % (above 0; at most 100 penetrations in all).")


class StochasticHostingCapacityBody(StudyHours):
    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "base": {"summary": "20 samples, 10 to 200 % (README)",
                 "value": {"penetration_pct": {"start": 10, "stop": 200, "step": 10}, "samples": 20, "seed": 1}},
    }})
    penetration_pct: PenetrationRange = Field(default_factory=PenetrationRange, description=(
        "Penetrations studied: PV kW as a % of the scenario's total load kW set-points."))
    samples: int = Field(default=20, description="Random placements (seeded customer orders), 1 to 1000.")
    seed: int = Field(default=1, description="Seed of the placements, 0 to 4294967295: the same seed gives the same "
                                             "answer on any executor.")
    size_ratio: Optional[float] = Field(default=None, description=(
        "Each customer's PV kW / its load kW (above 0, up to 10). Default: max(1, stop / 100), the least that "
        "reaches stop when it is above 100 %."))
    limits: Limits = Field(default_factory=Limits)
    inverter: Optional[TrialInverter] = Field(default=None, description=(
        "Every customer's system as a smart inverter (IEEE 1547-2018 modes, as add_generator's inverter), each "
        "rated at its own kW. Omitted: constant-kW, unity-power-factor generators."))



class AdoptionRange(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    start: float = Field(default=10.0, description="First adoption, % of the customers (above 0).")
    stop: float = Field(default=100.0, description="Last adoption, % (at least start, at most 100).")
    step: float = Field(default=10.0, description="Step, % (above 0; at most 100 adoptions in all).")


class EvAdoptionBody(StudyHours):
    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "base": {"summary": "20 samples, 10 to 100 % of customers, 7.2 kW chargers",
                 "value": {"adoption_pct": {"start": 10, "stop": 100, "step": 10}, "samples": 20, "seed": 1}},
        "evening": {"summary": "At the evening peak, 11.5 kW chargers at a coincidence of 0.5",
                    "value": {"samples": 10, "charger_kW": 11.5, "coincidence": 0.5, "hours": ["evening_peak"]}},
    }})
    hours: Optional[list[LoadHourItem]] = Field(default=None, min_length=1, max_length=24, description=(
        "Omitted: the scenario's state. Else up to 24 hours of the year (0-8759) or named hours, as in load hosting "
        "capacity: peak_load, evening_peak; an adoption passes only if it passes at every hour."))
    adoption_pct: AdoptionRange = Field(default_factory=AdoptionRange, description=(
        "Adoptions studied: customers (the deck's loads) with a charger, as a % of all customers."))
    samples: int = Field(default=20, description="Random placements (seeded customer orders), 1 to 1000.")
    seed: int = Field(default=1, description="Seed of the placements, 0 to 4294967295: the same seed gives the same "
                                             "answer on any executor.")
    charger_kW: float = Field(default=7.2, description=(
        "Each charger's rating, kW (0.1 to 1000). Default 7.2: SAE J1772 AC Level 2 at 30 A, 240 V."))
    coincidence: float = Field(default=1.0, description=(
        "Share of each charger's rating drawn at once (above 0, up to 1). Default 1: every charger at full power, "
        "the worst case (docs/studies.md)."))
    pf: float = Field(default=0.95, description="The chargers' power factor, lagging (0.5 to 1), as load hosting "
                                                "capacity's.")
    limits: Limits = Field(default_factory=Limits)

ShapeSpec = Union[Literal["residential", "commercial", "pv"], list[float]]
LoadShapeSpec = Union[LoadShapeName, list[float]]


class TimeSeriesBody(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "day": {"summary": "A day in late June (README)", "value": {"hours": 24, "start_hour": 4320}},
        "year": {"summary": "A year, commercial load in neighbourhood 3",
                 "value": {"hours": 8760, "start_hour": 0, "neighbourhood_shapes": {"3": "commercial"}}},
    }})
    hours: int = Field(default=24, description="1 to 8760.")
    start_hour: int = Field(default=4320, description="Hour of the year of the first hour, 0 to 8759.")
    load_shape: Optional[LoadShapeSpec] = Field(default=None, description=(
        f"A shape name or one multiplier per hour. {LOAD_SHAPE}; the result's load_shapes says which."))
    neighbourhood_shapes: dict[str, ShapeSpec] = Field(default_factory=dict, description=(
        'Per neighbourhood id ("1".."14"): its own shape instead of load_shape.'))
    generator_shape: ShapeSpec = Field(default="pv", description="Multiplier of every generator's set-point.")


class BatchCase(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Optional[str] = Field(default=None, min_length=1, max_length=64)
    changes: list[ChangeOp] = Field(description="Ops and fields exactly as the change routes take them.")


class BatchBody(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {"pv": {
        "summary": "Two placements of 500 kW (README)", "value": {"cases": [
            {"name": "pv67", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500}]},
            {"name": "pv35", "changes": [{"op": "add_generator", "bus_name": "35", "phases": 3, "kw": 500}]}]}}}})
    cases: list[BatchCase] = Field(min_length=1, description="Up to 1000 cases of up to 100 changes each.")


class StudyQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")
    wait: float = Field(default=0, ge=0, le=60, description="Seconds to wait for the study to finish: 200 with the "
                                                            "finished job if it does, else 202 as without.")


class JobPath(CachedSchemaModel):
    job_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class JobResultQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["json", "csv"] = Field(default="json", description="csv: the result's rows, flattened.")
    table: Optional[Literal["levels", "samples"]] = Field(default=None, description=(
        "With csv, for a result with several tables (stochastic_hosting_capacity, ev_adoption): which one; default "
        "the first (levels)."))


class JobTasks(CachedSchemaModel):
    done: int
    total: int


class JobInfo(CachedSchemaModel):
    id: str
    kind: Literal["hosting_capacity", "time_series", "batch", "stochastic_hosting_capacity", "load_hosting_capacity",
                  "ev_adoption"]
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(description="0 to 1, as tasks complete.")
    tasks: JobTasks
    scenario: str
    sequence: int = Field(description="The scenario's sequence the study read.")
    created_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    error: Optional[str]


class JobDetail(JobInfo):
    result: Optional[dict[str, Any]] = Field(default=None, description="When done: the study's result.")


class JobResponse(Envelope):
    job: JobDetail


class JobsResponse(Envelope):
    jobs: list[JobInfo]


class JobResultResponse(Envelope):
    model_config = ConfigDict(openapi_extra={"content": {"text/csv": {"schema": {
        "type": "string", "description": "With ?format=csv: the rows (buses, hours or cases), flattened."}}}})
    job: str
    kind: str
    result: dict[str, Any]


document_headers([JobResponse], {"Location": header("/jobs/<id> of the study's job (on 202).")})
