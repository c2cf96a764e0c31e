"""Load for profiling a running server: one keep-alive client sending interleaved POST /add_generator (5 sites,
updated in turn) and POST /modify_load_neighbourhood (x1.05 / x1/1.05) for a while. See bench/README.md.

    python bench/profile_load.py --port 5077 --seconds 22
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Client, Remote, check, run_main  # noqa: E402

SITES = [("13", 3), ("18", 3), ("60", 3), ("35", 3), ("47", 3)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    client = Client(Remote(args.port))

    def send(path: str, body: dict) -> None:
        status, ctype, data, _ = client.call("POST", path, orjson.dumps(body))
        check(status, ctype, data, f"POST {path} {body}")

    rounds, stop_at = 0, time.monotonic() + args.seconds
    while time.monotonic() < stop_at:
        bus, phases = SITES[rounds % len(SITES)]
        send("/add_generator", {"bus_name": bus, "phases": phases, "kw": 100 + (rounds % 7) * 10})
        factor = 1.05 if (rounds // 14) % 2 == 0 else 1 / 1.05
        send("/modify_load_neighbourhood", {"neighbourhood": 1 + rounds % 14, "factor": factor})
        rounds += 1
    client.close()
    print(f"{2 * rounds} changes in {args.seconds:g} s")
    return 0


if __name__ == "__main__":
    run_main(main)
