"""HTTP API over the IEEE 123-bus power flow: thin routes that validate, call the scenario registry, serialise.

Every grid route exists twice, at `/…` (the `default` scenario) and at `/scenarios/<id>/…`, from one
implementation (`grid_route`). Run `python api.py` to compile the feeder and serve on http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import csv
import gc
import hmac
import io
import os
import sys
from pathlib import Path
from typing import Any, Callable, get_type_hints

import orjson
from flask import Response, current_app, redirect, request, send_from_directory
from flask_openapi3 import Info, OpenAPI, Tag
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from results import Change, Snapshot, diff_snapshots
from scenario_schemas import (ChangeHeaders, ChangeQuery, ChangesResponse, CreateScenarioBody, DiffQuery, DiffResponse,
                              ReadHeaders, ScenarioCreatedResponse, ScenarioDeletedResponse, ScenarioDocument,
                              ScenarioPath, ScenarioResponse, ScenariosResponse, UndoResponse, scenario_path)
from scenarios import (DEFAULT_ID, DOCUMENT_VERSION, ScenarioError, ScenarioRegistry, ScenarioStore, StateFileError,
                       export_document, feeder_sha256)
from schemas import (NOT_MODIFIED, RESULT_SECTIONS, AddGeneratorBody, BusesResponse, BusPath, BusResponse, EmptyBody,
                     ErrorResponse, GeneratorChangeResponse, GeneratorPath, GeneratorsResponse, HealthResponse,
                     LinesResponse, NeighbourhoodChangeResponse, NeighbourhoodsResponse, RemoveGeneratorResponse,
                     ResetResponse, ScaleNeighbourhoodBody, SectionsQuery, StateQuery, StateResponse, TableQuery,
                     TransformersResponse, describe_validation_error)
from serving import AccessLog, is_loopback, serve_until_signalled
from simulation_core import PUBLISHED_REGULATOR_TAPS, NotFoundError, OpenDSSCircuit, SimulationError
from studies.executors import ExecutorUnavailable, LocalPool
from studies.jobs import JobManager, StudyError
from studies.plans import PLANS, Plan
from studies.requests import ScenarioInput, batch_plan, hosting_capacity_plan, time_series_plan
from studies.tasks import engine_settings
from study_schemas import (BatchBody, HostingCapacityBody, JobPath, JobResponse, JobResultQuery, JobResultResponse,
                           JobsResponse, StudyQuery, TimeSeriesBody)

MAX_BODY_BYTES = 64 * 1024
MAX_IMPORT_BYTES = 2 * 1024 * 1024  # a scenario document of up to 10,000 changes
#: Larger bodies some routes take (view names, both URL forms): documents, inline shapes, batches.
BODY_LIMITS = {"import_scenario": MAX_IMPORT_BYTES, "time_series": 1024 * 1024, "scenario_time_series": 1024 * 1024,
               "batch": 8 * 1024 * 1024, "scenario_batch": 8 * 1024 * 1024}
JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}
STATE_CHANGING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_KEY_ENV = "IEEE123_API_KEY"
DASK_SCHEDULER_ENV = "IEEE123_DASK_SCHEDULER"
ERROR_RESPONSES: dict[int, Any] = {400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse,
                                   413: ErrorResponse, 415: ErrorResponse, 422: ErrorResponse}
CHANGE_RESPONSES: dict[int, Any] = {**ERROR_RESPONSES, 409: ErrorResponse, 412: ErrorResponse}
# Changes need the bearer token only when the server runs with --api-key: `{}` says "or no auth".
BEARER: list[dict[str, list[Any]]] = [{"bearer": []}, {}]
STATIC_DIR = Path(__file__).resolve().parent / "static"
grid = Tag(name="grid", description="Change the grid and read the solved power flow")
tables = Tag(name="tables", description="What is in the grid: buses, lines, neighbourhoods, generators")
scenarios_tag = Tag(name="scenarios", description="Isolated, journaled grids: create, fork, undo, export, compare")
studies_tag = Tag(name="studies", description="Hosting capacity, time series and batch what-ifs, run as jobs")
service = Tag(name="service", description="Liveness and the API contract")


def json_response(body: bytes, status: int = 200, etag: str | None = None) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    if etag:
        response.headers["ETag"] = etag
    return response


def error_response(status: int, message: str, field: str | None = None) -> Response:
    payload: dict[str, Any] = {"status": "error", "message": message}
    if field:
        payload["field"] = field
    return json_response(orjson.dumps(payload), status)


def registry() -> ScenarioRegistry:
    return current_app.extensions["scenarios"]


def jobs() -> JobManager:
    return current_app.extensions["jobs"]


def results_body(snapshot: Snapshot, sections: str | None) -> bytes:
    """The results, whole (serialised once per snapshot and reused) or only the sections asked for."""
    if not sections:
        return snapshot.results_json
    wanted = sections.split(",")
    return snapshot.sections_json([name for name in RESULT_SECTIONS if name in wanted])


def change_body(change: Change, sections: str | None = None) -> bytes:
    """The success envelope for a change, with the results of exactly the state that change produced."""
    return orjson.dumps({"status": "success", "action": change,
                         "results": orjson.Fragment(results_body(change.snapshot, sections))})


def success(**fields: Any) -> Response:
    return json_response(orjson.dumps({"status": "success", **fields}, option=orjson.OPT_SERIALIZE_NUMPY))


def conditional(response: Response, etag: str) -> Response:
    """Tag a read with the scenario's ETag; If-None-Match with that tag (or *) gets 304 and no body.

    RFC 9110 13.1.2 compares If-None-Match weakly. Our own check, not werkzeug's make_conditional, which also
    parses Range and If-Modified-Since and stamps a Date: about a third of a 304's time in the app."""
    response.headers["ETag"] = etag
    if is_not_modified(etag):
        return Response(status=304, headers={"ETag": etag})
    return response


