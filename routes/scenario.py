"""The scenario routes: create, import, list, describe and delete scenarios."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask_openapi3 import OpenAPI

from routes.web import (BEARER, ERROR_RESPONSES, conditional, error_response, json_response, registry, results_body,
                        scenarios_tag, success)
from web.scenario_schemas import (CreateScenarioBody, ScenarioCreatedResponse, ScenarioDeletedResponse, ScenarioDocument,
                              ScenarioPath, ScenarioResponse, ScenariosResponse)
from scenarios import DOCUMENT_VERSION
from web.schemas import NOT_MODIFIED, ErrorResponse, SectionsQuery


def register_scenario_routes(app: OpenAPI) -> None:
    @app.post("/scenarios", tags=[scenarios_tag], security=BEARER,
              responses={201: ScenarioCreatedResponse, 429: ErrorResponse, 507: ErrorResponse, **ERROR_RESPONSES})
    def create_scenario(body: CreateScenarioBody, query: SectionsQuery) -> Response:
        """A new scenario from the base case of a feeder (`feeder`, default: the default feeder; GET /feeders), or a
        fork of another scenario's current state (`from`, on its parent's feeder)."""
        return created(registry().create(body.name, body.from_, body.feeder), query.sections)

    @app.post("/scenarios/import", tags=[scenarios_tag], security=BEARER,
              responses={201: ScenarioCreatedResponse, 429: ErrorResponse, 507: ErrorResponse, **ERROR_RESPONSES})
    def import_scenario(body: ScenarioDocument, query: SectionsQuery) -> Response:
        """A new scenario from a scenario document (GET …/export): its changes applied in order. A document for
        another feeder, of an unknown version, or with a change the grid refuses creates nothing. The scenario is
        made on the served feeder whose deck hash is the document's (409 naming both when none is)."""
        if body.version != DOCUMENT_VERSION:
            return error_response(422, f"version: expected {DOCUMENT_VERSION}, got {body.version}", "version")
        feeders = registry().feeders
        target = feeders.by_sha256(body.feeder.sha256)
        if target is None:
            made_on = f"feeder {body.feeder.name} " if body.feeder.name else "a feeder "
            served = ", ".join(f"{feeder.name} (deck sha256 {feeder.sha256[:12]}…)" for feeder in feeders)
            return error_response(409, f"feeder.sha256: the document was made on {made_on}(deck sha256 "
                                       f"{body.feeder.sha256[:12]}…), which this server does not serve; it serves "
                                       f"{served}", "feeder.sha256")
        ops = [change.model_dump(exclude_none=True) for change in body.changes]
        return created(registry().import_ops(body.name, ops, target), query.sections)

    @app.get("/scenarios", tags=[scenarios_tag], responses={200: ScenariosResponse})
    def list_scenarios() -> Response:
        """Every scenario: id, name, sequence, created_at, forked_from, number of changes, live or resting."""
        return success(scenarios=registry().list())

    @app.get("/scenarios/<scenario_id>", tags=[scenarios_tag],
             responses={200: ScenarioResponse, 304: NOT_MODIFIED, 404: ErrorResponse, 409: ErrorResponse})
    def get_scenario(path: ScenarioPath) -> Response:
        """One scenario with its power summary."""
        scenario, snapshot = registry().snapshot(path.scenario_id)
        return conditional(success(scenario={**scenario.describe(),
                                             "power_summary": snapshot.section("power_summary")}),
                           scenario.etag(snapshot.sequence))

    @app.delete("/scenarios/<scenario_id>", tags=[scenarios_tag], security=BEARER,
                responses={200: ScenarioDeletedResponse, 409: ErrorResponse, 507: ErrorResponse, **ERROR_RESPONSES})
    def delete_scenario(path: ScenarioPath) -> Response:
        """Delete a scenario and its journal (the default scenario cannot be deleted: 409)."""
        return success(deleted=registry().delete(path.scenario_id))


def created(scenario: Any, sections: str | None) -> Response:
    """201 with Location, the scenario and its results."""
    snapshot = scenario.snapshot
    body = orjson.dumps({"status": "success", "scenario": scenario.describe(),
                         "results": orjson.Fragment(results_body(snapshot, sections))})
    response = json_response(body, 201, scenario.etag(snapshot.sequence))
    response.headers["Location"] = f"/scenarios/{scenario.id}"
    return response
