"""End to end: `python api.py` as a real process started from another directory, spoken to over real HTTP,
including the docs' curl examples (README.md and docs/*.md) run verbatim."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from support.docs import NEEDS_CURL, curl_lines, run_script
from support.helpers import assert_error_shape
from support.paths import REPO
from support.server import start_server, stop_server


def docs_curl_commands() -> list[str]:
    """Every `curl` line of the docs' bash blocks (README.md first, then docs/*.md), in order."""
    return [line for _, line in curl_lines()]


def test_the_docs_have_curl_examples_for_every_grid_route():
    commands = " ".join(docs_curl_commands())
    for route in ["/add_generator", "/modify_load_neighbourhood", "/state", "/health", "/buses", "/buses/",
                  "/lines", "/transformers", "/neighbourhoods", "/generators", "/generators/", "/reset", "/openapi.json"]:
        assert route in commands, f"the docs have no curl example for {route}"


@NEEDS_CURL
def test_the_docs_curl_examples_work_verbatim(live_server):
    port = live_server.rsplit(":", 1)[1]
    for command in docs_curl_commands():
        command = command.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        output = subprocess.run(["bash", "-c", command + " -s -w '\\n%{http_code}'"], capture_output=True,
                                text=True, timeout=90)
        body, _, status = output.stdout.rpartition("\n")
        assert status == "200", f"{command} -> {status}: {body[:300]}"
        if "format=csv" not in command:
            assert json.loads(body).get("status", "success") == "success" or "openapi" in json.loads(body)


@NEEDS_CURL
def test_the_scenarios_script_works_verbatim(live_server, tmp_path):
    """docs/scenarios.md's script: preview, idempotent retry, If-Match, 304, journal, diff, undo, export, import,
    fork, delete."""
    printed = run_script(live_server, tmp_path, "docs/scenarios.md", "/scenarios")
    assert "HTTP/1.1 304 " in printed
    assert '"dry_run":true' in printed and '"type":"undo"' in printed
    document = json.loads((tmp_path / "pv67.json").read_text())
    assert document["changes"] == [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 1500.0}]


@NEEDS_CURL
def test_the_studies_script_works_verbatim(live_server, tmp_path):
    """docs/studies.md's script, against a real server with its worker processes."""
    printed = run_script(live_server, tmp_path, "docs/studies.md", "/studies/")
    assert "bus,phases,nodes,hosting_capacity_kW" in printed
    assert '"kind":"time_series","status":"done"' in printed
    assert '"status":"cancelled"' in printed


def test_post_over_real_http(live_server):
    with requests.Session() as session:
        session.post(f"{live_server}/reset", json={})
        response = session.post(f"{live_server}/add_generator", json={"bus_name": "16", "phases": 1, "kw": 200})
        assert response.status_code == 200
        assert response.json()["results"]["power_summary"]["total_generation_kW"] == pytest.approx(200, rel=1e-3)
        state = session.get(f"{live_server}/state").json()
        assert state["results"] == response.json()["results"]
        assert_error_shape(session.post(f"{live_server}/add_generator", data="bus_name=16"), 415)
        assert_error_shape(session.post(f"{live_server}/add_generator", data="{", headers={
            "Content-Type": "application/json"}), 400)
        assert session.get(f"{live_server}/state").json()["results"] == response.json()["results"]


POSIX_SIGNALS = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals (Windows stops with Ctrl-C)")


@POSIX_SIGNALS
def test_server_prints_address_and_stops_cleanly_on_sigterm(tmp_path):
    process, url = start_server(tmp_path, "--no-access-log")
    requests.get(f"{url}/health", timeout=5)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert f"listening on {url}/" in stdout
    assert list(tmp_path.iterdir()) == []


def test_access_log_line_per_request(tmp_path):
    process, url = start_server(tmp_path)
    requests.get(f"{url}/health", timeout=5)
    requests.post(f"{url}/add_generator", data="x", timeout=5)
    stop_server(process)
    log = process.stderr.read()
    assert re.search(r"^GET /health 200 \d+\.\dms$", log, flags=re.M), log
    assert re.search(r"^POST /add_generator 415 \d+\.\dms$", log, flags=re.M), log


