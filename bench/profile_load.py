"""Load for profiling a running server: one keep-alive client sending interleaved POST /add_generator (5 sites,
updated in turn) and POST /modify_load_neighbourhood (x1.05 / x1/1.05) for a while. See bench/README.md.

    python bench/profile_load.py --port 5077 --seconds 22
"""

from __future__ import annotations

import argparse
import http.client
import json
import time

SITES = [("13", 3), ("18", 3), ("60", 3), ("35", 3), ("47", 3)]
HEADERS = {"Content-Type": "application/json"}


def send(connection: http.client.HTTPConnection, path: str, body: dict) -> None:
    connection.request("POST", path, body=json.dumps(body), headers=HEADERS)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"POST {path} {body}: HTTP {response.status}: {data[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
    rounds, stop_at = 0, time.monotonic() + args.seconds
    while time.monotonic() < stop_at:
        bus, phases = SITES[rounds % len(SITES)]
        send(connection, "/add_generator", {"bus_name": bus, "phases": phases, "kw": 100 + (rounds % 7) * 10})
        factor = 1.05 if (rounds // 14) % 2 == 0 else 1 / 1.05
        send(connection, "/modify_load_neighbourhood", {"neighbourhood": 1 + rounds % 14, "factor": factor})
        rounds += 1
    print(f"{2 * rounds} changes in {args.seconds:g} s")


if __name__ == "__main__":
    main()
