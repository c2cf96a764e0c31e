"""Fixtures used across the folders: fixture scope follows mutation (a session-wide base case for reads, fresh ones
for changes). Shared code that is not a fixture is in `support/` (import it from there, not from this file)."""

from __future__ import annotations

from typing import Iterator

import pytest

from api import create_app
from simulation_core import OpenDSSCircuit
from support.server import start_server, stop_server


def pytest_report_header() -> list[str]:
    import opendssdirect

    return [f"OpenDSSDirect.py {opendssdirect.__version__}", opendssdirect.Basic.Version().split(";")[0]]


@pytest.fixture(scope="session")
def base_circuit() -> OpenDSSCircuit:
    """The solved base case; tests using it must not change it."""
    return OpenDSSCircuit()


@pytest.fixture
def circuit() -> OpenDSSCircuit:
    """A fresh circuit a test may change."""
    return OpenDSSCircuit()


@pytest.fixture
def client(circuit: OpenDSSCircuit):
    """A Flask test client over a fresh circuit."""
    return create_app({"CIRCUIT": circuit, "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python api.py` process on a free port, started from an empty temporary directory.

    No access log: nobody reads the piped stderr during the module, and a full pipe would block the server."""
    work_dir = tmp_path_factory.mktemp("server-cwd")
    process, url = start_server(work_dir, "--no-access-log")
    try:
        yield url
    finally:
        stop_server(process)
    assert list(work_dir.iterdir()) == [], "the server wrote into its working directory"
