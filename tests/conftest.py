"""Shared fixtures: fixture scope follows mutation (a session-wide base case for reads, fresh ones for changes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api import create_app  # noqa: E402
from simulation_core import OpenDSSCircuit  # noqa: E402

SHARED_REFERENCE = REPO.parent / "shared" / "reference"


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tmp_dir: Path, *extra_args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start `python api.py` as a user does, from another working directory; wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "api.py"), "--port", str(port), *extra_args],
        cwd=tmp_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read()}")
        try:
            requests.get(f"{url}/state", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not answer within 30 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
