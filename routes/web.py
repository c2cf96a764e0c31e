"""What every route module uses: the answers' shapes (JSON, errors, CSV, ETags, 304), the registry and job
manager of the app, the one path of a change, and `grid_route`, which registers a grid route at `/…` and
`/scenarios/<id>/…` from one implementation."""

from __future__ import annotations

import csv
import io
import mimetypes
from pathlib import Path
from typing import Any, Callable, get_type_hints

import orjson
from flask import Response, current_app, request
from flask_openapi3 import OpenAPI, Tag

from engine.results import Change, Snapshot
from web.scenario_schemas import ChangeHeaders, ChangeQuery, scenario_path
from scenarios import DEFAULT_ID, ScenarioRegistry
from web.schemas import RESULT_SECTIONS, ErrorResponse
from engine.interface import Circuit
from studies.jobs import JobManager

#: 409 too: any use of a scenario whose feeder is not served (docs/feeder.md, "Feeders and the state file").
ERROR_RESPONSES: dict[int, Any] = {400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse,
                                   413: ErrorResponse, 415: ErrorResponse, 422: ErrorResponse}
CHANGE_RESPONSES: dict[int, Any] = {**ERROR_RESPONSES, 409: ErrorResponse, 412: ErrorResponse, 507: ErrorResponse}
# Changes need the bearer token only when the server runs with --api-key: `{}` says "or no auth".
BEARER: list[dict[str, list[Any]]] = [{"bearer": []}, {}]
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The dashboard's ES modules load only with a JavaScript type; some systems' MIME tables say text/plain for .js.
mimetypes.add_type("text/javascript", ".js")
grid = Tag(name="grid", description="Change the grid and read the solved power flow")
tables = Tag(name="tables", description="What is in the grid: buses, lines, neighbourhoods, generators")
scenarios_tag = Tag(name="scenarios", description="Isolated, journaled grids: create, fork, undo, export, compare")
studies_tag = Tag(name="studies", description="Hosting capacity, time series and batch what-ifs, run as jobs")
service = Tag(name="service", description="Liveness and the API contract")
#: The one coding of compressed answers (api.py has flask-compress answer with it when the client accepts it).
COMPRESSION = "gzip"


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
    return not_modified(etag) if is_not_modified(etag) else response


def compressed_tag(etag: str) -> str:
    """The ETag flask-compress gives this state's gzip answer (`"default.3"` → `"default.3:gzip"`): RFC 9110 8.8.3
    wants a strong tag per representation, and a client that holds either one holds this state."""
    return f'{etag[:-1]}:{COMPRESSION}"'


def not_modified(etag: str) -> Response:
    """304 naming the representation the client holds: the plain answer's tag or the compressed one's."""
    held = request.if_none_match
    gzip_held = not held.star_tag and held.contains_weak(compressed_tag(etag).strip('"'))
    return Response(status=304, headers={"ETag": compressed_tag(etag) if gzip_held else etag})


def is_not_modified(etag: str) -> bool:
    """The request's If-None-Match names this (strong, quoted) ETag or its compressed answer's, weakly compared,
    or is `*`."""
    if "If-None-Match" not in request.headers:
        return False
    held = request.if_none_match
    return held.contains_weak(etag.strip('"')) or held.contains_weak(compressed_tag(etag).strip('"'))


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


def if_match_tags() -> list[str] | None:
    """The If-Match header as quoted strong tags of states (["*"] for any), or None when absent: a compressed
    answer's tag names the same state as the plain one's."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match
    return ["*"] if tags.star_tag else [f'"{tag.removesuffix(":" + COMPRESSION)}"' for tag in tags.as_set()]


def read_with_etag(scenario_id: str, read: Callable[[Circuit], Any]) -> tuple[Any, str]:
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
