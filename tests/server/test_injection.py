"""OpenDSS text injection and rollback, against a real `python api.py` started from an empty directory.

Every string that could reach the engine's text interface (bus names in the body, path segments, query values)
is refused with a 4xx, leaves the grid exactly as it was (GET /state byte-identical, no generator, factors
unchanged), and nothing is written anywhere: the server's working directory and HOME stay empty, its TMPDIR holds
only each engine's copy of the deck, byte for byte, and `git status` of the repository is the same before and after.

A change the solver cannot take (100000 kW, 3-phase, at bus 13) is refused with 422 and rolled back: the next
request sees the previous state exactly, and the next change gives what it gives on a grid that never saw it.
"""

from __future__ import annotations

import math
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urlencode

import pytest
import requests

from engine.deck import read_deck
from simulation_core import DEFAULT_MASTER_FILE, OpenDSSCircuit
from support.paths import REPO
from support.server import start_server, stop_server

TIMEOUT_S = 30
LOOKALIKES = [
    "１６",              # fullwidth digits
    "١٦",                # Arabic-Indic digits
    "۱۶",                # extended Arabic-Indic digits
    "16\u200b",          # zero-width space
    "\ufeff16",          # byte order mark
    "\u00a016",          # no-break space
    "16\u2028",          # line separator
    "16\u0085",          # next line (C1)
    "l6", "I6",           # letter l / capital i for 1
    "1\u0336" + "6",     # combining overlay
    "150ʀ", "150\u0280", "150r\u0301",  # small capital R, combining accent
    "ѕourcebus",         # Cyrillic s
    "\u212a",            # Kelvin sign, lower() is an ASCII k
]
INJECTIONS = [
    "16 kW=1e9", "16\nRedirect /etc/passwd", "16\r\nClear", "x\" ; Save Circuit", "x\" ; Save Circuit dir=pwned",
    "!", "Clear", "16.1.2", "16 ", " 16", "16\t", "16\n", "16\x00", "\x00", "16\x00Clear", "../../etc",
    "../../etc/passwd", "/etc/passwd", "~ kw=5", "16|x", "16;Clear", "16 ! comment", "16 // comment", "[16]",
    "{16}", "(16)", "16 phases=3", "New Generator.x bus1=16 kW=1e9", "Set DataPath=/tmp", "Compile /etc/passwd",
    "Save Circuit", "Export Voltages", "Show Voltages", "16\\..\\..", "%s%s%n", "16%0AClear", "16%00",
    "16" * 40, "a" * 65, "b" * 10_000, "16.1", "16.3", "16.0", "16.4.5.6", "sourcebus", "Bus.16", "Load.s16c",
] + LOOKALIKES


# ---------------------------------------------------------------------------------------------- server
def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server whose working directory, HOME and TMPDIR are empty directories, with its output drained."""
    root = tmp_path_factory.mktemp("injection")
    cwd, home, tmp = root / "cwd", root / "home", root / "tmp"
    for directory in (cwd, home, tmp):
        directory.mkdir()
    git_before = git_status()
    env = {"HOME": str(home), "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local"), "IEEE123_API_KEY": ""}
    process, url = start_server(cwd, env=env)
    output: list[str] = []
    drains = [threading.Thread(target=lambda s=s: output.extend(iter(s.readline, "")), daemon=True)
              for s in (process.stdout, process.stderr)]
    for drain in drains:
        drain.start()
    server = {"url": url, "output": output, "dirs": (cwd, home, tmp)}
    try:
        yield server
    finally:
        stop_server(process)
        for drain in drains:
            drain.join(timeout=5)
    for directory in (cwd, home, tmp):
        assert files_under(directory) == [], f"the server wrote into {directory}: {files_under(directory)}"
    git_after = git_status()
    changed = sorted(set(git_after.splitlines()) ^ set(git_before.splitlines()))
    assert git_after == git_before, f"files in the repository changed while the server ran: {changed}"
    assert "Traceback" not in "".join(output), "".join(output)[-3000:]


@pytest.fixture
def server(sandbox_server) -> dict[str, Any]:
    """The sandboxed server, reset to the base case, with nothing written so far."""
    response = requests.post(sandbox_server["url"] + "/reset", json={}, timeout=TIMEOUT_S)
    assert response.status_code == 200
    return sandbox_server


class Grid:
    """What must not move when a request is refused: the solved state, generators, neighbourhood factors."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.before = self.read()

    def read(self) -> tuple[bytes, bytes, bytes]:
        return tuple(requests.get(self.url + path, timeout=TIMEOUT_S).content
                     for path in ("/state", "/generators", "/neighbourhoods"))

    def assert_unchanged(self, what: str) -> None:
        after = self.read()
        assert after[0] == self.before[0], f"{what}: GET /state changed"
        assert after[1] == self.before[1], f"{what}: GET /generators changed"
        assert after[2] == self.before[2], f"{what}: GET /neighbourhoods changed"


def assert_refused(response: requests.Response, what: str) -> dict:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), (what, response.headers)
    body = response.json()
    assert body["status"] == "error" and isinstance(body["message"], str) and body["message"], (what, body)
    return body


