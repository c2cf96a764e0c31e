"""Request and response models: they validate requests and generate the OpenAPI document.

Requests are validated strictly (a `true` is not a number, `5.7` is not a neighbourhood, unknown fields are
refused). Response models document what the routes return; the routes serialise plain data for speed and a
test checks real responses against the document generated from these models.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.circuit import OPS
from engine.results import SECTION_ORDER

_SCHEMA_CACHE: dict[tuple, dict[str, Any]] = {}


class CachedSchemaModel(BaseModel):
    """Every request and response model. flask-openapi3 asks for a model's JSON schema on every request it
    validates (~0.3 ms each) and once per route and status at start-up (ErrorResponse alone about 250 times:
    0.6 s of the start-up); pydantic does not keep it, so it is built once per model and set of arguments.
    flask-openapi3 only reads these dictionaries."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _SCHEMA_CACHE:
            _SCHEMA_CACHE[key] = super().model_json_schema(*args, **kwargs)
        return _SCHEMA_CACHE[key]


class QueryModel(CachedSchemaModel):
    """Query-string and header models."""


def one_or_three(value: int) -> int:
    """Generator phases: 1 or 3."""
    if value not in (1, 3):
        raise ValueError("1 or 3")
    return value


class VoltVarCurve(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    v: list[float] = Field(min_length=4, max_length=4, description="4 increasing voltages, pu (0.5 to 1.5).")
    q: list[float] = Field(min_length=4, max_length=4, description=(
        "Reactive power at each voltage, fraction of kVA (-0.44 to 0.44, not increasing); positive injects."))


class VoltWattCurve(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    v: list[float] = Field(min_length=2, max_length=2, description="2 increasing voltages, pu (0.5 to 1.5).")
    p: list[float] = Field(min_length=2, max_length=2, description=(
        "Active power limit at each voltage, fraction of rated power (0 to 1, not increasing)."))


INVERTER_MODE_DESCRIPTION = (
    "unity: vars 0; constant_pf: at pf; volt_var, volt_watt, volt_var_volt_watt: IEEE 1547-2018 curves "
    "(defaults Category B). An inverter generator is an OpenDSS PVSystem + InvControl (README, Smart inverters).")


class TrialInverter(CachedSchemaModel):
    """A study's trial generator as a smart inverter: its kVA is the trial's kW."""

    model_config = ConfigDict(extra="forbid", strict=True)
    mode: Literal["unity", "constant_pf", "volt_var", "volt_watt", "volt_var_volt_watt"] = Field(
        description=INVERTER_MODE_DESCRIPTION)
    pf: Optional[float] = Field(default=None, description="constant_pf only: -1 to -0.05 or 0.05 to 1; negative "
                                                          "absorbs vars.")
    volt_var: Optional[VoltVarCurve] = Field(default=None, description=(
        "volt_var modes: default v 0.92/0.98/1.02/1.08, q 0.44/0/0/-0.44 (IEEE 1547-2018 Category B)."))
    volt_watt: Optional[VoltWattCurve] = Field(default=None, description=(
        "volt_watt modes: default v 1.06/1.10, p 1.0/0.2 (IEEE 1547-2018)."))


class InverterSettings(TrialInverter):
    """A generator's smart-inverter settings (422 naming the field when a value is out of range)."""

    kva: Optional[float] = Field(default=None, description="Inverter rating, kVA (above 0, up to 100000); "
                                                           "default the generator's kw.")


class AddGeneratorBody(CachedSchemaModel):
    """Add a generator at a bus, or update the one already there with the same phases (an update may change its
    mode: plain, or a smart inverter)."""

    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "single_phase": {"summary": "1-phase, 200 kW at bus 16 (README)",
                         "value": {"bus_name": "16", "phases": 1, "kw": 200}},
        "three_phase": {"summary": "3-phase, 500 kW at bus 67", "value": {"bus_name": "67", "phases": 3, "kw": 500}},
        "volt_var": {"summary": "PV at bus 85 with IEEE 1547 Category B volt-var (README)",
                     "value": {"bus_name": "85", "phases": 1, "kw": 150, "inverter": {"mode": "volt_var"}}},
    }})
    bus_name: str = Field(min_length=1, max_length=64, description="A bus of the feeder, e.g. \"16\" (GET /buses).")
    phases: int = Field(description="1 or 3.", json_schema_extra={"enum": [1, 3]})
    kw: float = Field(description="Active power delivered, kW: 0 to 100000 (422 outside).")
    phase: Optional[int] = Field(
        default=None, description="For 1-phase generators: 1, 2 or 3 (default: the bus's first phase).",
        json_schema_extra={"enum": [1, 2, 3, None]})
    inverter: Optional[InverterSettings] = Field(
        default=None, description="A smart inverter (PV or storage) instead of a constant-kW, unity-power-factor "
                                  "machine: IEEE 1547-2018 volt-var and volt-watt. Omitted: today's generator.")

    _phases_one_or_three = field_validator("phases")(one_or_three)

    @field_validator("phase")
    @classmethod
    def _phase_one_two_or_three(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value not in (1, 2, 3):
            raise ValueError("1, 2 or 3")
        return value


class ScaleNeighbourhoodBody(CachedSchemaModel):
    """Multiply the kW and kvar of every load in a neighbourhood; factors compound."""

    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {
        "scale_down": {"summary": "Neighbourhood 5 to 80 % (README)", "value": {"neighbourhood": 5, "factor": 0.8}},
    }})
    neighbourhood: int = Field(description="Neighbourhood id, as GET /neighbourhoods lists them (1 to 14 on our IEEE 123-bus deck).")
    factor: float = Field(description="Multiplier, 0 to 10 (422 outside); the cumulative factor stays <= 100.")


