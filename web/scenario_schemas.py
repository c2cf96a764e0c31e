"""Request and response models of scenarios: their change headers and queries, documents, journals, diffs.

Split from `schemas.py` (the grid's models, which these build on) so each reads in one sitting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from web.schemas import (CHANGE_HEADERS, ETAG, Action, AddGeneratorBody, CachedSchemaModel, Envelope, PowerSummary,
                     QueryModel, Results, ScaleNeighbourhoodBody, SectionsQuery, document_headers, header)


class ChangeQuery(SectionsQuery):
    dry_run: bool = Field(default=False, description="true: answer exactly as the change would, with "
                                                     "`action.dry_run: true`, and change nothing.")


class ChangeHeaders(QueryModel):
    """Optional headers of every change (RFC 9110 preconditions and the IETF Idempotency-Key draft)."""

    model_config = ConfigDict(populate_by_name=False)
    if_match: Optional[str] = Field(default=None, alias="If-Match", max_length=1024, description=(
        "Apply only if the scenario's ETag is one of these (or *); otherwise 412 and nothing is applied."))
    idempotency_key: Optional[str] = Field(default=None, alias="Idempotency-Key", min_length=1, max_length=255,
                                           description=(
        "A key of yours, 1-255 characters: a retry with the same key and body gets the first answer again and "
        "applies nothing; the same key with another body is 422; a retry while the first runs is 409. Kept per "
        "scenario for at least 24 h and the newest 10,000 keys."))


class ReadHeaders(QueryModel):
    if_none_match: Optional[str] = Field(default=None, alias="If-None-Match", max_length=1024, description=(
        "The ETag you hold: 304 with no body while the scenario's state is unchanged."))


SCENARIO_ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                    description="A scenario id from POST /scenarios (or default).")


class ScenarioPath(CachedSchemaModel):
    scenario_id: str = SCENARIO_ID


def scenario_path(path_model: type[BaseModel] | None) -> type[BaseModel]:
    """The path model of a grid route under /scenarios/<scenario_id>: its own path fields plus the id."""
    if path_model is None:
        return ScenarioPath
    return create_model(f"Scenario{path_model.__name__}", __base__=path_model, scenario_id=(str, SCENARIO_ID))


class CreateScenarioBody(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, openapi_extra={"examples": {
        "from_base": {"summary": "A scenario from the base case (README)", "value": {"name": "pv at 67"}},
        "fork": {"summary": "Fork the default scenario's current state", "value": {"name": "copy", "from": "default"}},
    }})
    name: Optional[str] = Field(default=None, min_length=1, max_length=64, description="1-64 printable characters.")
    from_: Optional[str] = Field(default=None, alias="from", max_length=64,
                                 description="Fork the current state of this scenario (default: the base case).")
    feeder: Optional[str] = Field(default=None, min_length=1, max_length=64,
                                  description="The feeder (GET /feeders) whose base case it starts from; default the "
                                              "default feeder. A fork stays on its parent's feeder.")

    @field_validator("name")
    @classmethod
    def _printable(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not value.isprintable():
            raise ValueError("printable characters (no control characters)")
        return value


class AddGeneratorOp(AddGeneratorBody):
    model_config = ConfigDict(extra="forbid", strict=True)
    op: Literal["add_generator"]


class ScaleNeighbourhoodOp(ScaleNeighbourhoodBody):
    model_config = ConfigDict(extra="forbid", strict=True)
    op: Literal["modify_load_neighbourhood"]


class RemoveGeneratorOp(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    op: Literal["remove_generator"]
    name: str = Field(min_length=1, max_length=80)


class ResetOp(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    op: Literal["reset"]


ChangeOp = Annotated[Union[AddGeneratorOp, ScaleNeighbourhoodOp, RemoveGeneratorOp, ResetOp],
                     Field(discriminator="op")]


class FeederId(CachedSchemaModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Optional[str] = Field(default=None, min_length=1, max_length=64,
                                description="The feeder's name where the document was made (documents made before "
                                            "a server served several feeders have none).")
    sha256: str = Field(min_length=64, max_length=64, description="Hash of the feeder model files.")


class ScenarioDocument(CachedSchemaModel):
    """A scenario as plain JSON: the ops its state adds up to, in order (GET …/export, POST /scenarios/import)."""

    model_config = ConfigDict(extra="forbid", strict=True, openapi_extra={"examples": {"pv": {
        "summary": "PV at 67 and a busier neighbourhood 5", "value": {
            "format": "ieee123-scenario", "version": 1, "feeder": {"sha256": "<GET /scenarios/default/export>"},
            "name": "pv at 67", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500},
                                            {"op": "modify_load_neighbourhood", "neighbourhood": 5, "factor": 1.2}]}}}})
    format: Literal["ieee123-scenario"]
    version: int = Field(description="1.")
    feeder: FeederId
    name: Optional[str] = Field(default=None, min_length=1, max_length=64)
    changes: list[ChangeOp] = Field(max_length=10_000)


class ScenarioInfo(CachedSchemaModel):
    id: str
    name: Optional[str]
    sequence: int
    created_at: str = Field(description="UTC, ISO 8601.")
    forked_from: Optional[str]
    changes: int = Field(description="Entries in the journal.")
    live: bool = Field(description="Has an engine in memory (false: rests on disk, rebuilt on first use).")
    feeder: str = Field(description="The feeder it is on (GET /feeders).")
    unavailable: Optional[str] = Field(default=None, description="Only when it cannot be used here: why (its feeder "
                                                                 "is not served, or its deck's files changed since it "
                                                                 "was made). Kept as it is; every use is a 409.")


class ScenarioDetail(ScenarioInfo):
    power_summary: PowerSummary


class ScenariosResponse(Envelope):
    scenarios: list[ScenarioInfo]


class ScenarioResponse(Envelope):
    scenario: ScenarioDetail


class ScenarioCreatedResponse(Envelope):
    scenario: ScenarioInfo
    results: Results


class ScenarioDeletedResponse(Envelope):
    deleted: ScenarioInfo


class JournalRow(CachedSchemaModel):
    sequence: int
    at: str = Field(description="When it was applied, UTC ISO 8601.")
    action: dict[str, Any] = Field(description="The action exactly as the change's response reported it.")


class ChangesResponse(Envelope):
    scenario: str
    since: int = Field(description="The journal lists the changes after this sequence: 0, or the sequence at which "
                                   "a full journal (10,000 changes) was folded into the scenario's starting point.")
    changes: list[JournalRow]


class UndoAction(Action):
    type: Literal["undo"]
    sequence: int
    undid: int = Field(description="Sequence of the change taken back.")


class UndoResponse(Envelope):
    action: UndoAction
    results: Results


class DiffQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")
    against: str = Field(default="base", max_length=64, description="base, or another scenario's id.")
    format: Literal["json", "csv"] = Field(default="json", description="csv: the bus rows.")


class DiffNumber(CachedSchemaModel):
    this: float
    other: float
    delta: float


class DiffBusRow(CachedSchemaModel):
    Bus: str
    Node: int
    VMag_pu: float
    other_VMag_pu: float
    delta_pu: float


class DiffLineRow(CachedSchemaModel):
    Line: str
    P_kW: float
    other_P_kW: float
    delta_kW: float
    Loading_pct: float
    other_Loading_pct: float


class ViolationChanges(CachedSchemaModel):
    new: list[dict[str, Any]] = Field(description="In this scenario, not in the other (type: voltage, thermal, "
                                                  "reverse_power, and the violation's fields).")
    cleared: list[dict[str, Any]] = Field(description="In the other, not in this one.")


class DiffResponse(Envelope):
    model_config = ConfigDict(openapi_extra={"content": {"text/csv": {"schema": {
        "type": "string", "description": "With ?format=csv: the bus rows."}}}})
    scenario: str
    against: str
    sequence: int
    other_sequence: int
    summary: dict[str, DiffNumber]
    buses: list[DiffBusRow] = Field(description="Every node, largest |delta_pu| first.")
    lines: list[DiffLineRow] = Field(description="Every line, largest |delta_kW| first.")
    violations: ViolationChanges


CREATED_HEADERS = {**ETAG, "Location": header("/scenarios/<id> of the new scenario.")}
document_headers([UndoResponse], CHANGE_HEADERS)
document_headers([ChangesResponse, ScenarioResponse, ScenarioDocument], ETAG)
document_headers([ScenarioCreatedResponse], CREATED_HEADERS)