def assert_nothing_written(server: dict[str, Any]) -> None:
    """Nothing but each engine's copy of our deck (in TMPDIR), byte for byte: no request made OpenDSS write."""
    deck = dict(read_deck(DEFAULT_MASTER_FILE).files)
    for directory in server["dirs"]:
        copies = sorted(p for p in directory.glob("opendss-feeder-*") if p.is_dir())
        assert all({str(p.relative_to(copy)): p.read_bytes() for p in copy.rglob("*")} == deck for copy in copies), \
            f"an engine's copy of the deck in {directory} changed or gained a file"
        written = [name for name in files_under(directory) if not name.startswith("opendss-feeder-")]
        assert written == [], f"the server wrote into {directory}: {written}"


# ---------------------------------------------------------------------------------------------- injection
@pytest.mark.parametrize("text", INJECTIONS, ids=[repr(t)[:40] for t in INJECTIONS])
def test_injection_in_bus_name_body(server, text):
    url, grid = server["url"], Grid(server["url"])
    for phases in (1, 3):
        response = requests.post(f"{url}/add_generator", json={"bus_name": text, "phases": phases, "kw": 10},
                                 timeout=TIMEOUT_S)
        assert_refused(response, f"bus_name {text!r}, {phases} phase(s)")
        grid.assert_unchanged(f"bus_name {text!r}")
    # The same string where a number belongs must not be taken either.
    response = requests.post(f"{url}/modify_load_neighbourhood", json={"neighbourhood": text, "factor": 1.5},
                             timeout=TIMEOUT_S)
    assert_refused(response, f"neighbourhood {text!r}")
    response = requests.post(f"{url}/add_generator", json={"bus_name": "16", "phases": 1, "kw": text},
                             timeout=TIMEOUT_S)
    assert_refused(response, f"kw {text!r}")
    grid.assert_unchanged(f"{text!r} in number fields")
    assert_nothing_written(server)


@pytest.mark.parametrize("text", INJECTIONS, ids=[repr(t)[:40] for t in INJECTIONS])
def test_injection_in_path_segments(server, text):
    url, grid = server["url"], Grid(server["url"])
    segment = quote(text, safe="")
    for method, path in (("GET", f"/buses/{segment}"), ("DELETE", f"/generators/{segment}"),
                         ("DELETE", f"/generators/gen_{segment}_3"), ("DELETE", f"/generators/gen_{segment}_123")):
        response = requests.request(method, url + path, timeout=TIMEOUT_S, allow_redirects=False)
        assert_refused(response, f"{method} {path[:80]}")
    grid.assert_unchanged(f"path {text!r}")
    assert_nothing_written(server)


@pytest.mark.parametrize("text", INJECTIONS, ids=[repr(t)[:40] for t in INJECTIONS])
def test_injection_in_query_strings(server, text):
    url, grid = server["url"], Grid(server["url"])
    for path, params in (("/state", {"sections": text}), ("/state", {"format": text}),
                         ("/state", {"sections": f"power_summary,{text}"}), ("/buses", {"format": text}),
                         ("/lines", {"format": text}), ("/state", {text: "csv"})):
        query = urlencode(params)
        response = requests.get(f"{url}{path}?{query}", timeout=TIMEOUT_S, allow_redirects=False)
        assert_refused(response, f"GET {path}?{query[:80]}")
    grid.assert_unchanged(f"query {text!r}")
    assert_nothing_written(server)


def test_injection_in_raw_bodies_and_headers(server):
    """Injection outside JSON string values: raw bytes after the object, an unquoted bus, odd headers."""
    url, grid = server["url"], Grid(server["url"])
    bodies = [b'{"bus_name": "16", "phases": 1, "kw": 10}\nClear',
              b'{"bus_name": 16 kW=1e9, "phases": 1, "kw": 10}',
              b'{"bus_name": "16", "phases": 1, "kw": 10, "kw": "1e9"}',   # duplicate key: the last one wins
              b'{"bus_name": "16\x00", "phases": 1, "kw": 10}',           # raw NUL: not valid JSON
              b'{"bus_name": "16\\u0000", "phases": 1, "kw": 10}',
              b'{"bus_name": "16\\nClear", "phases": 1, "kw": 10}']
    for body in bodies:
        response = requests.post(f"{url}/add_generator", data=body, headers={"Content-Type": "application/json"},
                                 timeout=TIMEOUT_S)
        assert_refused(response, repr(body))
    for header in ({"Content-Type": "application/json\r\nX-Injected: 1"}, {"X-HTTP-Method-Override": "DELETE"}):
        try:
            response = requests.post(f"{url}/reset", data=b"[]", headers=header, timeout=TIMEOUT_S)
        except ValueError:
            continue  # requests itself refuses a header with a line break
        assert_refused(response, repr(header))
    grid.assert_unchanged("raw bodies")
    assert_nothing_written(server)


