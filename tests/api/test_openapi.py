"""The OpenAPI document is a contract: walk every route and validate real responses, success and error."""

from __future__ import annotations

import re

import jsonschema
import pytest

from support.docs import blocks, section

CASES = [  # method, path as in the document, concrete URL, JSON body, expected status
    ("get", "/health", "/health", None, 200),
    ("get", "/feeders", "/feeders", None, 200),
    ("get", "/state", "/state", None, 200),
    ("get", "/state", "/state?sections=power_summary,losses", None, 200),
    ("get", "/state", "/state?sections=nope", None, 400),
    ("get", "/buses", "/buses", None, 200),
    ("get", "/buses", "/buses?format=xml", None, 400),
    ("get", "/buses/{name}", "/buses/16", None, 200),
    ("get", "/buses/{name}", "/buses/nowhere", None, 404),
    ("get", "/lines", "/lines", None, 200),
    ("get", "/neighbourhoods", "/neighbourhoods", None, 200),
    ("get", "/transformers", "/transformers", None, 200),
    ("post", "/add_generator", "/add_generator", {"bus_name": "16", "phases": 1, "kw": 200}, 200),
    ("post", "/add_generator", "/add_generator", {"bus_name": "16", "phases": "1", "kw": 200}, 400),
    ("post", "/add_generator", "/add_generator", {"bus_name": "nowhere", "phases": 1, "kw": 1}, 404),
    ("post", "/add_generator", "/add_generator", {"bus_name": "16", "phases": 3, "kw": 1}, 422),
    ("get", "/generators", "/generators", None, 200),
    ("get", "/buses/{name}", "/buses/16", None, 200),
    ("post", "/modify_load_neighbourhood", "/modify_load_neighbourhood", {"neighbourhood": 5, "factor": 0.8}, 200),
    ("post", "/modify_load_neighbourhood", "/modify_load_neighbourhood", {"neighbourhood": 5.5, "factor": 1}, 400),
    ("post", "/modify_load_neighbourhood", "/modify_load_neighbourhood", {"neighbourhood": 50, "factor": 1}, 404),
    ("post", "/modify_load_neighbourhood", "/modify_load_neighbourhood", {"neighbourhood": 5, "factor": -1}, 422),
    ("delete", "/generators/{name}", "/generators/gen_16_3", None, 200),
    ("delete", "/generators/{name}", "/generators/gen_16_3", None, 404),
    ("post", "/reset", "/reset", {}, 200),
    ("post", "/reset", "/reset", {"x": 1}, 400),
    ("post", "/undo", "/undo", {}, 200),
    ("post", "/undo", "/undo?dry_run=true", {}, 200),
    ("get", "/changes", "/changes", None, 200),
    ("get", "/export", "/export", None, 200),
    ("get", "/diff", "/diff", None, 200),
    ("get", "/diff", "/diff?against=nowhere", None, 404),
    ("get", "/scenarios", "/scenarios", None, 200),
    ("post", "/scenarios", "/scenarios", {"name": "pv at 67"}, 201),
    ("post", "/scenarios", "/scenarios", {"name": ""}, 400),
    ("post", "/scenarios", "/scenarios", {"from": "nowhere"}, 404),
    ("get", "/scenarios/{scenario_id}", "/scenarios/{created}", None, 200),
    ("get", "/scenarios/{scenario_id}", "/scenarios/nowhere", None, 404),
    ("post", "/scenarios/{scenario_id}/add_generator", "/scenarios/{created}/add_generator",
     {"bus_name": "67", "phases": 3, "kw": 500}, 200),
    ("post", "/scenarios/{scenario_id}/add_generator", "/scenarios/{created}/add_generator?dry_run=true",
     {"bus_name": "67", "phases": 3, "kw": 900}, 200),
    ("post", "/scenarios/{scenario_id}/add_generator", "/scenarios/nowhere/add_generator",
     {"bus_name": "67", "phases": 3, "kw": 500}, 404),
    ("post", "/scenarios/{scenario_id}/modify_load_neighbourhood", "/scenarios/{created}/modify_load_neighbourhood",
     {"neighbourhood": 5, "factor": 0.8}, 200),
    ("get", "/scenarios/{scenario_id}/state", "/scenarios/{created}/state", None, 200),
    ("get", "/scenarios/{scenario_id}/health", "/scenarios/{created}/health", None, 200),
    ("get", "/scenarios/{scenario_id}/buses", "/scenarios/{created}/buses", None, 200),
    ("get", "/scenarios/{scenario_id}/buses/{name}", "/scenarios/{created}/buses/67", None, 200),
    ("get", "/scenarios/{scenario_id}/lines", "/scenarios/{created}/lines", None, 200),
    ("get", "/scenarios/{scenario_id}/transformers", "/scenarios/{created}/transformers", None, 200),
    ("get", "/scenarios/{scenario_id}/neighbourhoods", "/scenarios/{created}/neighbourhoods", None, 200),
    ("get", "/scenarios/{scenario_id}/generators", "/scenarios/{created}/generators", None, 200),
    ("get", "/scenarios/{scenario_id}/changes", "/scenarios/{created}/changes", None, 200),
    ("get", "/scenarios/{scenario_id}/diff", "/scenarios/{created}/diff?against=default", None, 200),
    ("post", "/scenarios/{scenario_id}/undo", "/scenarios/{created}/undo", {}, 200),
    ("delete", "/scenarios/{scenario_id}/generators/{name}", "/scenarios/{created}/generators/gen_67_123", None, 200),
    ("post", "/scenarios/{scenario_id}/reset", "/scenarios/{created}/reset", {}, 200),
    ("post", "/scenarios/{scenario_id}/undo", "/scenarios/{created}/undo", {}, 200),
    ("get", "/scenarios/{scenario_id}/export", "/scenarios/{created}/export", None, 200),
    ("post", "/scenarios/import", "/scenarios/import", "{exported}", 201),
    ("post", "/scenarios/import", "/scenarios/import", {"format": "ieee123-scenario"}, 400),
    ("post", "/studies/hosting_capacity", "/studies/hosting_capacity?wait=60", {"buses": ["67"], "step_kw": 500}, 200),
    ("post", "/studies/hosting_capacity", "/studies/hosting_capacity", {"buses": ["nowhere"]}, 422),
    ("get", "/jobs/{job_id}", "/jobs/{job}", None, 200),
    ("get", "/jobs/{job_id}/result", "/jobs/{job}/result", None, 200),
    ("post", "/scenarios/{scenario_id}/studies/hosting_capacity",
     "/scenarios/{created}/studies/hosting_capacity?wait=60", {"buses": ["67"], "step_kw": 500}, 200),
    ("post", "/studies/time_series", "/studies/time_series?wait=60", {"hours": 3}, 200),
    ("post", "/studies/time_series", "/studies/time_series", {"hours": 0}, 422),
    ("post", "/scenarios/{scenario_id}/studies/time_series", "/scenarios/{created}/studies/time_series?wait=60",
     {"hours": 3}, 200),
    ("post", "/studies/batch", "/studies/batch?wait=60", {"cases": [{"changes": [{"op": "reset"}]}]}, 200),
    ("post", "/studies/batch", "/studies/batch", {"cases": [{"changes": [{"op": "fly"}]}]}, 400),
    ("post", "/scenarios/{scenario_id}/studies/batch", "/scenarios/{created}/studies/batch?wait=60",
     {"cases": [{"name": "pv", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 50}]}]}, 200),
    ("post", "/studies/stochastic_hosting_capacity", "/studies/stochastic_hosting_capacity?wait=60",
     {"penetration_pct": {"start": 20, "stop": 40, "step": 20}, "samples": 2}, 200),
    ("get", "/jobs/{job_id}/result", "/jobs/{job}/result?format=json&table=samples", None, 200),
    ("post", "/studies/stochastic_hosting_capacity", "/studies/stochastic_hosting_capacity", {"samples": 0}, 422),
    ("post", "/studies/stochastic_hosting_capacity", "/studies/stochastic_hosting_capacity",
     {"penetration_pct": {"start": "10"}}, 400),
    ("post", "/scenarios/{scenario_id}/studies/stochastic_hosting_capacity",
     "/scenarios/{created}/studies/stochastic_hosting_capacity?wait=60",
     {"penetration_pct": {"start": 50, "stop": 50, "step": 10}, "samples": 1, "seed": 7}, 200),
    ("post", "/studies/load_hosting_capacity", "/studies/load_hosting_capacity?wait=60",
     {"buses": ["67"], "step_kw": 500, "pf": 0.95}, 200),
    ("post", "/studies/load_hosting_capacity", "/studies/load_hosting_capacity", {"pf": 0.2}, 422),
    ("post", "/studies/load_hosting_capacity", "/studies/load_hosting_capacity", {"hours": ["daytime_minimum"]}, 400),
    ("post", "/scenarios/{scenario_id}/studies/load_hosting_capacity",
     "/scenarios/{created}/studies/load_hosting_capacity?wait=60", {"buses": ["67"], "hours": ["evening_peak"]}, 200),
    ("post", "/studies/ev_adoption", "/studies/ev_adoption?wait=60",
     {"adoption_pct": {"start": 50, "stop": 100, "step": 50}, "samples": 2}, 200),
    ("post", "/studies/ev_adoption", "/studies/ev_adoption", {"coincidence": 0}, 422),
    ("post", "/studies/ev_adoption", "/studies/ev_adoption", {"charger_kW": "7.2"}, 400),
    ("post", "/scenarios/{scenario_id}/studies/ev_adoption", "/scenarios/{created}/studies/ev_adoption?wait=60",
     {"adoption_pct": {"start": 100, "stop": 100, "step": 10}, "samples": 1, "hours": ["evening_peak"]}, 200),
    ("post", "/studies/time_series", "/studies/time_series", {"hours": 8760}, 202),
    ("get", "/jobs/{job_id}/result", "/jobs/{job}/result", None, 409),
    ("delete", "/jobs/{job_id}", "/jobs/{job}", None, 200),
    ("get", "/jobs/{job_id}", "/jobs/nothing", None, 404),
    ("get", "/jobs", "/jobs", None, 200),
    ("delete", "/scenarios/{scenario_id}", "/scenarios/{created}", None, 200),
    ("delete", "/scenarios/{scenario_id}", "/scenarios/default", None, 409),
]