# ---------------------------------------------------------------------------- responses
class PowerSummary(CachedSchemaModel):
    converged: bool
    total_circuit_power_kW: float = Field(description="Delivered by the substation; positive when importing.")
    total_circuit_power_kVAR: float
    total_load_kW: float = Field(description="Consumed by the loads at the solved voltages.")
    total_load_kVAR: float
    total_generation_kW: float = Field(description="Delivered by the generators added through the API.")
    total_generation_kVAR: float
    total_losses_kW: float
    total_losses_kVAR: float
    voltage_violations: int
    thermal_violations: int
    reverse_power: bool


class VoltageProfile(CachedSchemaModel):
    min_voltage_pu: float
    max_voltage_pu: float
    avg_voltage_pu: float


class BusNodeRow(CachedSchemaModel):
    Bus: str
    Node: int
    VMag_pu: float
    VAngle: float = Field(description="Degrees, referred to the source's phase A.")
    Load_kW: float
    Load_kVAR: float
    Gen_kW: float
    Gen_kVAR: float


class LineFlowRow(CachedSchemaModel):
    Line: str
    Bus1: str
    Bus2: str
    Phases: int
    P_kW: float = Field(description="Total active power entering the line at Bus1.")
    Q_kVAR: float
    I_A: list[float] = Field(description="Current magnitude per phase at Bus1, A.")
    NormAmps: float = Field(description="Normal rating, A: the deck's (for our feeder the conductor's ampacity: "
                                        "Test_Systems/…/LineCodes.dss cites the source), or OpenDSS's default 400 A "
                                        "where the deck gives none (rating_source).")
    EmergAmps: float = Field(description="Emergency rating, A: the deck's (ours: 1.5 x NormAmps), or OpenDSS's "
                                         "default 600 A.")
    rating_source: Literal["deck", "default"] = Field(description=(
        "deck: the line, its LineCode, or its geometry and wires set the rating; default: the deck sets none, so "
        "NormAmps and EmergAmps are OpenDSS's defaults and the loading and any thermal limit on the line rest on a "
        "guess."))
    Loading_pct: float = Field(description="Highest phase current as % of NormAmps.")
    Losses_kW: float
    Switch: bool


class Losses(CachedSchemaModel):
    total_kW: float
    total_kVAR: float
    lines_kW: float
    transformers_kW: float
    percent_of_input: Optional[float] = Field(description="Losses as % of the substation input; null when exporting.")


class VoltageViolation(CachedSchemaModel):
    element: str
    node: int
    value_pu: float
    limit_pu: float
    kind: Literal["undervoltage", "overvoltage"]


class ThermalViolation(CachedSchemaModel):
    element: str
    value_pct: float
    limit_pct: float


class ReversePower(CachedSchemaModel):
    element: str
    value_kW: float
    limit_kW: float


class Violations(CachedSchemaModel):
    voltage_limits_pu: list[float]
    voltage: list[VoltageViolation]
    thermal: list[ThermalViolation]
    reverse_power: Optional[ReversePower]


