"""The grid routes: changes, the solved state and the tables, each at `/…` (the default scenario) and at
`/scenarios/<scenario_id>/…`."""

from __future__ import annotations

import orjson
from flask import Response, current_app
from flask_openapi3 import OpenAPI

from engine.results import diff_snapshots
from routes.web import (BEARER, CHANGE_RESPONSES, ERROR_RESPONSES, apply_change, conditional, csv_response,
                        error_response, grid, grid_route, is_not_modified, jobs, json_response, not_modified,
                        read_with_etag, registry, results_body, scenarios_tag, service, success, tables)
from web.scenario_schemas import (ChangeHeaders, ChangeQuery, ChangesResponse, DiffQuery, DiffResponse, ReadHeaders,
                              ScenarioDocument, UndoResponse)
from scenarios import export_document
from web.schemas import (NOT_MODIFIED, AddGeneratorBody, BusesResponse, BusPath, BusResponse, EmptyBody, ErrorResponse,
                     GeneratorChangeResponse, GeneratorPath, GeneratorsResponse, HealthResponse, LinesResponse,
                     NeighbourhoodChangeResponse, NeighbourhoodsResponse, RemoveGeneratorResponse, ResetResponse,
                     ScaleNeighbourhoodBody, StateQuery, StateResponse, TableQuery, TransformersResponse)