def is_not_modified(etag: str) -> bool:
    """The request's If-None-Match names this (strong, quoted) ETag, weakly compared, or is `*`."""
    if "If-None-Match" not in request.headers:
        return False
    return request.if_none_match.contains_weak(etag.strip('"'))


def csv_response(rows: list[dict[str, Any]], filename: str, disposition: str = "inline") -> Response:
    """A table as CSV for spreadsheet users; list cells (nodes, currents) joined with spaces."""
    buffer = io.StringIO()
    if rows:
        columns = list(dict.fromkeys(key for row in rows for key in row))  # rows may lack some (a failed case)
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"{disposition}; filename={filename}"})


def validation_error_callback(error: ValidationError) -> Response:
    message, field = describe_validation_error(error)
    return error_response(400, message, field)


def operation_id(*, name: str = "", **_: Any) -> str:
    """Operation ids are the view names (add_generator, state, …): generated clients read well."""
    return name


def if_match_tags() -> list[str] | None:
    """The If-Match header as quoted strong tags (["*"] for any), or None when absent."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match
    return ["*"] if tags.star_tag else [f'"{tag}"' for tag in tags.as_set()]


def read_with_etag(scenario_id: str, read: Callable[[OpenDSSCircuit], Any]) -> tuple[Any, str]:
    """What `read` gets from the scenario's engine, with the ETag of the state it read."""
    with registry().engine(scenario_id) as (scenario, circuit):
        return read(circuit), scenario.etag()


def apply_change(scenario_id: str, op: dict[str, Any], query: ChangeQuery, header: ChangeHeaders) -> Response:
    """The one path of every change: registry (preconditions, engine, journal), then the answer."""
    outcome = registry().change(scenario_id, op, dry_run=query.dry_run, if_match=if_match_tags(),
                                idempotency_key=header.idempotency_key,
                                render=lambda change: change_body(change, query.sections))
    body = outcome.body if outcome.body is not None else change_body(outcome.change, query.sections)
    response = json_response(body, outcome.status, outcome.etag)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def grid_route(app: OpenAPI, method: str, rule: str, **doc: Any) -> Callable[[Callable], Callable]:
    """Register one implementation, `view(scenario_id, **models)`, at `rule` (acting on the default scenario)
    and at `/scenarios/<scenario_id>` + `rule`. Each URL form gets its own view and path model, so the
    OpenAPI document describes both exactly."""
    def register(implementation: Callable) -> Callable:
        hints = {k: v for k, v in get_type_hints(implementation).items() if k in ("path", "query", "body", "header")}
        for scoped in (False, True):
            view = _scenario_view(implementation, scoped, takes_path="path" in hints)
            view.__annotations__ = dict(hints)
            if scoped:
                view.__annotations__["path"] = scenario_path(hints.get("path"))
            getattr(app, method)(("/scenarios/<scenario_id>" if scoped else "") + rule, **doc)(view)
        return implementation
    return register


