"""The service routes: the feeders served, the OpenAPI document, Swagger UI and the dashboard page."""

from __future__ import annotations

import orjson
from flask import Response, redirect, send_from_directory
from flask_openapi3 import OpenAPI

from routes.web import STATIC_DIR, json_response, registry, service, success, tables
from web.feeder_schemas import FeedersResponse
from web.schemas import ErrorResponse


def register_service_routes(app: OpenAPI) -> None:
    @app.get("/feeders", tags=[tables], responses={200: FeedersResponse, 400: ErrorResponse})
    def feeders() -> Response:
        """The feeders this server serves (chosen by whoever starts it: `--feeder`), each with what it holds, where
        its neighbourhoods and coordinates come from, and what rests on a guess."""
        return success(feeders=registry().feeder_facts())

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
