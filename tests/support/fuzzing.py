"""What the fuzz tests share: hypothesis settings, strategies for any JSON value (edge numbers and text included),
and the check every answer must pass (a known status, the JSON envelope, an error changing nothing)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st

from simulation_core import DEFAULT_NEIGHBOURHOOD_FILE

ALLOWED_STATUSES = {200, 400, 404, 405, 413, 415, 422}
#: Every bus of the feeder: the neighbourhood map lists each exactly once (test_core checks it against the engine).
BUSES = {b.lower() for buses in json.loads(DEFAULT_NEIGHBOURHOOD_FILE.read_text())["neighbourhoods"].values()
         for b in buses}


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------------------------- strategies
EDGE_NUMBERS = [0, -0.0, 1, -1, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1e308, -1e308,
                1.7976931348623157e308, 2 ** 31, 2 ** 53 + 1, 2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 30,
                10 ** 400, -10 ** 400,
                float("nan"), float("inf"), float("-inf"), 100000, 100000.00000000001, 1e5 + 1, 10, 10.000000001]
EDGE_TEXT = ["", " ", "\x00", "16\x00", "\x0016", "16\n", "\u202e16", "１６", "١٦", "16 kW=1e9", "\ud800",
             "16\udfff", "\uffff", "\U0010ffff", "null", "NaN", "true", "1", "16", "13", "gen_16_3", "a" * 65,
             "é" * 64, "\\", "\"", "'", "${jndi:x}", "%s%n", "<script>", "16; Clear"]
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.sampled_from(EDGE_NUMBERS) | st.sampled_from(EDGE_TEXT))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def encode(value: Any) -> bytes:
    """Python's json writes NaN/Infinity literals, huge integers and escaped lone surrogates, as an attacker may."""
    return json.dumps(value, allow_nan=True).encode()


# ---------------------------------------------------------------------------------------------- checks
def check_response(client, response, before: bytes) -> dict:
    """Allowed status, JSON envelope; after an error the grid is byte-for-byte what it was."""
    assert response.status_code in ALLOWED_STATUSES, (response.status_code, response.data[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.data[:300]
    if response.status_code == 200:
        assert body["status"] == "success"
    else:
        assert body["status"] == "error", body
        assert isinstance(body["message"], str) and body["message"], body
        assert isinstance(body.get("field"), (str, type(None))), body
        assert client.get("/state").data == before, "an error changed the grid"
    return body


def post(client, path: str, data: bytes, content_type: str | None = "application/json"):
    return client.post(path, data=data, content_type=content_type)


def report(name: str, seen: Counter, at_least: int, statuses: set[int]) -> None:
    """Print how many examples ran and what they got; fail if hypothesis ran too few or missed an outcome."""
    print(f"\n{name}: {sum(seen.values())} examples, statuses {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= at_least, f"only {sum(seen.values())} examples ran"
    assert statuses <= set(seen), f"never saw {statuses - set(seen)}: the strategy misses a case"