def register_grid_routes(app: OpenAPI) -> None:
    """The grid routes, each at /… (default scenario) and /scenarios/<scenario_id>/…."""

    @grid_route(app, "post", "/add_generator", tags=[grid], security=BEARER,
                responses={200: GeneratorChangeResponse, **CHANGE_RESPONSES})
    def add_generator(scenario_id: str, body: AddGeneratorBody, query: ChangeQuery, header: ChangeHeaders) -> Response:
        """Add a generator, or update the one at the same bus and phases; returns the re-solved grid."""
        op = {"op": "add_generator", "bus_name": body.bus_name, "phases": body.phases, "kw": body.kw}
        if body.phase is not None:
            op["phase"] = body.phase
        if body.inverter is not None:
            op["inverter"] = body.inverter.model_dump(exclude_none=True)
        return apply_change(scenario_id, op, query, header)

    @grid_route(app, "post", "/modify_load_neighbourhood", tags=[grid], security=BEARER,
                responses={200: NeighbourhoodChangeResponse, **CHANGE_RESPONSES})
    def modify_load_neighbourhood(scenario_id: str, body: ScaleNeighbourhoodBody, query: ChangeQuery,
                                  header: ChangeHeaders) -> Response:
        """Scale the loads of one neighbourhood by a factor (compounding); returns the re-solved grid."""
        op = {"op": "modify_load_neighbourhood", "neighbourhood": body.neighbourhood, "factor": body.factor}
        return apply_change(scenario_id, op, query, header)

    @grid_route(app, "delete", "/generators/<name>", tags=[grid], security=BEARER,
                responses={200: RemoveGeneratorResponse, **CHANGE_RESPONSES})
    def remove_generator(scenario_id: str, path: GeneratorPath, query: ChangeQuery, header: ChangeHeaders) -> Response:
        """Remove a generator added through the API; returns the re-solved grid."""
        return apply_change(scenario_id, {"op": "remove_generator", "name": path.name}, query, header)

    @grid_route(app, "post", "/reset", tags=[grid], security=BEARER, responses={200: ResetResponse, **CHANGE_RESPONSES})
    def reset(scenario_id: str, body: EmptyBody, query: ChangeQuery, header: ChangeHeaders) -> Response:
        """Restore the base case exactly as at start-up (send an empty JSON object)."""
        return apply_change(scenario_id, {"op": "reset"}, query, header)

    @grid_route(app, "post", "/undo", tags=[scenarios_tag], security=BEARER,
                responses={200: UndoResponse, **CHANGE_RESPONSES})
    def undo(scenario_id: str, body: EmptyBody, query: ChangeQuery, header: ChangeHeaders) -> Response:
        """Take back the last change (repeat to walk back): the state is rebuilt from the journal, so the
        results equal those reported before that change. 409 when there is nothing to undo."""
        return apply_change(scenario_id, {"op": "undo"}, query, header)

    @grid_route(app, "get", "/state", tags=[grid],
                responses={200: StateResponse, 304: NOT_MODIFIED, **ERROR_RESPONSES})
    def state(scenario_id: str, query: StateQuery, header: ReadHeaders) -> Response:
        """The current solved state, all sections or those asked for; ?format=csv gives bus_details. No change."""
        scenario, snapshot = registry().snapshot(scenario_id)
        etag = scenario.etag(snapshot.sequence)
        if header.if_none_match and is_not_modified(etag):
            return not_modified(etag)  # without building the body
        if query.format == "csv":
            return conditional(csv_response(snapshot.bus_details, "bus_details.csv"), etag)
        if not query.sections:  # the whole answer's bytes are kept on the (immutable) snapshot
            return conditional(json_response(snapshot.state_json), etag)
        body = orjson.dumps({"status": "success", "sequence": snapshot.sequence,
                             "results": orjson.Fragment(results_body(snapshot, query.sections))})
        return conditional(json_response(body), etag)

    @grid_route(app, "get", "/health", tags=[service],
                responses={200: HealthResponse, 404: ErrorResponse, 409: ErrorResponse})
    def health(scenario_id: str) -> Response:
        """Liveness and readiness: the model is compiled and the last solve converged."""
        with registry().engine(scenario_id) as (scenario, circuit):
            facts = circuit.health()
        store, pool = registry().store, current_app.extensions["engine_pool"]
        hosts = pool.describe(registry().live_engines()) if pool else []
        return success(**facts, scenario=scenario.id, scenarios=len(registry()), live_scenarios=registry().live_count(),
                       durable=store.durable and store.writable, studies=jobs().executor.describe(), hosts=hosts)

    @grid_route(app, "get", "/buses", tags=[tables],
                responses={200: BusesResponse, 304: NOT_MODIFIED, **ERROR_RESPONSES})
    def buses(scenario_id: str, query: TableQuery) -> Response:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators."""
        if query.format == "csv":
            rows, etag = read_with_etag(scenario_id, lambda circuit: circuit.buses())
            return conditional(csv_response(rows, "buses.csv"), etag)
        rows_json, etag = read_with_etag(scenario_id, lambda circuit: circuit.buses_json())
        return conditional(success(buses=orjson.Fragment(rows_json)), etag)

    @grid_route(app, "get", "/buses/<name>", tags=[tables],
                responses={200: BusResponse, 304: NOT_MODIFIED, 404: ErrorResponse, 409: ErrorResponse})
    def bus(scenario_id: str, path: BusPath) -> Response:
        """One bus: node voltages, loads, generators and the lines that touch it."""
        row, etag = read_with_etag(scenario_id, lambda circuit: circuit.bus(path.name))
        return conditional(success(bus=row), etag)

    @grid_route(app, "get", "/lines", tags=[tables],
                responses={200: LinesResponse, 304: NOT_MODIFIED, **ERROR_RESPONSES})
    def lines(scenario_id: str, query: TableQuery) -> Response:
        """Flow, current, loading and losses of every line and switch."""
        scenario, snapshot = registry().snapshot(scenario_id)
        etag = scenario.etag(snapshot.sequence)
        if query.format == "csv":
            return conditional(csv_response(snapshot.line_flows, "lines.csv"), etag)
        return conditional(success(lines=orjson.Fragment(snapshot.line_flows_json)), etag)

    @grid_route(app, "get", "/transformers", tags=[tables],
                responses={200: TransformersResponse, 304: NOT_MODIFIED, **ERROR_RESPONSES})
    def transformers(scenario_id: str, query: TableQuery) -> Response:
        """The regulators and XFM1: buses, rating, loading, losses and regulator taps."""
        rows, etag = read_with_etag(scenario_id, lambda circuit: circuit.transformers())
        return conditional(csv_response(rows, "transformers.csv") if query.format == "csv"
                           else success(transformers=rows), etag)

    @grid_route(app, "get", "/neighbourhoods", tags=[tables],
                responses={200: NeighbourhoodsResponse, 304: NOT_MODIFIED, 404: ErrorResponse, 409: ErrorResponse})
    def neighbourhoods(scenario_id: str) -> Response:
        """The 14 neighbourhoods: buses, loads, base and current set-points, cumulative factor."""
        rows, etag = read_with_etag(scenario_id, lambda circuit: circuit.neighbourhoods())
        return conditional(success(neighbourhoods=rows), etag)

    @grid_route(app, "get", "/generators", tags=[tables],
                responses={200: GeneratorsResponse, 304: NOT_MODIFIED, 404: ErrorResponse, 409: ErrorResponse})
    def generators(scenario_id: str) -> Response:
        """Generators added through the API: set-point and delivered power."""
        rows, etag = read_with_etag(scenario_id, lambda circuit: circuit.generators())
        return conditional(success(generators=rows), etag)

    @grid_route(app, "get", "/changes", tags=[scenarios_tag],
                responses={200: ChangesResponse, 304: NOT_MODIFIED, 404: ErrorResponse})
    def changes(scenario_id: str) -> Response:
        """The journal: every change applied, in order, with the action its response reported."""
        scenario = registry().get(scenario_id)
        with scenario.lock:
            journal, etag = scenario.describe_journal(), scenario.etag()
        return conditional(success(**journal), etag)

    @grid_route(app, "get", "/export", tags=[scenarios_tag],
                responses={200: ScenarioDocument, 304: NOT_MODIFIED, 404: ErrorResponse})
    def export(scenario_id: str) -> Response:
        """The scenario as a document to keep, edit or import: the ops its current state adds up to."""
        scenario = registry().get(scenario_id)
        with scenario.lock:
            document = export_document(scenario.name, scenario.ops(), scenario.feeder, scenario.feeder_sha256)
            etag = scenario.etag()
        response = conditional(json_response(orjson.dumps(document, option=orjson.OPT_INDENT_2)), etag)
        response.headers["Content-Disposition"] = f"inline; filename=scenario-{scenario.id}.json"
        return response

    @grid_route(app, "get", "/diff", tags=[scenarios_tag], responses={200: DiffResponse, **ERROR_RESPONSES})
    def diff(scenario_id: str, query: DiffQuery) -> Response:
        """How this scenario differs from the base case or from another scenario, node by node and line by line."""
        scenario, snapshot = registry().snapshot(scenario_id)
        if query.against == "base":
            with registry().engine(scenario_id) as (_, circuit):
                other = circuit.base_snapshot.with_sequence(0)
        else:
            against, other = registry().snapshot(query.against)
            if against.feeder != scenario.feeder:
                return error_response(409, f"against: scenario {against.id} is on feeder {against.feeder} and "
                                           f"scenario {scenario.id} on feeder {scenario.feeder}; a diff compares "
                                           f"scenarios of one feeder", "against")
        result = diff_snapshots(snapshot, other)
        if query.format == "csv":
            return csv_response(result["buses"], f"diff-{scenario.id}-{query.against}.csv")
        return success(scenario=scenario.id, against=query.against, sequence=snapshot.sequence,
                       other_sequence=other.sequence, **result)