@pytest.fixture(scope="module")
def app_and_document():
    from api import create_app

    app = create_app({"TESTING": True})
    client = app.test_client()
    return client, client.get("/openapi.json").json


def response_schema(document: dict, path: str, method: str, status: int) -> dict:
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document status {status}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def test_document_lists_every_route(app_and_document):
    client, document = app_and_document
    documented = {(p, m) for p, ops in document["paths"].items() for m in ops}
    assert documented == {(p, m) for m, p, *_ in CASES}


def test_real_responses_conform(app_and_document):
    """Run in order (the generator is added before it is read and deleted); every response must validate."""
    client, document = app_and_document
    created, exported, job = None, None, None
    for method, path, url, body, status in CASES:
        url = url.replace("{created}", str(created)).replace("{job}", str(job))
        body = exported if body == "{exported}" else body
        response = getattr(client, method)(url, json=body) if body is not None else getattr(client, method)(url)
        assert response.status_code == status, (method, url, response.json)
        jsonschema.validate(response.json, response_schema(document, path, method, status),
                            cls=jsonschema.Draft202012Validator)
        if status == 201 and created is None:
            created = response.json["scenario"]["id"]
        if path.endswith("/export"):
            exported = response.json
        if "/studies/" in path and status in (200, 202):
            job = response.json["job"]["id"]


