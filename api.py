"""HTTP API over one IEEE 123-bus power flow: thin routes that validate, call OpenDSSCircuit, serialise.

Run `python api.py` to compile the feeder, solve the base case and serve on http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import csv
import hmac
import io
import ipaddress
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from flask import Response, current_app, redirect, request, send_from_directory
from flask_openapi3 import Info, OpenAPI, Tag
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from schemas import (RESULT_SECTIONS, AddGeneratorBody, BusesResponse, BusPath, BusResponse, EmptyBody,
                     ErrorResponse, GeneratorChangeResponse, GeneratorPath, GeneratorsResponse, HealthResponse,
                     LinesResponse, NeighbourhoodChangeResponse, NeighbourhoodsResponse, RemoveGeneratorResponse,
                     ResetResponse, ScaleNeighbourhoodBody, SectionsQuery, StateQuery, StateResponse, TableQuery,
                     TransformersResponse)
from simulation_core import (PUBLISHED_REGULATOR_TAPS, Change, NotFoundError, OpenDSSCircuit, SimulationError,
                             Snapshot)

MAX_BODY_BYTES = 64 * 1024
JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}
STATE_CHANGING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_KEY_ENV = "IEEE123_API_KEY"
ERROR_RESPONSES: dict[int, Any] = {400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse,
                                   413: ErrorResponse, 415: ErrorResponse, 422: ErrorResponse}
# Changes need the bearer token only when the server runs with --api-key: `{}` says "or no auth".
BEARER: list[dict[str, list[Any]]] = [{"bearer": []}, {}]
STATIC_DIR = Path(__file__).resolve().parent / "static"
grid = Tag(name="grid", description="Change the grid and read the solved power flow")
tables = Tag(name="tables", description="What is in the grid: buses, lines, neighbourhoods, generators")
service = Tag(name="service", description="Liveness and the API contract")


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def error_response(status: int, message: str, field: str | None = None) -> Response:
    payload: dict[str, Any] = {"status": "error", "message": message}
    if field:
        payload["field"] = field
    return json_response(orjson.dumps(payload), status)


def circuit() -> OpenDSSCircuit:
    return current_app.extensions["circuit"]


def results_body(snapshot: Snapshot, sections: str | None) -> bytes:
    """The results, whole (serialised once per snapshot and reused) or only the sections asked for."""
    if not sections:
        return snapshot.results_json
    wanted = sections.split(",")
    return snapshot.sections_json([name for name in RESULT_SECTIONS if name in wanted])


def change_response(change: Change, sections: str | None = None) -> Response:
    """The success envelope for a change, with the results of exactly the state that change produced."""
    return json_response(orjson.dumps({"status": "success", "action": change,
                                       "results": orjson.Fragment(results_body(change.snapshot, sections))}))


def success(**fields: Any) -> Response:
    return json_response(orjson.dumps({"status": "success", **fields}, option=orjson.OPT_SERIALIZE_NUMPY))


def csv_response(rows: list[dict[str, Any]], filename: str) -> Response:
    """A table as CSV for spreadsheet users; list cells (nodes, currents) joined with spaces."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"inline; filename={filename}"})


def describe_validation_error(error: ValidationError) -> tuple[str, str | None]:
    """Turn pydantic's errors into our message style: 'field: what was expected, got what'."""
    parts, first_field = [], None
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "body"
        first_field = first_field or field
        kind, got = item["type"], item.get("input")
        if kind == "missing":
            parts.append(f"{field}: required")
        elif kind == "extra_forbidden":
            parts.append(f"{field}: unknown field")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            parts.append("body: expected a JSON object")
        elif kind in ("string_too_long", "string_too_short"):
            bound = "at most" if kind == "string_too_long" else "at least"
            limit = item["ctx"]["max_length" if kind == "string_too_long" else "min_length"]
            parts.append(f"{field}: expected {bound} {limit} characters")
        else:
            expected = item["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
            shown = orjson.dumps(got).decode() if _json_safe(got) else repr(got)
            if len(shown) > 60:
                shown = shown[:60] + "…"
            parts.append(f"{field}: expected {expected}, got {shown}")
    return "; ".join(parts), first_field


def _json_safe(value: Any) -> bool:
    try:
        orjson.dumps(value)
        return True
    except TypeError:
        return False


def validation_error_callback(error: ValidationError) -> Response:
    message, field = describe_validation_error(error)
    return error_response(400, message, field)


def operation_id(*, name: str = "", **_: Any) -> str:
    """Operation ids are the view names (add_generator, state, …): generated clients read well."""
    return name


def create_app(config: dict[str, Any] | None = None) -> OpenAPI:
    """Build the app and its circuit. Config: CIRCUIT (a ready OpenDSSCircuit), LOCKED_TAPS, VOLTAGE_LIMITS."""
    config = config or {}
    app = OpenAPI(
        __name__,
        doc_prefix="/docs",
        static_folder=str(STATIC_DIR),
        info=Info(title="IEEE 123-bus power-flow API", version="1.0.0",
                  description="Change the IEEE 123-node test feeder and get the re-solved power flow at once."),
        validation_error_status=400,
        validation_error_model=ErrorResponse,
        validation_error_callback=validation_error_callback,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer",
                                     "description": "Needed for changes only when the server runs with --api-key."}},
        operation_id_callback=operation_id,
        responses={400: ErrorResponse, 405: ErrorResponse},  # any route: a bad query string or method
    )
    app.url_map.merge_slashes = False  # `/buses//16` is a 404, not a redirect that replays a DELETE
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["API_KEY"] = os.environ.get(API_KEY_ENV) or None
    app.config.update({k: v for k, v in config.items() if k != "CIRCUIT"})
    app.extensions["circuit"] = config.get("CIRCUIT") or OpenDSSCircuit(
        locked_taps=config.get("LOCKED_TAPS"),
        voltage_limits_pu=config.get("VOLTAGE_LIMITS", (0.95, 1.05)))
    if config.get("CORS_ORIGINS"):
        from flask_cors import CORS

        CORS(app, origins=list(config["CORS_ORIGINS"]), methods=["GET", "POST", "DELETE"],
             allow_headers=["Content-Type", "Authorization"])
    register_request_checks(app)
    register_error_handlers(app)
    register_routes(app)
    return app


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
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return error_response(413, f"body: larger than the limit of {MAX_BODY_BYTES} bytes")
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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return error_response(413, f"body: larger than the limit of {MAX_BODY_BYTES} bytes")
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