def test_names_that_exist_still_work(server):
    """The guard is not a blanket refusal: the same routes take real names (case-insensitively)."""
    url = server["url"]
    assert requests.get(f"{url}/buses/150r", timeout=TIMEOUT_S).status_code == 200
    assert requests.get(f"{url}/buses/150R", timeout=TIMEOUT_S).status_code == 200
    response = requests.post(f"{url}/add_generator", json={"bus_name": "16", "phases": 1, "kw": 10}, timeout=TIMEOUT_S)
    assert response.status_code == 200 and response.json()["action"]["generator"] == "gen_16_3"
    assert requests.delete(f"{url}/generators/gen_16_3", timeout=TIMEOUT_S).status_code == 200
    assert_nothing_written(server)


# ---------------------------------------------------------------------------------------------- rollback
def vmag(results: dict[str, Any]) -> list[float]:
    return [row["VMag_pu"] for row in results["bus_details"]]


def assert_same_grid(served: dict[str, Any], reference: dict[str, Any]) -> None:
    served_v, reference_v = vmag(served), vmag(reference)
    assert len(served_v) == len(reference_v)
    worst = max(abs(a - b) for a, b in zip(served_v, reference_v))
    assert worst <= 1e-6, f"VMag_pu differs by {worst} pu"
    for key, value in reference["power_summary"].items():
        if isinstance(value, float):
            assert math.isclose(served["power_summary"][key], value, rel_tol=1e-6, abs_tol=1e-3), key
        else:
            assert served["power_summary"][key] == value, key


DIVERGING = {"bus_name": "13", "phases": 3, "kw": 100000}


@pytest.mark.parametrize("existing_kw", [None, 300.0], ids=["new generator", "existing generator"])
def test_diverging_change_is_refused_and_rolled_back(server, existing_kw):
    url = server["url"]
    reference = OpenDSSCircuit()
    requests.post(f"{url}/modify_load_neighbourhood", json={"neighbourhood": 3, "factor": 1.05}, timeout=TIMEOUT_S)
    reference.scale_neighbourhood_loads(3, 1.05)
    if existing_kw is not None:
        assert requests.post(f"{url}/add_generator", json={"bus_name": "13", "phases": 3, "kw": existing_kw},
                             timeout=TIMEOUT_S).status_code == 200
        reference.add_generator("13", 3, existing_kw)
    grid = Grid(url)
    sequence = requests.get(f"{url}/health", timeout=TIMEOUT_S).json()["sequence"]

    response = requests.post(f"{url}/add_generator", json=DIVERGING, timeout=TIMEOUT_S)
    body = assert_refused(response, "100000 kW at bus 13")
    assert response.status_code == 422, body
    assert "rolled back" in body["message"], body
    grid.assert_unchanged("the diverging change")
    health = requests.get(f"{url}/health", timeout=TIMEOUT_S).json()
    assert health["converged"] is True and health["sequence"] == sequence
    generators = requests.get(f"{url}/generators", timeout=TIMEOUT_S).json()["generators"]
    assert [(g["name"], g["kw"]) for g in generators] == ([] if existing_kw is None else [("gen_13_123", existing_kw)])
    assert_same_grid(requests.get(f"{url}/state", timeout=TIMEOUT_S).json()["results"], reference.results())

    # Just over the bound is refused before the engine, the same way.
    over = requests.post(f"{url}/add_generator", json={**DIVERGING, "kw": 100000.0001}, timeout=TIMEOUT_S)
    assert over.status_code == 422 and over.json().get("field") == "kw", over.text[:200]
    grid.assert_unchanged("kW above the bound")

    # The next changes give what they give on a grid that never saw the refused one.
    after = requests.post(f"{url}/add_generator", json={"bus_name": "13", "phases": 3, "kw": 500}, timeout=TIMEOUT_S)
    assert after.status_code == 200, after.text[:300]
    assert after.json()["action"]["sequence"] == sequence + 1
    assert after.json()["action"]["created"] is (existing_kw is None)
    reference.add_generator("13", 3, 500.0)
    assert_same_grid(after.json()["results"], reference.results())
    scaled = requests.post(f"{url}/modify_load_neighbourhood", json={"neighbourhood": 7, "factor": 0.95},
                           timeout=TIMEOUT_S)
    assert scaled.status_code == 200
    reference.scale_neighbourhood_loads(7, 0.95)
    assert_same_grid(scaled.json()["results"], reference.results())
    assert_nothing_written(server)


def test_repeated_diverging_changes_do_not_drift(server):
    """Ten refused changes in a row: the state is still byte-identical and the engine did not drift."""
    url = server["url"]
    grid = Grid(url)
    for _ in range(10):
        assert requests.post(f"{url}/add_generator", json=DIVERGING, timeout=TIMEOUT_S).status_code == 422
    grid.assert_unchanged("ten diverging changes")
    response = requests.post(f"{url}/modify_load_neighbourhood", json={"neighbourhood": 1, "factor": 1.0},
                             timeout=TIMEOUT_S)
    assert response.status_code == 200
    assert_same_grid(response.json()["results"], OpenDSSCircuit().results())
