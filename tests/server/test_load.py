"""Load: concurrent clients hammer a real `python api.py` with a mix of changes and reads.

Checked: no 5xx, no dropped connection, every response is a well-formed JSON envelope, every results document
is internally consistent, sequence numbers never go backwards for a client, the acknowledged changes carry
the sequence numbers 1..N with no gap, and replaying them in the server's order on a fresh in-process
OpenDSSCircuit gives the same grid: at the end (GET /state) and at every sequence number a response showed.

Bounded: CLIENTS x REQUESTS_PER_CLIENT requests, loopback only, a wall-clock budget per client.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest
import requests

from simulation_core import OpenDSSCircuit
from support.server import start_server, stop_server

CLIENTS = 8
REQUESTS_PER_CLIENT = 200
CLIENT_BUDGET_S = 90.0
REQUEST_TIMEOUT_S = 30.0
VMAG_TOL_PU = 1e-6
POWER_REL_TOL = 1e-6
POWER_ABS_TOL_KW = 1e-3  # kW and kVAR: solver noise on near-zero totals (e.g. generator kVAR at pf 1)
RESULT_SECTIONS = {"power_summary", "voltage_profile", "bus_details", "line_flows", "losses", "violations"}
SUMMARY_KEYS = ("total_circuit_power_kW", "total_circuit_power_kVAR", "total_load_kW", "total_load_kVAR",
                "total_generation_kW", "total_generation_kVAR", "total_losses_kW", "total_losses_kVAR")
THREE_PHASE_BUSES = ["1", "7", "8", "13", "18", "21", "35", "52", "60", "67"]
ONE_PHASE_BUSES = ["16", "2", "4", "11", "19", "20", "22", "34", "45", "69"]
ALL_GENERATOR_NAMES = [f"gen_{b}_123" for b in THREE_PHASE_BUSES] + [f"gen_{b}_1" for b in ONE_PHASE_BUSES] \
    + [f"gen_{b}_3" for b in ONE_PHASE_BUSES] + [f"gen_{b}_2" for b in ONE_PHASE_BUSES]
READ_PATHS = ["/health", "/generators", "/neighbourhoods", "/buses/16", "/buses/67", "/lines",
              "/state?sections=power_summary,bus_details", "/state?sections=voltage_profile"]
#: What each kind of request may answer; anything else (and every 5xx) is a failure.
ALLOWED = {
    "state": {200}, "read": {200}, "reset": {200},
    "add": {200, 422},             # 422 only if the solver refuses; counted, never treated as applied
    "scale": {200, 422},           # 422 if the cumulative factor would leave its bounds
    "delete": {200, 404},          # 404 when another client removed it first or a reset came in between
    "diverge": {422},              # 100000 kW 3-phase at bus 13 diverges: refused and rolled back
    "negative": {422},             # refused by bounds before the engine
}


@dataclass
class Observation:
    """A results document a response showed, tagged with the sequence number it claims to belong to."""

    sequence: int
    where: str
    vmag: list[float]
    summary: dict[str, float]


@dataclass
class ClientLog:
    index: int
    statuses: dict[tuple[str, int], int] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    fired: int = 0

    def fail(self, message: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(f"client {self.index}: {message}")


# ---------------------------------------------------------------------------------------------- server
@pytest.fixture(scope="module")
def load_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """Our own server (this module changes the grid), with its stdout and stderr drained continuously:
    the access log writes a line per request, and an undrained pipe would block the server."""
    work_dir = tmp_path_factory.mktemp("load-cwd")
    process, url = start_server(work_dir, "--threads", "8", env={"IEEE123_API_KEY": ""})
    output: list[str] = []
    drains = [threading.Thread(target=_drain, args=(stream, output), daemon=True)
              for stream in (process.stdout, process.stderr)]
    for drain in drains:
        drain.start()
    try:
        yield url, output
    finally:
        stop_server(process)
        for drain in drains:
            drain.join(timeout=5)
    assert list(work_dir.iterdir()) == [], "the server wrote into its working directory"


def _drain(stream: Any, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)


# ---------------------------------------------------------------------------------------------- checks
def check_envelope(log: ClientLog, kind: str, response: requests.Response) -> dict | None:
    """Status allowed and never 5xx; a JSON body with the success or error envelope."""
    log.statuses[(kind, response.status_code)] = log.statuses.get((kind, response.status_code), 0) + 1
    where = f"{response.request.method} {response.request.path_url} -> {response.status_code}"
    if response.status_code >= 500 or response.status_code not in ALLOWED[kind]:
        log.fail(f"{where}: unexpected status; body {response.text[:300]!r}")
        return None
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        log.fail(f"{where}: Content-Type {response.headers.get('Content-Type')!r}")
        return None
    try:
        body = response.json()
    except ValueError:
        log.fail(f"{where}: body is not JSON: {response.text[:200]!r}")
        return None
    if not isinstance(body, dict):
        log.fail(f"{where}: body is not an object")
        return None
    if response.status_code == 200:
        if body.get("status") != "success":
            log.fail(f"{where}: status {body.get('status')!r} in a 200")
            return None
    elif body.get("status") != "error" or not isinstance(body.get("message"), str) or not body["message"]:
        log.fail(f"{where}: bad error envelope {body!r}")
        return None
    return body


def consistency_problems(results: dict[str, Any]) -> list[str]:
    """Cross-checks within one results document: totals are sums of the rows they summarise, counts match
    their lists. A document stitched from two solves (half a change) fails these."""
    problems = []
    if set(results) != RESULT_SECTIONS:
        return [f"sections {sorted(results)}"]
    summary, rows = results["power_summary"], results["bus_details"]
    if summary.get("converged") is not True:
        problems.append("power_summary.converged is not true")
    for total, column in (("total_generation_kW", "Gen_kW"), ("total_generation_kVAR", "Gen_kVAR"),
                          ("total_load_kW", "Load_kW"), ("total_load_kVAR", "Load_kVAR")):
        summed = math.fsum(r[column] for r in rows)
        if not math.isclose(summary[total], summed, rel_tol=1e-6, abs_tol=1e-6):
            problems.append(f"{total} {summary[total]!r} != sum of {column} {summed!r}")
    magnitudes = [r["VMag_pu"] for r in rows]
    profile = results["voltage_profile"]
    if profile["min_voltage_pu"] != min(magnitudes) or profile["max_voltage_pu"] != max(magnitudes):
        problems.append("voltage_profile min/max are not those of bus_details")
    balance = (summary["total_circuit_power_kW"] + summary["total_generation_kW"] - summary["total_load_kW"]
               - summary["total_losses_kW"])
    if abs(balance) > 1e-3 * max(1.0, summary["total_load_kW"]):
        problems.append(f"power does not balance: source + generation - load - losses = {balance!r} kW")
    if results["losses"]["total_kW"] != summary["total_losses_kW"]:
        problems.append("losses.total_kW != power_summary.total_losses_kW")
    violations = results["violations"]
    if summary["voltage_violations"] != len(violations["voltage"]) \
            or summary["thermal_violations"] != len(violations["thermal"]) \
            or summary["reverse_power"] != bool(violations["reverse_power"]):
        problems.append("violation counts do not match the violation lists")
    return problems


def observe(log: ClientLog, sequence: int, where: str, results: dict[str, Any]) -> None:
    problems = consistency_problems(results)
    if problems:
        log.fail(f"{where} (sequence {sequence}) is inconsistent: {problems[:3]}")
        return
    log.observations.append(Observation(sequence, where, [r["VMag_pu"] for r in results["bus_details"]],
                                        {k: results["power_summary"][k] for k in SUMMARY_KEYS}))


# ---------------------------------------------------------------------------------------------- clients
def pick_request(rng: random.Random) -> tuple[str, str, str, dict | None]:
    """(kind, method, path, json body): about 35% state reads, 10% other reads, 25% generators, 20% loads,
    6% deletes, 2% resets, 2% diverging and negative-kW changes that must be refused."""
    roll = rng.random()
    if roll < 0.35:
        return "state", "GET", "/state", None
    if roll < 0.45:
        return "read", "GET", rng.choice(READ_PATHS), None
    if roll < 0.70:
        if rng.random() < 0.5:
            body = {"bus_name": rng.choice(THREE_PHASE_BUSES), "phases": 3, "kw": round(rng.uniform(0, 500), 3)}
        else:
            body = {"bus_name": rng.choice(ONE_PHASE_BUSES), "phases": 1, "kw": round(rng.uniform(0, 200), 3)}
        return "add", "POST", "/add_generator", body
    if roll < 0.90:
        body = {"neighbourhood": rng.randint(1, 14), "factor": round(rng.uniform(0.9, 1.1), 6)}
        return "scale", "POST", "/modify_load_neighbourhood", body
    if roll < 0.96:
        return "delete", "DELETE", f"/generators/{rng.choice(ALL_GENERATOR_NAMES)}", None
    if roll < 0.98:
        return "reset", "POST", "/reset", {}
    if roll < 0.99:
        return "diverge", "POST", "/add_generator", {"bus_name": "13", "phases": 3, "kw": 100000}
    return "negative", "POST", "/add_generator", {"bus_name": "16", "phases": 1, "kw": -5}


def run_client(url: str, log: ClientLog, start: threading.Barrier) -> None:
    rng = random.Random(1000 + log.index)
    floor = 0  # the highest sequence number this client has seen: the server can never show less after it
    deadline = time.monotonic() + CLIENT_BUDGET_S
    with requests.Session() as session:
        start.wait()
        for _ in range(REQUESTS_PER_CLIENT):
            if time.monotonic() > deadline:
                log.fail("ran out of its time budget")
                return
            kind, method, path, body = pick_request(rng)
            log.fired += 1
            try:
                response = session.request(method, url + path, json=body, timeout=REQUEST_TIMEOUT_S)
            except requests.RequestException as error:
                log.fail(f"{method} {path}: connection failure {error!r}")
                continue
            document = check_envelope(log, kind, response)
            if document is None or response.status_code != 200:
                continue
            where = f"{method} {path}"
            if kind in ("add", "scale", "delete", "reset"):
                action = document.get("action")
                if not isinstance(action, dict) or not isinstance(action.get("sequence"), int):
                    log.fail(f"{where}: no action with a sequence: {str(document)[:200]}")
                    continue
                if action["sequence"] <= floor:
                    log.fail(f"{where}: change got sequence {action['sequence']} after this client saw {floor}")
                floor = max(floor, action["sequence"])
                log.actions.append(action)
                observe(log, action["sequence"], where, document["results"])
            elif kind == "state":
                sequence = document.get("sequence")
                if not isinstance(sequence, int) or sequence < floor:
                    log.fail(f"GET /state: sequence {sequence!r} after this client saw {floor}")
                    continue
                floor = sequence
                observe(log, sequence, where, document["results"])
            else:
                sequence = document.get("sequence", (document.get("bus") or {}).get("sequence"))
                if sequence is not None:
                    if sequence < floor:
                        log.fail(f"{where}: sequence {sequence} after this client saw {floor}")
                    floor = max(floor, sequence)


# ---------------------------------------------------------------------------------------------- replay
def replay(actions: list[dict[str, Any]]) -> tuple[OpenDSSCircuit, dict[int, tuple[list[float], dict]]]:
    """Apply the acknowledged changes one by one in sequence order on a fresh circuit; the state after each."""
    circuit = OpenDSSCircuit()
    states = {0: _state_of(circuit)}
    for action in actions:
        kind = action["type"]
        if kind == "add_generator":
            replayed = circuit.add_generator(action["bus"], action["phases"], action["kw"],
                                             action["nodes"][0] if action["phases"] == 1 else None)
            assert replayed["generator"] == action["generator"], (replayed, action)
        elif kind == "modify_load_neighbourhood":
            replayed = circuit.scale_neighbourhood_loads(action["neighbourhood"], action["factor"])
            assert replayed["cumulative_factor"] == pytest.approx(action["cumulative_factor"], rel=1e-12), \
                (replayed, action)
        elif kind == "remove_generator":
            replayed = circuit.remove_generator(action["name"])
        elif kind == "reset":
            replayed = circuit.reset()
        else:
            raise AssertionError(f"unknown action {action!r}")
        assert replayed["sequence"] == action["sequence"], (replayed, action)
        states[action["sequence"]] = _state_of(circuit)
    return circuit, states


def _state_of(circuit: OpenDSSCircuit) -> tuple[list[float], dict]:
    results = circuit.results()
    return ([r["VMag_pu"] for r in results["bus_details"]],
            {k: results["power_summary"][k] for k in SUMMARY_KEYS})


def differences(vmag: list[float], summary: dict, expected: tuple[list[float], dict]) -> list[str]:
    expected_vmag, expected_summary = expected
    problems = []
    if len(vmag) != len(expected_vmag):
        return [f"{len(vmag)} bus_details rows, expected {len(expected_vmag)}"]
    worst = max(range(len(vmag)), key=lambda i: abs(vmag[i] - expected_vmag[i]))
    if abs(vmag[worst] - expected_vmag[worst]) > VMAG_TOL_PU:
        problems.append(f"VMag_pu row {worst}: {vmag[worst]!r} vs replayed {expected_vmag[worst]!r}")
    for key in SUMMARY_KEYS:
        if not math.isclose(summary[key], expected_summary[key], rel_tol=POWER_REL_TOL, abs_tol=POWER_ABS_TOL_KW):
            problems.append(f"{key}: {summary[key]!r} vs replayed {expected_summary[key]!r}")
    return problems


# ---------------------------------------------------------------------------------------------- the test
def test_concurrent_mixed_load_matches_serial_replay(load_server):
    url, server_output = load_server
    logs = [ClientLog(i) for i in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=run_client, args=(url, log, start), daemon=True) for log in logs]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=CLIENT_BUDGET_S + REQUEST_TIMEOUT_S + 10)
    elapsed = time.monotonic() - began
    assert not any(t.is_alive() for t in threads), "a client is still running after its budget"

    failures = [f for log in logs for f in log.failures]
    fired = sum(log.fired for log in logs)
    statuses: dict[tuple[str, int], int] = {}
    for log in logs:
        for key, count in log.statuses.items():
            statuses[key] = statuses.get(key, 0) + count
    print(f"\n{fired} requests from {CLIENTS} clients in {elapsed:.1f} s; statuses {sorted(statuses.items())}")
    assert fired == CLIENTS * REQUESTS_PER_CLIENT
    assert sum(statuses.values()) == fired, "some requests got no response"
    assert not failures, "\n".join(failures[:40]) + "\n" + server_errors(server_output)
    # The mix really exercised what it is meant to: changes of every kind and refused changes.
    for kind in ("add", "scale", "delete", "reset", "diverge"):
        assert any(k == kind for k, _ in statuses), f"no {kind} request was made"
    assert statuses.get(("diverge", 422), 0) >= 1

    actions = sorted((a for log in logs for a in log.actions), key=lambda a: a["sequence"])
    sequences = [a["sequence"] for a in actions]
    assert sequences == list(range(1, len(actions) + 1)), \
        "the acknowledged changes do not carry the sequence numbers 1..N exactly once each"

    final = requests.get(f"{url}/state", timeout=REQUEST_TIMEOUT_S)
    assert final.status_code == 200
    final_body = final.json()
    assert final_body["sequence"] == len(actions), "the server applied a change no client was told about"
    assert consistency_problems(final_body["results"]) == []

    circuit, states = replay(actions)
    final_results = final_body["results"]
    final_problems = differences([r["VMag_pu"] for r in final_results["bus_details"]],
                                 final_results["power_summary"], states[len(actions)])
    assert final_problems == [], f"final state differs from the serial replay: {final_problems}"
    served_generators = requests.get(f"{url}/generators", timeout=REQUEST_TIMEOUT_S).json()["generators"]
    assert sorted((g["name"], g["kw"]) for g in served_generators) == \
        sorted((g["name"], g["kw"]) for g in circuit.generators())
    served_factors = requests.get(f"{url}/neighbourhoods", timeout=REQUEST_TIMEOUT_S).json()["neighbourhoods"]
    assert [n["cumulative_factor"] for n in served_factors] == \
        pytest.approx([n["cumulative_factor"] for n in circuit.neighbourhoods()], rel=1e-12)

    # Every document any response showed is the replayed state at the sequence number it claimed.
    observations = [o for log in logs for o in log.observations]
    mismatched = []
    for observation in observations:
        problems = differences(observation.vmag, observation.summary, states[observation.sequence])
        if problems:
            matches = [s for s, state in states.items()
                       if not differences(observation.vmag, observation.summary, state)]
            mismatched.append(f"{observation.where} claims sequence {observation.sequence} but shows the state "
                              f"after sequence(s) {matches[:5] or 'none'}: {problems[:2]}")
    print(f"{len(actions)} changes applied, {len(observations)} results documents compared with the replay, "
          f"{len(mismatched)} mismatched")
    assert not mismatched, f"{len(mismatched)} of {len(observations)} responses showed a state other than " \
                           f"the one their sequence number names:\n" + "\n".join(mismatched[:15])

    assert server_errors(server_output) == ""


def server_errors(output: list[str]) -> str:
    """The server's logged tracebacks (its stderr), for the failure message; empty when there are none."""
    text = "".join(output)
    start = text.find("Traceback")
    if start < 0 and "unexpected error" not in text:
        return ""
    return "server log:\n" + text[max(0, start - 200):][:6000]