class Results(CachedSchemaModel):
    """All six sections, unless `?sections=` asked for fewer."""

    power_summary: Optional[PowerSummary] = None
    voltage_profile: Optional[VoltageProfile] = None
    bus_details: Optional[list[BusNodeRow]] = None
    line_flows: Optional[list[LineFlowRow]] = None
    losses: Optional[Losses] = None
    violations: Optional[Violations] = None


class Action(CachedSchemaModel):
    """What a change did. A preview (`?dry_run=true`) carries `dry_run: true` and the sequence it would have had."""

    dry_run: Optional[bool] = Field(default=None, description="true on a preview; absent on applied changes.")


class InverterSettingsOut(CachedSchemaModel):
    """The settings with every default filled in, as journals and exports carry them."""

    mode: str
    kva: float
    pf: Optional[float] = None
    volt_var: Optional[VoltVarCurve] = None
    volt_watt: Optional[VoltWattCurve] = None


#: How a generator connects, as the feeder's system is there (docs/feeder.md, "Generators connect as the system does").
CONN_TEXT = ("wye: each phase to neutral (a 1-phase generator on one node). delta: phase to phase: a 3-phase "
             "generator in delta on a part of the feeder with no ground reference, a 1-phase generator across two "
             "phases there, or across both hot legs of a split-phase 120/240 V service.")


class GeneratorAction(Action):
    type: Literal["add_generator"]
    sequence: int = Field(description="Order in which the server applied this change.")
    generator: str
    bus: str
    phases: int
    nodes: list[int] = Field(description="The nodes it connects to: its phases' (to neutral when wye, in delta "
                                         "when 3-phase delta), or the two a 1-phase delta generator connects across.")
    kw: float
    kv: float = Field(description="Rated kV: line-to-neutral for 1-phase wye, line-to-line for 3-phase and for "
                                  "1-phase across two phases (240 V across the legs of a split-phase service).")
    conn: Literal["wye", "delta"] = Field(description=CONN_TEXT)
    inverter: Optional[InverterSettingsOut] = Field(default=None, description="Inverter generators only.")
    created: bool
    updated: bool


class NeighbourhoodAction(Action):
    type: Literal["modify_load_neighbourhood"]
    sequence: int
    neighbourhood: int
    factor: float
    cumulative_factor: float
    loads_changed: list[str]


class GeneratorChangeResponse(CachedSchemaModel):
    status: Literal["success"]
    action: GeneratorAction
    results: Results


class NeighbourhoodChangeResponse(CachedSchemaModel):
    status: Literal["success"]
    action: NeighbourhoodAction
    results: Results


class StateResponse(CachedSchemaModel):
    model_config = ConfigDict(openapi_extra={"content": {"text/csv": {"schema": {
        "type": "string", "description": "With ?format=csv: bus_details, one row per bus node."}}}})
    status: Literal["success"]
    sequence: int = Field(description="Sequence number of the last change applied (0: none since start-up).")
    results: Results


class ErrorResponse(CachedSchemaModel):
    status: Literal["error"]
    message: str = Field(description="What was wrong: the field and what was expected.")
    field: Optional[str] = None


# ---------------------------------------------------------------------------- read endpoints (issue 3)
class Envelope(CachedSchemaModel):
    status: Literal["success"]


CSV_TOO = ConfigDict(openapi_extra={"content": {"text/csv": {"schema": {
    "type": "string", "description": "With ?format=csv: the table, one row per element, lists space-separated."}}}})


class BusPlace(CachedSchemaModel):
    """Where a bus is and what it is: shared by the bus list and the one-bus answer."""

    name: str
    nodes: list[int]
    kv_base_ln: float = Field(description="Line-to-neutral base voltage, kV.")
    x: float = Field(description="Map coordinate, in the deck's units: the deck's own, or placed (xy_source).")
    y: float
    xy_source: Literal["deck", "placed"] = Field(description=(
        "deck: the coordinates the deck gives; placed: the deck gives none, so the server placed the bus from its "
        "connected neighbours (between the positioned buses around it, as OpenDSS's Interpolate does; a branch "
        "with none beyond it fanned out from its parent; a feeder with none laid out from the source outward)."))
    distance_km: float = Field(description="Distance from the substation along the feeder, km: the deck's energy "
                                           "meters', or summed from the source where it has none (GET /feeders: "
                                           "distances).")
    neighbourhood: Optional[int]


class BusSummary(BusPlace):
    loads: list[str]
    generators: list[str]


class BusesResponse(Envelope):
    model_config = CSV_TOO
    buses: list[BusSummary]


class LoadSetpoint(CachedSchemaModel):
    name: str
    kW: float
    kVAR: float