def _scenario_view(implementation: Callable, scoped: bool, takes_path: bool) -> Callable:
    def view(**models: Any) -> Response:
        scenario_id = models["path"].scenario_id if scoped else DEFAULT_ID
        if scoped and not takes_path:
            del models["path"]
        return implementation(scenario_id, **models)

    view.__name__ = f"scenario_{implementation.__name__}" if scoped else implementation.__name__
    view.__doc__ = implementation.__doc__
    return view


def create_app(config: dict[str, Any] | None = None) -> OpenAPI:
    """Build the app and its scenario registry.

    Config: CIRCUIT (a ready OpenDSSCircuit for the default scenario), LOCKED_TAPS, VOLTAGE_LIMITS, STATE_FILE
    (SQLite file; none: in memory), MAX_SCENARIOS, MAX_LIVE_SCENARIOS, CORS_ORIGINS, API_KEY."""
    config = config or {}
    app = OpenAPI(
        __name__,
        doc_prefix="/docs",
        static_folder=str(STATIC_DIR),
        info=Info(title="IEEE 123-bus power-flow API", version="1.1.0",
                  description="Change the IEEE 123-node test feeder and get the re-solved power flow at once; "
                              "keep isolated, journaled scenarios of it."),
        validation_error_status=400,
        validation_error_model=ErrorResponse,
        validation_error_callback=validation_error_callback,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer",
                                     "description": "Needed for changes only when the server runs with --api-key."}},
        operation_id_callback=operation_id,
        responses={400: ErrorResponse, 405: ErrorResponse},  # any route: a bad query string or method
    )
    app.url_map.merge_slashes = False  # `/buses//16` is a 404, not a redirect that replays a DELETE
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # routes in BODY_LIMITS raise it for their request
    app.config["API_KEY"] = os.environ.get(API_KEY_ENV) or None
    app.config.update({k: v for k, v in config.items() if k != "CIRCUIT"})
    locked_taps, limits = config.get("LOCKED_TAPS"), config.get("VOLTAGE_LIMITS", (0.95, 1.05))

    def make_circuit() -> OpenDSSCircuit:
        return OpenDSSCircuit(locked_taps=locked_taps, voltage_limits_pu=limits)

    app.extensions["study_engine"] = engine_settings(locked_taps, limits)
    app.extensions["jobs"] = JobManager(study_executor(config, app.extensions["study_engine"]),
                                        max_jobs=config.get("MAX_JOBS", 4))
    state_file = config.get("STATE_FILE")
    max_scenarios = config.get("MAX_SCENARIOS", 64)
    app.extensions["scenarios"] = ScenarioRegistry(
        ScenarioStore(state_file), make_circuit, max_scenarios=max_scenarios,
        max_live=config.get("MAX_LIVE_SCENARIOS", 32) if state_file else max_scenarios,
        default_circuit=config.get("CIRCUIT"))
    if config.get("CORS_ORIGINS"):
        from flask_cors import CORS

        CORS(app, origins=list(config["CORS_ORIGINS"]), methods=["GET", "POST", "DELETE"],
             allow_headers=["Content-Type", "Authorization", "If-Match", "If-None-Match", "Idempotency-Key"],
             expose_headers=["ETag", "Location", "Idempotent-Replayed"])
    register_request_checks(app)
    register_error_handlers(app)
    register_grid_routes(app)
    register_scenario_routes(app)
    register_study_routes(app)
    register_service_routes(app)
    return app


def study_executor(config: dict[str, Any], settings: dict[str, Any]) -> Any:
    """Where study tasks run: a Dask cluster when a scheduler is named, else worker processes here."""
    scheduler = config.get("DASK_SCHEDULER") or os.environ.get(DASK_SCHEDULER_ENV)
    if scheduler:
        from studies.cluster import DaskExecutor  # Dask is imported only for a user who asked for it

        return DaskExecutor(scheduler, settings)
    return LocalPool(settings, config.get("WORKERS"))