def register_routes(app: OpenAPI) -> None:
    @app.post("/add_generator", tags=[grid], security=BEARER,
              responses={200: GeneratorChangeResponse, **ERROR_RESPONSES})
    def add_generator(body: AddGeneratorBody, query: SectionsQuery) -> Response:
        """Add a generator, or update the one at the same bus and phases; returns the re-solved grid."""
        change = circuit().add_generator(body.bus_name, body.phases, body.kw, body.phase)
        return change_response(change, query.sections)

    @app.post("/modify_load_neighbourhood", tags=[grid], security=BEARER,
              responses={200: NeighbourhoodChangeResponse, **ERROR_RESPONSES})
    def modify_load_neighbourhood(body: ScaleNeighbourhoodBody, query: SectionsQuery) -> Response:
        """Scale the loads of one neighbourhood by a factor (compounding); returns the re-solved grid."""
        change = circuit().scale_neighbourhood_loads(body.neighbourhood, body.factor)
        return change_response(change, query.sections)

    @app.get("/state", tags=[grid], responses={200: StateResponse, 400: ErrorResponse})
    def state(query: StateQuery) -> Response:
        """The current solved state, all sections or those asked for; ?format=csv gives bus_details. No change."""
        snapshot = circuit().snapshot
        if query.format == "csv":
            return csv_response(snapshot.bus_details, "bus_details.csv")
        return success(sequence=snapshot.sequence, results=orjson.Fragment(results_body(snapshot, query.sections)))

    @app.delete("/generators/<name>", tags=[grid], security=BEARER,
                responses={200: RemoveGeneratorResponse, **ERROR_RESPONSES})
    def remove_generator(path: GeneratorPath, query: SectionsQuery) -> Response:
        """Remove a generator added through the API; returns the re-solved grid."""
        return change_response(circuit().remove_generator(path.name), query.sections)

    @app.post("/reset", tags=[grid], security=BEARER, responses={200: ResetResponse, **ERROR_RESPONSES})
    def reset(body: EmptyBody, query: SectionsQuery) -> Response:
        """Restore the base case exactly as at start-up (send an empty JSON object)."""
        return change_response(circuit().reset(), query.sections)

    @app.get("/health", tags=[service], responses={200: HealthResponse})
    def health() -> Response:
        """Liveness and readiness: the model is compiled and the last solve converged."""
        return success(**circuit().health())

    @app.get("/buses", tags=[tables], responses={200: BusesResponse, 400: ErrorResponse})
    def buses(query: TableQuery) -> Response:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators."""
        rows = circuit().buses()
        return csv_response(rows, "buses.csv") if query.format == "csv" else success(buses=rows)

    @app.get("/buses/<name>", tags=[tables], responses={200: BusResponse, 404: ErrorResponse})
    def bus(path: BusPath) -> Response:
        """One bus: node voltages, loads, generators and the lines that touch it."""
        return success(bus=circuit().bus(path.name))

    @app.get("/lines", tags=[tables], responses={200: LinesResponse, 400: ErrorResponse})
    def lines(query: TableQuery) -> Response:
        """Flow, current, loading and losses of every line and switch."""
        snapshot = circuit().snapshot
        if query.format == "csv":
            return csv_response(snapshot.line_flows, "lines.csv")
        return success(lines=orjson.Fragment(snapshot.line_flows_json))

    @app.get("/transformers", tags=[tables], responses={200: TransformersResponse, 400: ErrorResponse})
    def transformers(query: TableQuery) -> Response:
        """The regulators and XFM1: buses, rating, loading, losses and regulator taps."""
        rows = circuit().transformers()
        return csv_response(rows, "transformers.csv") if query.format == "csv" else success(transformers=rows)

    @app.get("/neighbourhoods", tags=[tables], responses={200: NeighbourhoodsResponse})
    def neighbourhoods() -> Response:
        """The 14 neighbourhoods: buses, loads, base and current set-points, cumulative factor."""
        return success(neighbourhoods=circuit().neighbourhoods())

    @app.get("/generators", tags=[tables], responses={200: GeneratorsResponse})
    def generators() -> Response:
        """Generators added through the API: set-point and delivered power."""
        return success(generators=circuit().generators())

    @app.get("/openapi.json", tags=[service], doc_ui=False)
    def openapi_document() -> Response:
        """The OpenAPI 3 document, generated from the request and response models."""
        return success_raw(app.api_doc)

    @app.get("/docs", doc_ui=False)
    def docs() -> Response:
        """Swagger UI, served from the installed flask-openapi3-swagger package (no CDN)."""
        return redirect("/docs/swagger")

    @app.get("/", doc_ui=False)
    def dashboard() -> Response:
        """The dashboard page (static/index.html)."""
        return send_from_directory(STATIC_DIR, "index.html")


def success_raw(document: dict[str, Any]) -> Response:
    return json_response(orjson.dumps(document))


class AccessLog:
    """WSGI middleware: one line per request on stderr (method, path, status, duration); nothing on disk."""

    def __init__(self, wsgi_app: Any, stream: Any = None) -> None:
        self.wsgi_app = wsgi_app
        self.stream = stream or sys.stderr

    def __call__(self, environ: dict, start_response: Any) -> Any:
        started = time.perf_counter()
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            status_holder.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING")
            self.stream.write(f"{environ.get('REQUEST_METHOD')} {path}{'?' + query if query else ''} "
                              f"{status_holder[0] if status_holder else '-'} {elapsed_ms:.1f}ms\n")
            self.stream.flush()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the IEEE 123-bus power-flow API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--published-taps", action="store_true",
                        help="lock the regulators at the IEEE published taps instead of letting them move")
    parser.add_argument("--voltage-limits", nargs=2, type=float, default=[0.95, 1.05], metavar=("LOW", "HIGH"),
                        help="voltage violation limits in pu (default ANSI C84.1 Range A: 0.95 1.05)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser pages from this origin (repeatable); CORS is off by default")
    parser.add_argument("--api-key", default=None,
                        help=f"require 'Authorization: Bearer KEY' on every change (or set {API_KEY_ENV})")
    parser.add_argument("--no-access-log", action="store_true", help="do not log requests on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import waitress

    args = parse_args(argv)
    application = create_app({"LOCKED_TAPS": PUBLISHED_REGULATOR_TAPS if args.published_taps else None,
                              "VOLTAGE_LIMITS": tuple(args.voltage_limits), "CORS_ORIGINS": args.cors_origin})
    if args.api_key:
        application.config["API_KEY"] = args.api_key
    if not is_loopback(args.host) and not application.config["API_KEY"]:
        print(f"WARNING: listening on {args.host} without an API key: anyone who can reach this address can "
              f"change the grid. Use --api-key or {API_KEY_ENV}.", file=sys.stderr, flush=True)
    wsgi = application.wsgi_app if args.no_access_log else AccessLog(application.wsgi_app)
    application.wsgi_app = wsgi
    server = waitress.create_server(application, host=args.host, port=args.port, threads=args.threads,
                                    ident="ieee123-api", clear_untrusted_proxy_headers=True)
    print(f"IEEE 123-bus power-flow API listening on http://{args.host}:{args.port}/", flush=True)
    serve_until_signalled(server)
    print("stopped", flush=True)


def serve_until_signalled(server: Any) -> None:
    """Run waitress until SIGINT or SIGTERM; then stop accepting, let in-flight requests finish, return.

    The closing work runs inside the server loop (through waitress's trigger), never in the signal handler."""

    def close_listener() -> None:
        while select.select([server.socket], [], [], 0)[0]:  # take in connections the kernel already queued
            server.handle_accept()
        server.del_channel()  # then no new connections; the port is free at once
        server.socket.close()
        threading.Thread(target=close_when_idle, args=(server,), daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.trigger.pull_trigger(close_listener)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()  # returns once every connection and the trigger are closed
    server.task_dispatcher.shutdown()


def close_when_idle(server: Any, timeout_s: float = 10.0) -> None:
    """Once no request is queued, running or unsent, close what is left: the server loop then ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server_busy(server):
        time.sleep(0.01)

    def close_all() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    server.trigger.pull_trigger(close_all)


def server_busy(server: Any, quiet_s: float = 0.1) -> bool:
    """A request queued or running, a response unsent, or a connection that spoke within quiet_s."""
    dispatcher = server.task_dispatcher
    recent = time.time() - quiet_s
    channels = [c for c in list(server._map.values()) if hasattr(c, "last_activity")]
    return bool(dispatcher.queue) or dispatcher.active_count > 0 or any(
        c.requests or c.total_outbufs_len or c.last_activity > recent for c in channels)


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
