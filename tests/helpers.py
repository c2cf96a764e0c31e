"""Assertions shared by the API tests."""

from __future__ import annotations

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
