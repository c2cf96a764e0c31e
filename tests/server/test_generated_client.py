"""A client generated from our /openapi.json by a tool nobody here wrote works unchanged against a live server."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import requests
from openapi_spec_validator import validate

from support.server import start_server, stop_server

API_KEY = "generated-client-key"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    process, url = start_server(tmp_path_factory.mktemp("cwd"), "--api-key", API_KEY, "--no-access-log")
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def generated_client(keyed_server, tmp_path_factory):
    """Generate a Python client package with openapi-python-client from the live document, then import it."""
    out = tmp_path_factory.mktemp("generated")
    package = out / "ieee123_client"
    subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--url",
                    f"{keyed_server}/openapi.json", "--output-path", str(package), "--meta", "none"],
                   check=True, capture_output=True, text=True, timeout=120)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("ieee123_client")
    finally:
        sys.path.remove(str(out))


def test_document_is_valid_openapi(keyed_server):
    validate(requests.get(f"{keyed_server}/openapi.json", timeout=5).json())


def test_generated_client_drives_the_grid(generated_client, keyed_server):
    from ieee123_client import AuthenticatedClient
    from ieee123_client.api.grid import add_generator, modify_load_neighbourhood, reset, state
    from ieee123_client.api.tables import buses, generators
    from ieee123_client.models import (AddGeneratorBody, AddGeneratorBodyPhases, EmptyBody, ErrorResponse,
                                       ScaleNeighbourhoodBody)

    client = AuthenticatedClient(base_url=keyed_server, token=API_KEY)
    added = add_generator.sync(client=client, body=AddGeneratorBody(bus_name="16", phases=AddGeneratorBodyPhases(1), kw=200.0))
    assert added.action.generator == "gen_16_3"
    assert added.results.power_summary.total_generation_k_w == pytest.approx(200.0, rel=1e-3)

    scaled = modify_load_neighbourhood.sync(client=client, body=ScaleNeighbourhoodBody(neighbourhood=5, factor=0.8))
    assert scaled.action.loads_changed == ["s19a", "s20a", "s22b", "s24c"]

    current = state.sync(client=client)
    assert current.sequence == scaled.action.sequence
    assert [g.name for g in generators.sync(client=client).generators] == ["gen_16_3"]
    assert len(buses.sync(client=client).buses) == 132

    refused = add_generator.sync(client=client, body=AddGeneratorBody(bus_name="16", phases=AddGeneratorBodyPhases(3), kw=10.0))
    assert isinstance(refused, ErrorResponse) and refused.message.startswith("phases:")

    wrong_key = AuthenticatedClient(base_url=keyed_server, token="wrong")
    assert isinstance(reset.sync(client=wrong_key, body=EmptyBody()), ErrorResponse)
    assert reset.sync(client=client, body=EmptyBody()).action.type_ == "reset"
