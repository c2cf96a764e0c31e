"""Malformed HTTP on a raw socket: the server answers 4xx or keeps waiting on that connection alone,
and never stops serving everyone else."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from support.server import start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, url = start_server(tmp_path_factory.mktemp("cwd"), "--no-access-log")
    yield url
    stop_server(process)


def raw_exchange(url: str, payload: bytes, timeout: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


@pytest.mark.parametrize("payload", [
    b"GARBAGE\r\n\r\n",
    b"POST /add_generator HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /add_generator HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /add_generator HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
    b"GET /state HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
])
def test_malformed_requests_get_a_4xx_status(server, payload):
    answer = raw_exchange(server, payload)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.") and status_line.split()[1][:1] == b"4", answer[:200]


def test_oversized_headers_are_refused_quickly(server):
    """Over waitress's 256 KiB header limit: a 431 or the connection closed at once, never a hang."""
    started = time.monotonic()
    try:
        answer = raw_exchange(server, b"GET /state HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n")
        assert answer == b"" or answer.split(b"\r\n", 1)[0].split()[1] == b"431", answer[:200]
    except ConnectionResetError:
        pass
    assert time.monotonic() - started < 3
    assert requests.get(f"{server}/health", timeout=5).status_code == 200


def test_a_stalled_client_does_not_block_others(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as stalled:
        stalled.sendall(b"POST /add_generator HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"bus_name\":")  # body never finished
        started = time.monotonic()
        assert requests.get(f"{server}/health", timeout=5).json()["ready"] is True
        assert time.monotonic() - started < 2
    assert requests.get(f"{server}/generators", timeout=5).json()["generators"] == []


def test_every_answer_carries_nosniff_and_a_policy_that_forbids_framing(server):
    """Pages, JSON, errors and 304s alike; the page's strict policy everywhere but Swagger UI's own pages."""
    etag = requests.get(f"{server}/state", timeout=5).headers["ETag"]
    answers = {
        "page": requests.get(f"{server}/", timeout=5),
        "module": requests.get(f"{server}/static/main.js", timeout=5),
        "json": requests.get(f"{server}/health", timeout=5),
        "304": requests.get(f"{server}/state", headers={"If-None-Match": etag}, timeout=5),
        "404": requests.get(f"{server}/nowhere", timeout=5),
        "415": requests.post(f"{server}/add_generator", data="x", headers={"Content-Type": "text/plain"}, timeout=5),
        "docs": requests.get(f"{server}/docs/swagger", timeout=5),
        "docs asset": requests.get(f"{server}/docs/swagger/css/swagger-ui.css", timeout=5),
    }
    assert {name: a.status_code for name, a in answers.items()} == {
        "page": 200, "module": 200, "json": 200, "304": 304, "404": 404, "415": 415, "docs": 200, "docs asset": 200}
    assert answers["module"].headers["Content-Type"].startswith("text/javascript")
    for name, answer in answers.items():
        policy = answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, name
        assert ("'unsafe-inline'" in policy) == name.startswith("docs"), name