def test_api_key_guards_changes_only(tmp_path):
    process, url = start_server(tmp_path, "--api-key", "s3cret-key")
    try:
        body = {"bus_name": "16", "phases": 1, "kw": 10}
        assert_error_shape(requests.post(f"{url}/add_generator", json=body, timeout=5), 401)
        assert_error_shape(requests.post(f"{url}/add_generator", json=body, timeout=5,
                                         headers={"Authorization": "Bearer wrong"}), 401)
        assert_error_shape(requests.post(f"{url}/reset", json={}, timeout=5), 401)
        assert requests.get(f"{url}/state", timeout=5).status_code == 200
        ok = requests.post(f"{url}/add_generator", json=body, timeout=5,
                           headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200
    finally:
        stop_server(process)
    assert "s3cret-key" not in process.stderr.read() + process.stdout.read()


def test_non_loopback_bind_without_key_warns(tmp_path):
    process = subprocess.Popen(["python", str(REPO / "api.py"), "--host", "0.0.0.0", "--port", "0"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
    finally:
        process.kill()
        process.wait()
    assert "WARNING" in line and "API key" in line


def test_cors_is_off_by_default_and_on_for_named_origins(tmp_path, live_server):
    preflight = {"Origin": "http://tool.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    assert "Access-Control-Allow-Origin" not in requests.options(f"{live_server}/add_generator",
                                                                 headers=preflight, timeout=5).headers
    process, url = start_server(tmp_path, "--cors-origin", "http://tool.example")
    try:
        allowed = requests.options(f"{url}/add_generator", headers=preflight, timeout=5)
        assert allowed.headers.get("Access-Control-Allow-Origin") == "http://tool.example"
        other = requests.options(f"{url}/add_generator", timeout=5,
                                 headers={**preflight, "Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        stop_server(process)


@POSIX_SIGNALS
def test_a_client_that_connected_before_the_stop_and_speaks_late_gets_its_answer(tmp_path):
    """Connected just before SIGTERM, the request sent 0.5 s later (a busy client machine): answered in full, not
    dropped as an idle connection (the stop waits up to 2 s for a new connection's first words)."""
    import socket

    process, url = start_server(tmp_path, "--no-access-log")
    host, port = url.removeprefix("http://").split(":")
    body = b'{"neighbourhood": 3, "factor": 1.0}'
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        time.sleep(0.2)  # accepted by the server
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        connection.sendall(b"POST /modify_load_neighbourhood HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == "success"
    stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0 and "stopped" in stdout, stderr


@POSIX_SIGNALS
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_lets_in_flight_requests_finish(tmp_path, stop_signal):
    """Clients hammer the server on fresh connections while it is told to stop: every request either gets
    its whole answer or is refused at connect time; none is cut off in flight."""
    import threading

    process, url = start_server(tmp_path, "--no-access-log")
    outcomes: list[str] = []
    stop_at = time.monotonic() + 1.0

    def client() -> None:
        while time.monotonic() < stop_at + 1.0:
            try:
                response = requests.post(f"{url}/modify_load_neighbourhood", timeout=10,
                                         json={"neighbourhood": 3, "factor": 1.0})
                outcomes.append("ok" if response.status_code == 200 and response.json()["status"] == "success"
                                else f"bad {response.status_code}")
            except requests.exceptions.ConnectionError as error:
                refused = isinstance(getattr(error.args[0], "reason", None), ConnectionRefusedError) or \
                    "Connection refused" in str(error)
                outcomes.append("refused" if refused else f"dropped: {error}")
                if refused:
                    return

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(stop_at - time.monotonic())
    process.send_signal(stop_signal)
    for thread in threads:
        thread.join(timeout=20)
    stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0 and "stopped" in stdout, stderr
    assert outcomes.count("ok") > 10
    assert [o for o in outcomes if o not in ("ok", "refused")] == []
