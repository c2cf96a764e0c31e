"""The answers a fixed session of plain generators gets (changes, reads, import, undo and the three studies), as
sha256 of each body: what `test_inverters.py` compares with the same session's answers before smart inverters
existed, so generators without `inverter` are shown to answer byte for byte as before.

    python tests/support/plain_generator_answers.py > tests/data/plain_generator_answers.json

was run on main as the inverter work was rebased onto it (ee0fa18, conductor ratings and hours; again on 6977941,
the stochastic study: the same file); running it there gives the same file.
Job bodies are hashed by their `result` only (ids and times differ per run).

Keys an issue added to every answer since (`ADDED_KEYS`) are taken out before hashing: the body is parsed, the keys
removed and the rest written again with orjson, which gives the server's own bytes for everything else (checked: with
no key removed, every body re-written equals the body sent). So "byte for byte" still holds for every other byte.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[2]


#: Keys answers gained after the recording, each asked for by an issue; every other byte is as recorded.
ADDED_KEYS: frozenset[str] = frozenset({"conn", "xy_source", "rating_source", "default_rated_limits", "load_shapes"})


def _as_recorded(row: dict[str, Any]) -> dict[str, Any]:
    """Issue 28 gave every bus x and y: a bus the server places (`xy_source` "placed": IEEE 123's open-tie stubs
    94_open and 300_open) had null x and y when the session was recorded. Deck coordinates are compared as they are."""
    if row.get("xy_source") == "placed":
        return {**row, "x": None, "y": None}
    return row


def _without_added_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_added_keys(item) for key, item in _as_recorded(value).items() if key not in ADDED_KEYS}
    if isinstance(value, list):
        return [_without_added_keys(item) for item in value]
    return value


def _sha_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _sha(body: bytes) -> str:
    """The hash of an answer's body without the added keys."""
    if ADDED_KEYS and body[:1] in (b"{", b"["):
        body = orjson.dumps(_without_added_keys(json.loads(body)))
    return _sha_of(body)


def _job_result(client: Any, response: Any) -> bytes:
    job = response.get_json()["job"]
    deadline = time.monotonic() + 300
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/jobs/{job['id']}").get_json()["job"]
    assert job["status"] == "done", job
    return orjson.dumps(_without_added_keys(job["result"]), option=orjson.OPT_SORT_KEYS)


def session(client: Any) -> dict[str, str]:
    """The session's answers: name -> sha256 of the body (stable parts only)."""
    answers: dict[str, str] = {}

    def post(name: str, path: str, body: dict[str, Any]) -> None:
        response = client.post(path, json=body)
        assert response.status_code == 200, (name, response.get_json())
        answers[name] = _sha(response.data)

    def get(name: str, path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200, (name, response.get_json())
        answers[name] = _sha(response.data)

    post("add_67", "/add_generator", {"bus_name": "67", "phases": 3, "kw": 400})
    post("dry_20", "/add_generator?dry_run=true", {"bus_name": "20", "phases": 1, "kw": 60})
    post("scale_12", "/modify_load_neighbourhood", {"neighbourhood": 12, "factor": 1.3})
    post("add_20", "/add_generator", {"bus_name": "20", "phases": 1, "kw": 60})
    post("update_67", "/add_generator", {"bus_name": "67", "phases": 3, "kw": 150})
    response = client.delete("/generators/gen_20_1")
    assert response.status_code == 200
    answers["remove_20"] = _sha(response.data)
    post("undo", "/undo", {})
    post("add_35", "/add_generator", {"bus_name": "35", "phases": 1, "kw": 90, "phase": 1})
    for name, path in [("generators", "/generators"), ("state", "/state"), ("bus_67", "/buses/67"),
                       ("buses", "/buses"), ("diff", "/diff"), ("lines", "/lines")]:
        get(name, path)
    document = client.get("/export").get_json()
    answers["export_changes"] = _sha_of(orjson.dumps(_without_added_keys(document["changes"])))
    imported = client.post("/scenarios/import", json=document)
    assert imported.status_code == 201, imported.get_json()
    answers["import_results"] = _sha_of(orjson.dumps(_without_added_keys(imported.get_json()["results"]),
                                                     option=orjson.OPT_SORT_KEYS))
    studies = {
        "hosting_capacity": {"buses": ["67", "20", "85"], "step_kw": 50},
        "hosting_capacity_hours": {"buses": ["85", "114"], "step_kw": 50, "hours": ["daytime_minimum", "peak_load"]},
        "time_series": {"hours": 24, "start_hour": 4320},
        "batch": {"cases": [{"name": "more", "changes": [
            {"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 900},
            {"op": "add_generator", "bus_name": "114", "phases": 1, "kw": 120}]},
            {"name": "off", "changes": [{"op": "remove_generator", "name": "gen_67_123"}]}]},
    }
    for kind, body in studies.items():
        response = client.post(f"/studies/{kind.removesuffix('_hours')}", json=body)
        assert response.status_code in (200, 202), response.get_json()
        answers[f"study_{kind}"] = _sha_of(_job_result(client, response))
    return answers


def main() -> None:
    sys.path.insert(0, str(REPO))
    from api import create_app

    app = create_app({"TESTING": True, "WORKERS": 1})
    try:
        print(json.dumps(session(app.test_client()), indent=2))
    finally:
        app.extensions["jobs"].close()


if __name__ == "__main__":
    main()
