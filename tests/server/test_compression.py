"""Answers that fit their size, over real HTTP: gzip when the client accepts it (flask-compress), the plain bytes
for a client that asks for nothing (curl), and ETags, 304s, If-Match and Idempotency-Key replays alike either way."""

from __future__ import annotations

import gzip
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support.paths import SHARED_REFERENCE
from support.server import start_server, stop_server

GZIP = {"Accept-Encoding": "gzip"}
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium sends: we answer gzip
BUSIER5 = {"neighbourhood": 5, "factor": 1.3}
IEEE8500 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "8500-Node" / "Master.dss"


class Answer:
    """An HTTP answer as it came over the wire: status, headers and the body's bytes, not decoded."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.raw = response.read()

    @property
    def body(self) -> bytes:
        """The body's bytes after undoing its Content-Encoding, if any."""
        return gzip.decompress(self.raw) if self.headers.get("Content-Encoding") == "gzip" else self.raw


def ask(url: str, method: str, path: str, headers: dict[str, str] | None = None,
        body: dict | None = None) -> Answer:
    """One request with exactly these headers: like curl, no Accept-Encoding unless given."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        data = json.dumps(body).encode() if body is not None else None
        for name, value in {**(headers or {}),
                            **({"Content-Type": "application/json"} if data is not None else {})}.items():
            connection.putheader(name, value)
        if data is not None:
            connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        return Answer(connection.getresponse())
    finally:
        connection.close()


def assert_security_headers(answer: Answer) -> None:
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in answer.headers["Content-Security-Policy"]


def compared(url: str, path: str) -> tuple[Answer, Answer]:
    """The same read asked plainly and with gzip; the gzip body is exactly the plain bytes, compressed."""
    plain, packed = ask(url, "GET", path), ask(url, "GET", path, GZIP)
    assert plain.status == packed.status == 200
    assert "Content-Encoding" not in plain.headers, "a client that asks for nothing gets the plain answer"
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == plain.headers["Vary"] == "Accept-Encoding"
    assert int(packed.headers["Content-Length"]) == len(packed.raw)
    assert packed.body == plain.raw
    assert_security_headers(plain)
    assert_security_headers(packed)
    return plain, packed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    process, url = start_server(tmp_path_factory.mktemp("cwd"), "--engine-hosts", "1", "--workers", "1")
    yield url
    stop_server(process)


def test_state_gzip_is_the_plain_bytes_several_times_smaller(server):
    plain, packed = compared(server, "/state")
    json.loads(plain.raw)  # curl's answer is the full JSON as it always was
    ratio = len(plain.raw) / len(packed.raw)
    print(f"IEEE 123 GET /state: {len(plain.raw)} B plain, {len(packed.raw)} B gzip, {ratio:.1f}x")
    assert ratio > 3
    tag = plain.headers["ETag"]
    assert packed.headers["ETag"] == tag[:-1] + ':gzip"', "RFC 9110 8.8.3: a strong tag per representation"


def test_csv_tables_are_compressed_too_and_small_errors_are_not(server):
    plain, packed = compared(server, "/buses?format=csv")
    assert packed.headers["Content-Type"].startswith("text/csv") and len(packed.raw) < len(plain.raw) / 2
    error = ask(server, "GET", "/buses/no-such-bus", BROWSER)
    assert error.status == 404 and "Content-Encoding" not in error.headers and len(error.raw) < 1024
    assert json.loads(error.raw)["status"] == "error"
    assert_security_headers(error)


def test_a_compressed_answers_etag_gets_304_and_names_the_state_for_if_match(server):
    packed = ask(server, "GET", "/state", BROWSER)
    tag = packed.headers["ETag"]
    again = ask(server, "GET", "/state", {**BROWSER, "If-None-Match": tag})
    assert again.status == 304 and again.raw == b"" and again.headers["ETag"] == tag
    assert again.headers["Vary"] == "Accept-Encoding"
    assert_security_headers(again)
    plain_tag = ask(server, "GET", "/state").headers["ETag"]
    assert ask(server, "GET", "/state", {"If-None-Match": plain_tag}).headers["ETag"] == plain_tag
    changed = ask(server, "POST", "/modify_load_neighbourhood", {**GZIP, "If-Match": tag}, BUSIER5)
    assert changed.status == 200 and changed.headers["Content-Encoding"] == "gzip"
    assert json.loads(changed.body)["status"] == "success"
    stale = ask(server, "POST", "/modify_load_neighbourhood", {**GZIP, "If-Match": tag}, BUSIER5)
    assert stale.status == 412 and json.loads(stale.body)["field"] == "If-Match"
    assert ask(server, "GET", "/state", {**GZIP, "If-None-Match": tag}).status == 200, "the state has moved on"
    ask(server, "POST", "/reset", {}, {})


def test_an_idempotent_replay_is_the_stored_answer_compressed_or_plain(server):
    key = {"Idempotency-Key": "compression-replay-1"}
    first = ask(server, "POST", "/modify_load_neighbourhood", {**GZIP, **key}, BUSIER5)
    assert first.status == 200 and first.headers["Content-Encoding"] == "gzip"
    packed = ask(server, "POST", "/modify_load_neighbourhood", {**GZIP, **key}, BUSIER5)
    plain = ask(server, "POST", "/modify_load_neighbourhood", key, BUSIER5)
    for replay in (packed, plain):
        assert replay.status == 200 and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.body == first.body
    assert packed.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert packed.headers["ETag"] == first.headers["ETag"] == plain.headers["ETag"][:-1] + ':gzip"'
    ask(server, "POST", "/reset", {}, {})


@pytest.mark.slow
def test_the_8500_node_feeders_state_compresses_four_times(tmp_path: Path):
    process, url = start_server(tmp_path, "--feeder", str(IEEE8500), "--engine-hosts", "1", "--workers", "1")
    try:
        plain, packed = compared(url, "/state")
        csv_plain, csv_packed = compared(url, "/lines?format=csv")
    finally:
        stop_server(process)
    ratio = len(plain.raw) / len(packed.raw)
    print(f"IEEE 8500 GET /state: {len(plain.raw)} B plain, {len(packed.raw)} B gzip, {ratio:.1f}x; "
          f"/lines?format=csv: {len(csv_plain.raw)} B plain, {len(csv_packed.raw)} B gzip")
    assert len(plain.raw) > 1_000_000 and ratio > 3.5
    assert len(csv_packed.raw) < len(csv_plain.raw) / 2