def test_document_examples_come_from_the_docs(app_and_document):
    """The OpenAPI document's first example of each change is the one docs/api.md's endpoint table gives."""
    _, document = app_and_document
    table = section("docs/api.md", "## Endpoints")
    for path in ["/add_generator", "/modify_load_neighbourhood"]:
        examples = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]
        example = next(iter(examples.values()))["value"]
        compact = ", ".join(f'"{k}": {v if not isinstance(v, str) else chr(34) + v + chr(34)}' for k, v in example.items())
        row = next(line for line in table.splitlines() if line.startswith(f"| `POST {path}` |"))
        assert "`{" + compact + "}`" in row, f"{path} example {compact} not in docs/api.md's endpoint table"


def test_swagger_ui_is_served_locally(app_and_document):
    client, _ = app_and_document
    assert client.get("/docs").status_code == 302
    page = client.get("/docs/swagger").data.decode()
    assert "cdn" not in page.lower() and "swagger/js/swagger-ui-bundle.js" in page
    assert client.get("/docs/swagger/js/swagger-ui-bundle.js").status_code == 200


def test_the_docs_document_every_route_of_the_document(app_and_document):
    """Docs that tests check: each documented path appears in docs/api.md's endpoint table and in a curl example of
    the docs (README.md or docs/*.md; tests/server/test_e2e.py and tests/docs/ run them all)."""
    _, document = app_and_document
    table = section("docs/api.md", "## Endpoints")
    examples = " ".join(block.text for block in blocks() if block.language in ("bash", "sh"))
    for path, operations in document["paths"].items():
        unscoped = path.removeprefix("/scenarios/{scenario_id}")
        if unscoped != path and unscoped in document["paths"]:
            path = unscoped  # one row serves both URL forms; the table says so once
            assert "`/scenarios/<scenario_id>/…`" in table
        shown = re.sub(r"\{(\w+)\}", r"<\1>", path)
        for method in operations:
            assert f"`{method.upper()} {shown}`" in table, f"docs/api.md's endpoint table lacks {method.upper()} {shown}"
        example_path = path.split("{")[0]
        assert f"127.0.0.1:5000{example_path}" in examples, f"the docs have no curl example for {path}"
