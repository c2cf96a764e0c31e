"""The HTTP part of a request alone: waitress, set up as api.py sets it up, serving one fixed body.

bench.py starts this beside the API and sends it the same requests with the same client. Its latency and
throughput are what no change inside our Flask app or the engine can go below on this server and machine:

    python bench/transport_floor.py PORT BODY_FILE [HOLD_MS]

With HOLD_MS, every answer first keeps the CPU busy for that long (the floor "at the server's pace"): on a virtual
machine a client that waited a few milliseconds is woken more slowly than one that waited half of one, a cost every
real answer of that length pays and an instant floor does not show.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import waitress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api import parse_args  # noqa: E402  (the API's own defaults, so both servers run alike)


def fixed_body_app(body: bytes, hold_ms: float = 0.0) -> Callable[[dict[str, Any], Callable], Iterable[bytes]]:
    """A WSGI app that reads the request body and answers 200 with `body`, whatever was asked; or, to a request
    with If-None-Match, 304 with no body (the transport floor of an empty answer)."""
    etag = ("ETag", '"floor"')
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), etag]

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        hold_until = time.perf_counter() + hold_ms / 1000
        while time.perf_counter() < hold_until:  # the GIL held, as the API holds it while it works
            pass
        if "HTTP_IF_NONE_MATCH" in environ:
            start_response("304 Not Modified", [etag])
            return [b""]
        start_response("200 OK", headers)
        return [body]

    return app


def main(argv: list[str]) -> None:
    port, body_file = int(argv[0]), Path(argv[1])
    hold_ms = float(argv[2]) if len(argv) > 2 else 0.0
    defaults = parse_args([])
    server = waitress.create_server(fixed_body_app(body_file.read_bytes(), hold_ms), host="127.0.0.1", port=port,
                                    threads=defaults.threads, ident="transport-floor",
                                    clear_untrusted_proxy_headers=True)
    print(f"transport floor listening on http://127.0.0.1:{port}/", flush=True)
    server.run()


if __name__ == "__main__":
    main(sys.argv[1:])
