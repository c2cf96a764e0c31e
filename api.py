"""HTTP API over the IEEE 123-bus power flow: `create_app` builds the app (request checks, error answers, the
scenario registry, the study executor) and registers the routes of `routes/`, thin routes that validate, call the
scenario registry and serialise. Every grid route exists twice, at `/…` (the `default` scenario) and at
`/scenarios/<id>/…`, from one implementation (`routes.web.grid_route`).

Run `python api.py` to compile the feeder and serve on http://127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import functools
import gc
import hmac
import os
import sys
from typing import Any, Callable

from flask import Response, request
from flask_compress import Compress
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from routes.grid import register_grid_routes
from routes.scenario import register_scenario_routes
from routes.service import register_service_routes
from routes.study import register_study_routes
from routes.web import COMPRESSION, STATIC_DIR, error_response
from scenarios import ScenarioError, ScenarioRegistry, ScenarioStore, StateFileError, StorageFullError
from scenarios.feeders import ServedFeeder, ServedFeeders
from web.schemas import ErrorResponse, describe_validation_error
from web.serving import AccessLog, is_loopback, serve_until_signalled
from engine.circuit import OpenDSSCircuit
from engine.ieee123 import PUBLISHED_REGULATOR_TAPS
from engine.deck import DeckError
from engine.errors import FeederError, NotFoundError, SimulationError
from engine.feeder import feeder_option
from engine.neighbourhoods import DEFAULT_NEIGHBOURHOODS
from engine.interface import Circuit
from engine.pool import EnginePool, HostUnavailable
from engine.settings import ANSI_RANGE_A_PU, EngineSettings
from studies.executors import ExecutorUnavailable, LocalPool, usable_cores
from studies.jobs import JobManager, StudyError

MAX_BODY_BYTES = 64 * 1024
MAX_IMPORT_BYTES = 2 * 1024 * 1024  # a scenario document of up to 10,000 changes
#: Larger bodies some routes take (view names, both URL forms): documents, inline shapes, batches.
BODY_LIMITS = {"import_scenario": MAX_IMPORT_BYTES, "time_series": 1024 * 1024, "scenario_time_series": 1024 * 1024,
               "batch": 8 * 1024 * 1024, "scenario_batch": 8 * 1024 * 1024}
JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}
STATE_CHANGING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_KEY_ENV = "IEEE123_API_KEY"
#: The dashboard and every API answer: our own files only, no inline script or style, never framed by another site
#: (so no other page can trick a click on Reset). The page has no inline code to allow (static/README.md).
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Swagger UI (/docs/…, from flask-openapi3-swagger): its page template carries an inline <script> (its settings) and
#: an inline <style>, and its stylesheet draws icons from data: URLs. Still our own files only, and never framed.
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
DASK_SCHEDULER_ENV = "IEEE123_DASK_SCHEDULER"
#: flask-compress: JSON and CSV answers gzip-compressed when the client accepts gzip (docs/api.md, "Compression"),
#: others (curl as is) get them plain. Level 1: on the 8500-node feeder's 2.4 MB GET /state, 14 ms for 4.0x smaller
#: against 52 ms for 4.7x at the library's default 6. Below 1 KB an answer fits a packet: nothing to gain. Only gzip
#: (one compressed ETag per state, see routes.web.compressed_tag); streams as they are; our routes answer
#: If-None-Match themselves, before any body is built.
COMPRESSION_CONFIG = {"COMPRESS_ALGORITHM": COMPRESSION, "COMPRESS_LEVEL": 1, "COMPRESS_MIN_SIZE": 1024,
                      "COMPRESS_MIMETYPES": ["application/json", "text/csv"], "COMPRESS_STREAMS": False,
                      "COMPRESS_EVALUATE_CONDITIONAL_REQUEST": False}


def validation_error_callback(error: ValidationError) -> Response:
    message, field = describe_validation_error(error)
    return error_response(400, message, field)


def operation_id(*, name: str = "", **_: Any) -> str:
    """Operation ids are the view names (add_generator, state, …): generated clients read well."""
    return name


def create_app(config: dict[str, Any] | None = None) -> OpenAPI:
    """Build the app and its scenario registry.

    Config: CIRCUIT (a ready OpenDSSCircuit for the default scenario), ENGINE_SETTINGS (an EngineSettings: voltage
    limits, locked taps, feeder; default EngineSettings()), FEEDERS (EngineSettings of every feeder served, the
    default's first; default [ENGINE_SETTINGS]), STATE_FILE
    (SQLite file; none: in memory), MAX_SCENARIOS, MAX_LIVE_SCENARIOS, CORS_ORIGINS, API_KEY, ENGINE_HOSTS."""
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
    app.config.update(COMPRESSION_CONFIG)
    app.config.update({k: v for k, v in config.items() if k != "CIRCUIT"})
    every_settings: list[EngineSettings] = list(config.get("FEEDERS") or [config.get("ENGINE_SETTINGS",
                                                                                      EngineSettings())])
    settings = every_settings[0]
    pool = None
    if config.get("ENGINE_HOSTS", 1) > 1:  # engines in host processes; 1 keeps them in this process
        pool = EnginePool(config["ENGINE_HOSTS"], settings)
    app.extensions["engine_pool"] = pool
    feeders = ServedFeeders([ServedFeeder.of(each, engine_maker(each, pool)) for each in every_settings])

    app.extensions["jobs"] = JobManager(study_executor(config, settings),
                                        max_jobs=config.get("MAX_JOBS", 4))
    state_file = config.get("STATE_FILE")
    max_scenarios = config.get("MAX_SCENARIOS", 64)
    store = ScenarioStore(state_file)
    store.claim_feeder(feeders.default.name, feeders.default.sha256, same_files=not feeders.default.ours)
    app.extensions["scenarios"] = ScenarioRegistry(
        store, feeders, max_scenarios=max_scenarios,
        max_live=config.get("MAX_LIVE_SCENARIOS", 32) if state_file else max_scenarios,
        default_circuit=None if pool else config.get("CIRCUIT"))
    if config.get("CORS_ORIGINS"):
        from flask_cors import CORS

        CORS(app, origins=list(config["CORS_ORIGINS"]), methods=["GET", "POST", "DELETE"],
             allow_headers=["Content-Type", "Authorization", "If-Match", "If-None-Match", "Idempotency-Key"],
             expose_headers=["ETag", "Location", "Idempotent-Replayed"])
    register_request_checks(app)
    register_error_handlers(app)
    register_security_headers(app)
    Compress(app)
    register_grid_routes(app)
    register_scenario_routes(app)
    register_study_routes(app)
    register_service_routes(app)
    return app


def engine_maker(settings: EngineSettings, pool: EnginePool | None) -> Callable[[], Circuit]:
    """How the registry makes an engine of one feeder: in an engine host when there are hosts, else here."""
    if pool is not None:
        return functools.partial(pool.make_circuit, settings)
    return functools.partial(OpenDSSCircuit, settings=settings)


def study_executor(config: dict[str, Any], settings: EngineSettings) -> Any:
    """Where study tasks run: a Dask cluster when a scheduler is named, else worker processes here."""
    scheduler = config.get("DASK_SCHEDULER") or os.environ.get(DASK_SCHEDULER_ENV)
    if scheduler:
        from studies.cluster import (
            DaskExecutor,  # Dask is imported only for a user who asked for it
        )

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


def register_security_headers(app: OpenAPI) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        """On every answer (pages, JSON, errors, 304s): no MIME sniffing, and the page's or Swagger UI's policy."""
        response.headers["X-Content-Type-Options"] = "nosniff"
        docs = request.path == "/docs" or request.path.startswith("/docs/")
        response.headers["Content-Security-Policy"] = DOCS_POLICY if docs else PAGE_POLICY
        return response


def register_error_handlers(app: OpenAPI) -> None:
    @app.errorhandler(SimulationError)
    def simulation_error(error: SimulationError) -> Response:
        status = 404 if isinstance(error, NotFoundError) else 422
        return error_response(status, str(error), error.field)

    @app.errorhandler(ScenarioError)
    def scenario_error(error: ScenarioError) -> Response:
        return error_response(error.status, str(error), error.field)

    @app.errorhandler(HostUnavailable)
    def host_unavailable(error: HostUnavailable) -> Response:
        response = error_response(503, str(error))
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.errorhandler(StorageFullError)
    def storage_full(error: StorageFullError) -> Response:
        return error_response(507, str(error))

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the IEEE 123-bus power-flow API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--threads", type=int, default=4,
                        help="request threads (default 4: studies run in worker processes, and fewer threads keep "
                             "each one's caches warm)")
    parser.add_argument("--feeder", action="append", default=[], metavar="[NAME=]PATH",
                        help="serve the OpenDSS deck whose master file is PATH (relative redirects resolved as OpenDSS "
                             "resolves them), named NAME (default: the deck's circuit name). Default: our IEEE 123-bus "
                             "deck")
    parser.add_argument("--neighbourhoods", type=positive_int, default=None, metavar="N",
                        help="neighbourhoods to derive for a feeder without a neighbourhoods.json beside its master "
                             f"(default {DEFAULT_NEIGHBOURHOODS}; docs/feeder.md says how they are derived)")
    parser.add_argument("--published-taps", action="store_true",
                        help="lock the regulators at the IEEE published taps instead of letting them move")
    parser.add_argument("--voltage-limits", nargs=2, type=float, default=list(ANSI_RANGE_A_PU),
                        metavar=("LOW", "HIGH"), help="voltage violation limits in pu (default ANSI C84.1 Range A: "
                                                      f"{ANSI_RANGE_A_PU[0]} {ANSI_RANGE_A_PU[1]})")
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
    parser.add_argument("--engine-hosts", type=positive_int, default=None, metavar="N",
                        help="processes that own the scenarios' engines, so changes to different scenarios use "
                             f"different cores (default: the usable cores, {default_engine_hosts()} here; 1 keeps "
                             "the engines in the web process)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import waitress

    args = parse_args(argv)
    try:
        every_settings = engine_settings(args)
        application = create_app({"FEEDERS": every_settings, "CORS_ORIGINS": args.cors_origin,
                                  "STATE_FILE": args.state, "MAX_SCENARIOS": args.max_scenarios,
                                  "MAX_LIVE_SCENARIOS": args.max_live_scenarios, "WORKERS": args.workers,
                                  "MAX_JOBS": args.max_jobs, "DASK_SCHEDULER": args.dask_scheduler,
                                  "ENGINE_HOSTS": args.engine_hosts or default_engine_hosts()})
    except (StateFileError, ExecutorUnavailable, DeckError, FeederError, UsageError) as error:
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
    names = [each.feeder.name if each.feeder else "ieee123 (IEEE 123-bus test feeder)" for each in every_settings]
    print(f"Power-flow API on feeder{'s' if len(names) > 1 else ''} {', '.join(names)} listening on "
          f"http://{args.host}:{args.port}/", flush=True)
    serve_until_signalled(server)
    application.extensions["jobs"].close()  # cancel studies, stop the worker processes
    if application.extensions["engine_pool"] is not None:
        application.extensions["engine_pool"].close()
    print("stopped", flush=True)



class UsageError(Exception):
    """Options that do not go together (exit status 2, before anything starts)."""


def engine_settings(args: argparse.Namespace) -> list[EngineSettings]:
    """The settings of each feeder this server serves, from its command line (reading each deck, once): the
    first is the default scenario's."""
    feeders = [feeder_option(text, args.neighbourhoods) for text in args.feeder] or [None]
    if args.neighbourhoods and not any(feeder and feeder.neighbourhoods is None for feeder in feeders):
        raise UsageError("--neighbourhoods: every feeder served has its own neighbourhoods.json; N applies only to "
                         "a feeder whose neighbourhoods are derived")
    names = [feeder.name if feeder else "ieee123" for feeder in feeders]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"--feeder: two feeders named {repeated[0]}; name them apart with --feeder NAME=PATH")
    if args.published_taps and feeders != [None]:
        raise UsageError("--published-taps: the IEEE published taps are those of our IEEE 123-bus deck, not of "
                         f"feeder {names[0] if feeders[0] else names[1]}")
    taps = PUBLISHED_REGULATOR_TAPS if args.published_taps else None
    return [EngineSettings.of(args.voltage_limits, taps, feeder) for feeder in feeders]


def settle_heap() -> None:
    """Move what start-up made (libraries, the compiled feeder: ~140,000 objects) out of the garbage
    collector's sight. They live as long as the server, and a full collection that scanned them took ~90 ms:
    a stall some request would wait out."""
    gc.collect()
    gc.freeze()


def default_engine_hosts() -> int:
    """One engine host per usable core; 1 (the engines in this process) on one core, or where a host cannot be
    handed its socket (`pass_fds` is POSIX only)."""
    return usable_cores() if os.name == "posix" else 1


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