def register_request_checks(app: OpenAPI) -> None:
    @app.before_request
    def require_api_key() -> Response | None:
        """With an API key set, every state-changing route needs `Authorization: Bearer <key>`."""
        key = app.config.get("API_KEY")
        if not key or request.method not in STATE_CHANGING_METHODS:
            return None
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {key}"
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
            response = error_response(401, "Authorization: expected 'Bearer <API key>' for changes to the grid")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    @app.before_request
    def require_json_object_body() -> Response | None:
        """State-changing requests carry a JSON object; anything else is refused before it reaches the grid.

        Refusing other content types also stops a cross-site "simple" form post from changing the grid."""
        if request.method not in JSON_BODY_METHODS or request.routing_exception is not None:
            return None
        limit = BODY_LIMITS.get(request.endpoint or "", MAX_BODY_BYTES)
        request.max_content_length = limit
        if (request.content_length or 0) > limit:
            return error_response(413, f"body: larger than the limit of {limit} bytes")
        if not request.is_json:
            return error_response(415, f"body: expected Content-Type application/json, got "
                                       f"{request.content_type or 'none'}")
        try:
            body = request.get_json(silent=False, cache=True)
        except HTTPException as error:
            if error.code == 413:
                raise
            return error_response(400, "body: malformed JSON")
        except (RecursionError, ValueError):  # nesting deeper than the JSON parser goes
            return error_response(400, "body: malformed JSON (nested too deeply)")
        if not isinstance(body, dict):
            return error_response(400, "body: expected a JSON object")
        return None


