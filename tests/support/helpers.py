"""Assertions and waits shared by the API tests."""

from __future__ import annotations

import time
from typing import Any


def assert_error_shape(response: Any, status: int, field: str | None = None) -> dict:
    """Every error is JSON {"status": "error", "message": ...} with the expected HTTP status."""
    assert response.status_code == status, (response.status_code, _body(response))
    assert response.headers["Content-Type"].startswith("application/json")
    body = _body(response)
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["message"].startswith(f"{field}:"), body["message"]
    return body


def _body(response: Any) -> dict:
    return response.json() if callable(getattr(response, "json", None)) else response.json


def finished(client, response, timeout_s: float = 120) -> dict:
    """The job of a study response, waited for until it ends."""
    assert response.status_code in (200, 202), response.json
    job = response.json["job"]
    deadline = time.monotonic() + timeout_s
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/jobs/{job['id']}").json["job"]
    assert job["status"] == "done", job
    return job
