"""Schemathesis against a live server's own /openapi.json: no server errors, every response as documented.

Uses schemathesis 4's Python API (`schemathesis.openapi.from_url`, `APIOperation.as_strategy`) with hypothesis
directly: schemathesis's pytest plugin (`from_fixture`/`parametrize`) uses a pytest internal (`Function._nodeid`)
that pytest 9 no longer has. One test per operation and generation mode, EXAMPLES examples each.
The operations are listed at collection from the in-process document; a test checks the live one has the same.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any, Iterator

import pytest
import schemathesis  # requirements-dev.txt: a missing install fails here rather than skipping silently
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                 not_a_server_error, response_headers_conformance, response_schema_conformance,
                                 status_code_conformance)
from schemathesis.config import SchemathesisConfig

from api import create_app
from support.server import start_server, stop_server

EXAMPLES = 25
TWIN_EXAMPLES = 10
API_KEY = "schemathesis-test-key"
CONFORMANCE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                      response_headers_conformance, response_schema_conformance]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def document_operations(document: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(METHOD, path, takes input) for every operation of an OpenAPI document."""
    return sorted((method.upper(), path, bool(operation.get("parameters") or operation.get("requestBody")))
                  for path, item in document["paths"].items()
                  for method, operation in item.items() if method in HTTP_METHODS)


OPERATIONS = document_operations(create_app({"TESTING": True}).api_doc)
TOP_LEVEL_PATHS = {path for _, path, _ in OPERATIONS if not path.startswith("/scenarios")}


def is_scenario_twin(path: str) -> bool:
    """`/scenarios/{scenario_id}/state` and the like: the same implementation as `/state`, with the id's own
    checks; fewer examples here, the full count on the `/…` form."""
    prefix = "/scenarios/{scenario_id}"
    return path.startswith(prefix + "/") and path[len(prefix):] in TOP_LEVEL_PATHS


# The open server runs every operation. With a key, auth is part of what is checked, so the keyed server runs every
# operation that changes something; reads are the same on both.
OPEN_CASES = [pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
              for method, path, takes_input in OPERATIONS
              for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
              if takes_input or mode is GenerationMode.POSITIVE]  # nothing to break in an operation without input
KEYED_CASES = [case for case in OPEN_CASES if case.values[0] != "GET"]


@contextlib.contextmanager
def running_server(tmp_path_factory: pytest.TempPathFactory, keyed: bool) -> Iterator[dict[str, Any]]:
    """Our own server (schemathesis changes the grid), as started by default or with --api-key; output drained and
    checked for tracebacks at the end. With a key, schemathesis sends it for the document's bearer scheme."""
    work_dir = tmp_path_factory.mktemp("schemathesis-cwd")
    # One study worker and two jobs at most: generated studies (a year of hours, every bus) must not starve the
    # rest of the suite of CPU; the limit's 429 is part of what is checked.
    process, url = start_server(work_dir, "--workers", "1", "--max-jobs", "2",
                                *(["--api-key", API_KEY] if keyed else []), env={"IEEE123_API_KEY": ""})
    output: list[str] = []
    drains = [threading.Thread(target=lambda s=s: output.extend(iter(s.readline, "")), daemon=True)
              for s in (process.stdout, process.stderr)]
    for drain in drains:
        drain.start()
    try:
        auth = {"auth": {"openapi": {"bearer": {"bearer": API_KEY}}}} if keyed else {}
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=SchemathesisConfig.from_dict(auth))
        yield {"url": url, "keyed": keyed, "schema": schema}
    finally:
        stop_server(process)
        for drain in drains:
            drain.join(timeout=5)
    assert list(work_dir.iterdir()) == [], "the server wrote into its working directory"
    log = "".join(output)
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 300):][:5000]


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_server(tmp_path_factory, keyed=False) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_server(tmp_path_factory, keyed=True) as server:
        yield server


@pytest.mark.parametrize("server_name", ["open_server", "keyed_server"])
def test_live_document_has_the_collected_operations(request, server_name):
    import requests

    live = requests.get(f"{request.getfixturevalue(server_name)['url']}/openapi.json", timeout=30).json()
    assert document_operations(live) == OPERATIONS
    assert len(OPERATIONS) >= 10


@pytest.mark.parametrize("method,path,mode", OPEN_CASES)
def test_operation_conforms(open_server, method, path, mode):
    """Never a 5xx; status, content type, headers and body as the document says. Data that breaks the
    document (negative mode) must also be refused with a 4xx."""
    check_operation(open_server, method, path, mode)


@pytest.mark.parametrize("method,path,mode", KEYED_CASES)
def test_change_conforms_with_an_api_key(keyed_server, method, path, mode):
    """The same on a server started with --api-key, where a change without the key must also be refused."""
    check_operation(keyed_server, method, path, mode)


def check_operation(server: dict[str, Any], method: str, path: str, mode: GenerationMode) -> None:
    """Hypothesis examples of one operation against one live server: they share its state (the changes earlier
    examples made stay), as a user's requests do."""
    operation = server["schema"][path][method]
    checks = CONFORMANCE_CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else []) \
        + ([ignored_auth] if server["keyed"] else [])
    statuses: Counter = Counter()
    examples = TWIN_EXAMPLES if is_scenario_twin(path) else EXAMPLES

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call_and_validate(checks=checks, timeout=30)
        statuses[response.status_code] += 1

    run()
    config = "api-key" if server["keyed"] else "open"
    print(f"\n{config} {method} {path} {mode.value}: {sum(statuses.values())} calls, "
          f"statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 1
    assert not any(status >= 500 for status in statuses)