def register_error_handlers(app: OpenAPI) -> None:
    @app.errorhandler(SimulationError)
    def simulation_error(error: SimulationError) -> Response:
        status = 404 if isinstance(error, NotFoundError) else 422
        return error_response(status, str(error), error.field)

    @app.errorhandler(ScenarioError)
    def scenario_error(error: ScenarioError) -> Response:
        return error_response(error.status, str(error), error.field)

    @app.errorhandler(StudyError)
    def study_error(error: StudyError) -> Response:
        return error_response(error.status, str(error), error.field)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            limit = request.max_content_length or MAX_BODY_BYTES
            return error_response(413, f"body: larger than the limit of {limit} bytes")
        if error.code == 405:
            allowed = ", ".join(sorted(error.valid_methods or [])) if hasattr(error, "valid_methods") else ""
            return error_response(405, f"method {request.method} is not allowed on {request.path}"
                                       + (f"; allowed: {allowed}" if allowed else ""))
        if error.code == 404:
            return error_response(404, f"no route {request.path}")
        return error_response(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        app.logger.exception("unexpected error")
        return error_response(500, "internal error; the grid is unchanged")


def register_grid_routes(app: OpenAPI) -> None:
    """The grid routes, each at /… (default scenario) and /scenarios/<scenario_id>/…."""

    @grid_route(app, "post", "/add_generator", tags=[grid], security=BEARER,
                responses={200: GeneratorChangeResponse, **CHANGE_RESPONSES})
    def add_generator(scenario_id: str, body: AddGeneratorBody, query: ChangeQuery, header: ChangeHeaders) -> Response:
        """Add a generator, or update the one at the same bus and phases; returns the re-solved grid."""
        op = {"op": "add_generator", "bus_name": body.bus_name, "phases": body.phases, "kw": body.kw}
        if body.phase is not None:
            op["phase"] = body.phase
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
            return Response(status=304, headers={"ETag": etag})  # without building the body
        if query.format == "csv":
            return conditional(csv_response(snapshot.bus_details, "bus_details.csv"), etag)
        if not query.sections:  # the whole answer's bytes are kept on the (immutable) snapshot
            return conditional(json_response(snapshot.state_json), etag)
        body = orjson.dumps({"status": "success", "sequence": snapshot.sequence,
                             "results": orjson.Fragment(results_body(snapshot, query.sections))})
        return conditional(json_response(body), etag)

    @grid_route(app, "get", "/health", tags=[service], responses={200: HealthResponse, 404: ErrorResponse})
    def health(scenario_id: str) -> Response:
        """Liveness and readiness: the model is compiled and the last solve converged."""
        with registry().engine(scenario_id) as (scenario, circuit):
            facts = circuit.health()
        return success(**facts, scenario=scenario.id, scenarios=len(registry()), live_scenarios=registry().live_count(),
                       durable=registry().store.durable, studies=jobs().executor.describe())

    @grid_route(app, "get", "/buses", tags=[tables],
                responses={200: BusesResponse, 304: NOT_MODIFIED, **ERROR_RESPONSES})
    def buses(scenario_id: str, query: TableQuery) -> Response:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators."""
        rows, etag = read_with_etag(scenario_id, OpenDSSCircuit.buses)
        return conditional(csv_response(rows, "buses.csv") if query.format == "csv" else success(buses=rows), etag)

    @grid_route(app, "get", "/buses/<name>", tags=[tables],
                responses={200: BusResponse, 304: NOT_MODIFIED, 404: ErrorResponse})
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
        rows, etag = read_with_etag(scenario_id, OpenDSSCircuit.transformers)
        return conditional(csv_response(rows, "transformers.csv") if query.format == "csv"
                           else success(transformers=rows), etag)

    @grid_route(app, "get", "/neighbourhoods", tags=[tables],
                responses={200: NeighbourhoodsResponse, 304: NOT_MODIFIED, 404: ErrorResponse})
    def neighbourhoods(scenario_id: str) -> Response:
        """The 14 neighbourhoods: buses, loads, base and current set-points, cumulative factor."""
        rows, etag = read_with_etag(scenario_id, OpenDSSCircuit.neighbourhoods)
        return conditional(success(neighbourhoods=rows), etag)

    @grid_route(app, "get", "/generators", tags=[tables],
                responses={200: GeneratorsResponse, 304: NOT_MODIFIED, 404: ErrorResponse})
    def generators(scenario_id: str) -> Response:
        """Generators added through the API: set-point and delivered power."""
        rows, etag = read_with_etag(scenario_id, OpenDSSCircuit.generators)
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
            document, etag = export_document(scenario.name, scenario.ops()), scenario.etag()
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
            other = registry().snapshot(query.against)[1]
        result = diff_snapshots(snapshot, other)
        if query.format == "csv":
            return csv_response(result["buses"], f"diff-{scenario.id}-{query.against}.csv")
        return success(scenario=scenario.id, against=query.against, sequence=snapshot.sequence,
                       other_sequence=other.sequence, **result)


def register_scenario_routes(app: OpenAPI) -> None:
    @app.post("/scenarios", tags=[scenarios_tag], security=BEARER,
              responses={201: ScenarioCreatedResponse, 429: ErrorResponse, **ERROR_RESPONSES})
    def create_scenario(body: CreateScenarioBody, query: SectionsQuery) -> Response:
        """A new scenario from the base case, or a fork of another scenario's current state (`from`)."""
        return created(registry().create(body.name, body.from_), query.sections)

    @app.post("/scenarios/import", tags=[scenarios_tag], security=BEARER,
              responses={201: ScenarioCreatedResponse, 429: ErrorResponse, **ERROR_RESPONSES})
    def import_scenario(body: ScenarioDocument, query: SectionsQuery) -> Response:
        """A new scenario from a scenario document (GET …/export): its changes applied in order. A document for
        another feeder, of an unknown version, or with a change the grid refuses creates nothing."""
        if body.version != DOCUMENT_VERSION:
            return error_response(422, f"version: expected {DOCUMENT_VERSION}, got {body.version}", "version")
        if body.feeder.sha256 != feeder_sha256():
            return error_response(422, f"feeder.sha256: the document was made on another feeder model "
                                       f"({body.feeder.sha256[:12]}…; this server's is {feeder_sha256()[:12]}…)",
                                  "feeder.sha256")
        ops = [change.model_dump(exclude_none=True) for change in body.changes]
        return created(registry().import_ops(body.name, ops), query.sections)

    @app.get("/scenarios", tags=[scenarios_tag], responses={200: ScenariosResponse})
    def list_scenarios() -> Response:
        """Every scenario: id, name, sequence, created_at, forked_from, number of changes, live or resting."""
        return success(scenarios=registry().list())

    @app.get("/scenarios/<scenario_id>", tags=[scenarios_tag],
             responses={200: ScenarioResponse, 304: NOT_MODIFIED, 404: ErrorResponse})
    def get_scenario(path: ScenarioPath) -> Response:
        """One scenario with its power summary."""
        scenario, snapshot = registry().snapshot(path.scenario_id)
        return conditional(success(scenario={**scenario.describe(),
                                             "power_summary": snapshot.section("power_summary")}),
                           scenario.etag(snapshot.sequence))

    @app.delete("/scenarios/<scenario_id>", tags=[scenarios_tag], security=BEARER,
                responses={200: ScenarioDeletedResponse, 409: ErrorResponse, **ERROR_RESPONSES})
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


def register_study_routes(app: OpenAPI) -> None:
    """Studies read a scenario as it is when they start (its ops and sequence) and never change it."""
    study_responses = {200: JobResponse, 202: JobResponse, 429: ErrorResponse, **ERROR_RESPONSES}

    @grid_route(app, "post", "/studies/hosting_capacity", tags=[studies_tag], security=BEARER,
                responses=study_responses)
    def hosting_capacity(scenario_id: str, body: HostingCapacityBody, query: StudyQuery) -> Response:
        """How much generation each bus takes before a limit is crossed, and which limit: a job (202)."""
        return start_job(hosting_capacity_plan(body, study_input(scenario_id)), query.wait)

    @grid_route(app, "post", "/studies/time_series", tags=[studies_tag], security=BEARER, responses=study_responses)
    def time_series(scenario_id: str, body: TimeSeriesBody, query: StudyQuery) -> Response:
        """The scenario hour by hour under measured load and PV shapes, regulators carrying taps: a job (202)."""
        return start_job(time_series_plan(body, study_input(scenario_id)), query.wait)

    @grid_route(app, "post", "/studies/batch", tags=[studies_tag], security=BEARER, responses=study_responses)
    def batch(scenario_id: str, body: BatchBody, query: StudyQuery) -> Response:
        """Many what-if cases, each a list of changes from the scenario's state, each answered alone: a job."""
        return start_job(batch_plan(body, study_input(scenario_id)), query.wait)

    @app.get("/jobs", tags=[studies_tag], responses={200: JobsResponse})
    def list_jobs() -> Response:
        """Every job still known: running ones and the last finished ones (results not included)."""
        return success(jobs=jobs().list())

    @app.get("/jobs/<job_id>", tags=[studies_tag], responses={200: JobResponse, 404: ErrorResponse})
    def get_job(path: JobPath) -> Response:
        """A job's status and progress, and its result once done."""
        return success(job=jobs().get(path.job_id).describe(with_result=True))

    @app.get("/jobs/<job_id>/result", tags=[studies_tag],
             responses={200: JobResultResponse, 404: ErrorResponse, 409: ErrorResponse})
    def job_result(path: JobPath, query: JobResultQuery) -> Response:
        """A finished job's result; ?format=csv gives its rows (buses, hours or cases) flattened."""
        job = jobs().get(path.job_id)
        if job.status != "done":
            raise StudyError(409, f"job: {job.id} is {job.status} ({job.progress:.0%} done); the result is there "
                                  f"when its status is done", "job")
        if query.format == "csv":
            return csv_response(PLANS[job.kind].flat_rows(job.result), f"{job.kind}-{job.id}.csv", "attachment")
        return success(job=job.id, kind=job.kind, result=job.result)

    @app.delete("/jobs/<job_id>", tags=[studies_tag], security=BEARER,
                responses={200: JobResponse, 404: ErrorResponse, 401: ErrorResponse})
    def cancel_job(path: JobPath) -> Response:
        """Cancel a job: no new work starts, and it is cancelled within a second (a finished job stays as is)."""
        return success(job=jobs().cancel(path.job_id).describe())


def study_input(scenario_id: str) -> ScenarioInput:
    """The scenario as the study will read it: its ops and sequence now, and the feeder's buses."""
    with registry().engine(scenario_id) as (scenario, circuit):
        return ScenarioInput(current_app.extensions["study_engine"], scenario.id, scenario.ops(), scenario.sequence,
                             circuit.buses(), [row["id"] for row in circuit.neighbourhoods()])


def start_job(plan: Plan, wait_s: float) -> Response:
    """202 with Location, or 200 with the finished job when it ends within ?wait= seconds."""
    job = jobs().submit(plan)
    if wait_s and job.finished.wait(wait_s):
        return success(job=job.describe(with_result=True))
    response = json_response(orjson.dumps({"status": "success", "job": job.describe()}), 202)
    response.headers["Location"] = f"/jobs/{job.id}"
    return response


def register_service_routes(app: OpenAPI) -> None:
    @app.get("/openapi.json", tags=[service], doc_ui=False)
    def openapi_document() -> Response:
        """The OpenAPI 3 document, generated from the request and response models."""
        return json_response(orjson.dumps(app.api_doc))

    @app.get("/docs", doc_ui=False)
    def docs() -> Response:
        """Swagger UI, served from the installed flask-openapi3-swagger package (no CDN)."""
        return redirect("/docs/swagger")

    @app.get("/", doc_ui=False)
    def dashboard() -> Response:
        """The dashboard page (static/index.html)."""
        return send_from_directory(STATIC_DIR, "index.html")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the IEEE 123-bus power-flow API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--threads", type=int, default=4,
                        help="request threads (default 4: studies run in worker processes, and fewer threads keep "
                             "each one's caches warm)")
    parser.add_argument("--published-taps", action="store_true",
                        help="lock the regulators at the IEEE published taps instead of letting them move")
    parser.add_argument("--voltage-limits", nargs=2, type=float, default=[0.95, 1.05], metavar=("LOW", "HIGH"),
                        help="voltage violation limits in pu (default ANSI C84.1 Range A: 0.95 1.05)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser pages from this origin (repeatable); CORS is off by default")
    parser.add_argument("--api-key", default=None,
                        help=f"require 'Authorization: Bearer KEY' on every change (or set {API_KEY_ENV})")
    parser.add_argument("--no-access-log", action="store_true", help="do not log requests on stderr")
    parser.add_argument("--state", default=None, metavar="FILE",
                        help="keep scenarios, journals and idempotency keys in this SQLite file (created if "
                             "missing); every change is on disk before its answer. Default: in memory")
    parser.add_argument("--max-scenarios", type=positive_int, default=64, metavar="N",
                        help="scenarios the server holds, default included (default 64)")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="worker processes for studies (default: the usable cores)")
    parser.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:PORT",
                        help=f"run study tasks on this Dask cluster instead of local worker processes (or set "
                             f"{DASK_SCHEDULER_ENV})")
    parser.add_argument("--max-jobs", type=positive_int, default=4, metavar="N",
                        help="studies queued or running at once (default 4)")
    parser.add_argument("--max-live-scenarios", type=positive_int, default=32, metavar="N",
                        help="with --state: scenarios that keep an engine in memory; the others rest on disk "
                             "and are rebuilt on first use (default 32)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import waitress

    args = parse_args(argv)
    try:
        application = create_app({"LOCKED_TAPS": PUBLISHED_REGULATOR_TAPS if args.published_taps else None,
                                  "VOLTAGE_LIMITS": tuple(args.voltage_limits), "CORS_ORIGINS": args.cors_origin,
                                  "STATE_FILE": args.state, "MAX_SCENARIOS": args.max_scenarios,
                                  "MAX_LIVE_SCENARIOS": args.max_live_scenarios, "WORKERS": args.workers,
                                  "MAX_JOBS": args.max_jobs, "DASK_SCHEDULER": args.dask_scheduler})
    except (StateFileError, ExecutorUnavailable) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    if args.api_key:
        application.config["API_KEY"] = args.api_key
    if not is_loopback(args.host) and not application.config["API_KEY"]:
        print(f"WARNING: listening on {args.host} without an API key: anyone who can reach this address can "
              f"change the grid. Use --api-key or {API_KEY_ENV}.", file=sys.stderr, flush=True)
    settle_heap()
    wsgi = application.wsgi_app if args.no_access_log else AccessLog(application.wsgi_app)
    application.wsgi_app = wsgi
    server = waitress.create_server(application, host=args.host, port=args.port, threads=args.threads,
                                    ident="ieee123-api", clear_untrusted_proxy_headers=True)
    print(f"IEEE 123-bus power-flow API listening on http://{args.host}:{args.port}/", flush=True)
    serve_until_signalled(server)
    application.extensions["jobs"].close()  # cancel studies, stop the worker processes
    print("stopped", flush=True)



def settle_heap() -> None:
    """Move what start-up made (libraries, the compiled feeder: ~140,000 objects) out of the garbage
    collector's sight. They live as long as the server, and a full collection that scanned them took ~90 ms:
    a stall some request would wait out."""
    gc.collect()
    gc.freeze()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


_module_app: OpenAPI | None = None


def __getattr__(name: str) -> Any:
    """`api.app` for WSGI servers (`waitress-serve api:app`), built on first use, not at import."""
    global _module_app
    if name == "app":
        if _module_app is None:
            _module_app = create_app()
        return _module_app
    raise AttributeError(name)


if __name__ == "__main__":
    main(sys.argv[1:])