class GeneratorRow(CachedSchemaModel):
    name: str
    bus: str
    phases: int
    nodes: list[int]
    conn: Literal["wye", "delta"] = Field(description=CONN_TEXT)
    kw: float = Field(description="Set-point, kW.")
    delivered_kW: float
    delivered_kVAR: float = Field(description="Positive delivered, negative absorbed.")
    inverter: Optional[InverterSettingsOut] = Field(default=None, description="Inverter generators only (and the "
                                                                              "three fields below).")
    mode: Optional[str] = None
    kva: Optional[float] = None
    curtailed_kW: Optional[float] = Field(default=None, description="Set-point less delivered.")


class BusDetail(BusPlace):
    voltages: list[BusNodeRow]
    loads: list[LoadSetpoint]
    generators: list[GeneratorRow]
    lines: list[LineFlowRow]
    sequence: int


class BusResponse(Envelope):
    bus: BusDetail


class LinesResponse(Envelope):
    model_config = CSV_TOO
    lines: list[LineFlowRow]


class NeighbourhoodRow(CachedSchemaModel):
    id: int
    buses: list[str]
    loads: list[str]
    base_kW: float
    base_kVAR: float
    kW: float = Field(description="Current set-point: base x cumulative factor.")
    kVAR: float
    cumulative_factor: float


class NeighbourhoodsResponse(Envelope):
    neighbourhoods: list[NeighbourhoodRow]


class GeneratorsResponse(Envelope):
    generators: list[GeneratorRow]


class TransformerRow(CachedSchemaModel):
    name: str
    bus1: str
    bus2: str
    kva: float
    loading_pct: float = Field(description="Highest phase current at bus1 as % of the normal rating.")
    losses_kW: float
    tap: Optional[int] = Field(description="Regulator tap position (-16..16); null for XFM1.")


class TransformersResponse(Envelope):
    model_config = CSV_TOO
    transformers: list[TransformerRow]


class EngineHostInfo(BaseModel):
    host: int = Field(description="The host's number (0 to --engine-hosts - 1).")
    pid: int | None = Field(description="Its process id.")
    rss_mb: float | None = Field(description="Its resident memory in MB (Linux).")
    restarts: int = Field(description="Times it was started again after it died.")
    scenarios: list[str] = Field(description="The live scenarios whose engine it holds.")


class HealthResponse(Envelope):
    ready: bool
    converged: bool
    scenario: str = Field(description="The scenario this answer is about (default for /health).")
    scenarios: int = Field(description="Scenarios held by the server, default included.")
    live_scenarios: int = Field(description="Scenarios with an engine in memory (the others rest on disk).")
    durable: bool = Field(description="true when the server runs with --state and its last write to the state file "
                                      "succeeded: changes are on disk before 200. false without --state, and from "
                                      "a write the disk refused (507) until one succeeds again.")
    studies: dict[str, Any] = Field(description="Where studies run: executor (local) and workers.")
    hosts: list[EngineHostInfo] = Field(description="The engine hosts (--engine-hosts N, N > 1) and the scenarios "
                                                    "each holds; empty when the engines run in the web process.")
    sequence: int
    buses: int
    generators: int


class RemoveAction(Action):
    type: Literal["remove_generator"]
    sequence: int
    name: str
    bus: str
    phases: int
    nodes: list[int]
    conn: Literal["wye", "delta"] = Field(description=CONN_TEXT)
    kw: float
    inverter: Optional[InverterSettingsOut] = None


class RemoveGeneratorResponse(Envelope):
    action: RemoveAction
    results: Results


class ResetAction(Action):
    type: Literal["reset"]
    sequence: int


class ResetResponse(Envelope):
    action: ResetAction
    results: Results


class BusPath(CachedSchemaModel):
    name: str = Field(max_length=64, description="Bus name, e.g. 16 or 150r.")


class GeneratorPath(CachedSchemaModel):
    name: str = Field(max_length=80, description="Generator name, e.g. gen_16_3 (GET /generators).")


RESULT_SECTIONS = SECTION_ORDER  # the results sections, in the order responses list them


class SectionsQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")
    sections: Optional[str] = Field(
        default=None, description=f"Comma-separated subset of the results: {', '.join(RESULT_SECTIONS)} "
                                  f"(default: all). Smaller answers are faster.")

    @field_validator("sections")
    @classmethod
    def _known_sections(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            unknown = [s for s in value.split(",") if s not in RESULT_SECTIONS]
            if unknown:
                raise ValueError(f"a comma-separated list of {', '.join(RESULT_SECTIONS)} (unknown: "
                                 f"{', '.join(unknown)})")
        return value


class StateQuery(SectionsQuery):
    format: Literal["json", "csv"] = Field(default="json", description="csv: the bus_details table.")


class TableQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["json", "csv"] = Field(default="json", description="csv for spreadsheets.")


class EmptyBody(CachedSchemaModel):
    """POST /reset takes an empty JSON object."""

    model_config = ConfigDict(extra="forbid", openapi_extra={"examples": {"empty": {"value": {}}}})


# ---------------------------------------------------------------------------- error messages
def describe_validation_error(error: ValidationError) -> tuple[str, str | None]:
    """Turn pydantic's errors into our message style: 'field: what was expected, got what'.

    Fields are named as a user writes them: `changes[3].kw`, not pydantic's `changes.3.add_generator.kw`."""
    parts, first_field, alternatives = [], None, {}
    for item in error.errors(include_url=False):
        kind, got = item["type"], item.get("input")
        field = field_path(item["loc"]) or "body"
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            field = f"{field}.op"
        first_field = first_field or field
        if field in alternatives and kind not in ("missing", "extra_forbidden"):  # another branch of a union
            expected = item["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
            parts[alternatives[field]] = parts[alternatives[field]].replace(", got ", f", or {expected}, got ", 1)
            continue
        alternatives[field] = len(parts)
        if kind == "missing":
            parts.append(f"{field}: required")
        elif kind == "extra_forbidden":
            parts.append(f"{field}: unknown field")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            parts.append(f"{'body' if field == 'body' else field}: expected a JSON object")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            parts.append(f"{field}: expected one of {', '.join(OPS)}"
                         + (f", got {item['ctx'].get('tag')!r}" if kind == "union_tag_invalid" else ""))
        elif kind in ("string_too_long", "string_too_short", "too_long", "too_short"):
            bound = "at most" if kind.endswith("long") else "at least"
            limit = item["ctx"]["max_length" if kind.endswith("long") else "min_length"]
            unit = "characters" if kind.startswith("string") else "items"
            parts.append(f"{field}: expected {bound} {limit} {unit}")
        else:
            expected = item["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
            shown = _shown(got)
            parts.append(f"{field}: expected {expected}, got {shown}")
    return "; ".join(parts), first_field


UNION_BRANCHES = ("int", "constrained-int", "str", "float")


def field_path(loc: tuple) -> str:
    """('changes', 3, 'add_generator', 'kw') -> 'changes[3].kw' (the union's tag is not a field)."""
    path = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif position and isinstance(loc[position - 1], int) and part in OPS:
            continue
        elif "[" in str(part) or part in UNION_BRANCHES:  # a union's branch (`literal['pv']`, `list[float]`,
            continue                                             # `constrained-int`) is not a field either
        else:
            path += f".{part}" if path else str(part)
    return path


def _shown(value: Any) -> str:
    try:
        shown = orjson.dumps(value).decode()
    except TypeError:
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:60] + "…"


# ---------------------------------------------------------------------------- response headers in the document
def header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


ETAG = {"ETag": header("Strong tag of the scenario's state (\"<scenario>.<sequence>\", or \"<scenario>.<sequence>:gzip\" "
                        "on a gzip-compressed answer); changes exactly when the state does. Send it in If-None-Match "
                        "(reads: 304) or If-Match (changes: 412 if stale).")}
CHANGE_HEADERS = {**ETAG, "Idempotent-Replayed": header("true when this is the stored answer to an earlier "
                                                         "request with the same Idempotency-Key.")}
NOT_MODIFIED = {"description": "Not Modified: the state is the one your If-None-Match names (no body).",
                "headers": ETAG}


def document_headers(models: list[type[BaseModel]], headers: dict[str, Any]) -> None:
    """Name the response headers in the OpenAPI document (flask-openapi3 reads `openapi_extra`)."""
    for model in models:
        extra = dict(model.model_config.get("openapi_extra") or {})
        model.model_config = {**model.model_config, "openapi_extra": {**extra, "headers": headers}}


document_headers([GeneratorChangeResponse, NeighbourhoodChangeResponse, RemoveGeneratorResponse, ResetResponse],
                  CHANGE_HEADERS)
document_headers([StateResponse, BusesResponse, BusResponse, LinesResponse, TransformersResponse,
                   NeighbourhoodsResponse, GeneratorsResponse], ETAG)
