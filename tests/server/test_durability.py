"""Scenarios over real HTTP against `python api.py` processes: concurrency, restart, SIGKILL, eviction, bad files.

The reference for every state is an OpenDSSCircuit in this test process given the scenario's journal, op by
op (a serial replay nobody in the server wrote), compared at every node to 1e-9 pu."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from scenarios.journal import op_from_action, replay_journal
from simulation_core import OpenDSSCircuit, SimulationError
from support.paths import REPO
from support.server import start_server, stop_server

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals needed")


def node_voltages(url: str, scenario: str) -> np.ndarray:
    rows = requests.get(f"{url}/scenarios/{scenario}/state?sections=bus_details", timeout=30).json()
    return np.array([row["VMag_pu"] for row in rows["results"]["bus_details"]])


def replayed_by_hand(journal: list[dict]) -> np.ndarray:
    """A fresh engine given the journal's ops in order (undo and reset as the journal says)."""
    circuit = OpenDSSCircuit()
    circuit.rebuild(replay_journal(entry["action"] for entry in journal).ops)
    return circuit.snapshot.arrays["vmag_pu"]


def journal(url: str, scenario: str) -> list[dict]:
    return requests.get(f"{url}/scenarios/{scenario}/changes", timeout=30).json()["changes"]


def random_change(rng: random.Random) -> tuple[str, dict]:
    if rng.random() < 0.5:
        bus = rng.choice(["67", "16", "35", "76", "101", "nowhere", "610"])
        return "add_generator", {"bus_name": bus, "phases": rng.choice([1, 3]), "kw": rng.choice([50, 200, 700])}
    return "modify_load_neighbourhood", {"neighbourhood": rng.randint(1, 14), "factor": rng.choice([0.9, 1.1, 1.05])}


# ---------------------------------------------------------------------------- concurrency
def test_two_scenarios_four_clients_each_end_as_a_serial_replay(tmp_path):
    process, url = start_server(tmp_path, "--no-access-log")
    try:
        scenarios = [requests.post(f"{url}/scenarios", json={"name": f"s{i}"}, timeout=30).json()["scenario"]["id"]
                     for i in range(2)]
        acknowledged: dict[str, list[dict]] = {s: [] for s in scenarios}
        lock = threading.Lock()

        def client(scenario: str, seed: int) -> None:
            rng, session = random.Random(seed), requests.Session()
            for _ in range(12):
                route, body = random_change(rng)
                response = session.post(f"{url}/scenarios/{scenario}/{route}?sections=power_summary", json=body,
                                        timeout=30)
                if response.status_code == 200:
                    with lock:
                        acknowledged[scenario].append(response.json()["action"])

        threads = [threading.Thread(target=client, args=(s, 10 * i + k)) for i, s in enumerate(scenarios)
                   for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for scenario in scenarios:
            entries = journal(url, scenario)
            assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1))
            assert sorted(map(str, (e["action"] for e in entries))) == sorted(map(str, acknowledged[scenario]))
            assert len(entries) > 10
            assert np.max(np.abs(node_voltages(url, scenario) - replayed_by_hand(entries))) < 1e-9
        base = requests.get(f"{url}/state", timeout=30).json()
        assert base["sequence"] == 0  # default untouched
    finally:
        stop_server(process)


# ---------------------------------------------------------------------------- restart
def test_restart_on_the_same_file_answers_exactly_as_before(tmp_path):
    state_file = tmp_path / "grid.sqlite"
    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state_file))
    try:
        a = requests.post(f"{url}/scenarios", json={"name": "pv"}, timeout=30).json()["scenario"]["id"]
        requests.post(f"{url}/scenarios/{a}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 900}, timeout=30)
        requests.post(f"{url}/scenarios/{a}/modify_load_neighbourhood", json={"neighbourhood": 12, "factor": 1.5},
                      timeout=30)
        keyed = requests.post(f"{url}/scenarios/{a}/add_generator", json={"bus_name": "16", "phases": 1, "kw": 100},
                              headers={"Idempotency-Key": "restart-key"}, timeout=30)
        requests.post(f"{url}/scenarios/{a}/undo", json={}, timeout=30)
        b = requests.post(f"{url}/scenarios", json={"name": "fork", "from": a}, timeout=30).json()["scenario"]["id"]
        requests.post(f"{url}/add_generator", json={"bus_name": "35", "phases": 3, "kw": 300}, timeout=30)
        before = {s: requests.get(f"{url}/scenarios/{s}/state", timeout=30) for s in ("default", a, b)}
        listed = requests.get(f"{url}/scenarios", timeout=30).json()["scenarios"]
        journals = {s: journal(url, s) for s in ("default", a, b)}
    finally:
        stop_server(process)

    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state_file))
    try:
        after_list = requests.get(f"{url}/scenarios", timeout=30).json()["scenarios"]
        strip = [{k: v for k, v in s.items() if k != "live"} for s in listed]
        assert [{k: v for k, v in s.items() if k != "live"} for s in after_list] == strip
        for scenario, response in before.items():
            now = requests.get(f"{url}/scenarios/{scenario}/state", timeout=30)
            assert now.headers["ETag"] == response.headers["ETag"]
            assert now.json()["sequence"] == response.json()["sequence"]
            ours = np.array([r["VMag_pu"] for r in now.json()["results"]["bus_details"]])
            earlier = np.array([r["VMag_pu"] for r in response.json()["results"]["bus_details"]])
            assert np.max(np.abs(ours - earlier)) < 1e-9
            assert journal(url, scenario) == journals[scenario]
        retry = requests.post(f"{url}/scenarios/{a}/add_generator", json={"bus_name": "16", "phases": 1, "kw": 100},
                              headers={"Idempotency-Key": "restart-key"}, timeout=30)
        assert (retry.status_code, retry.content) == (keyed.status_code, keyed.content)
        assert journal(url, a) == journals[a]  # the retry applied nothing
    finally:
        stop_server(process)


def test_without_state_a_restart_gives_the_base_case(tmp_path):
    process, url = start_server(tmp_path, "--no-access-log")
    try:
        base = requests.get(f"{url}/state", timeout=30).content
        requests.post(f"{url}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 900}, timeout=30)
        requests.post(f"{url}/scenarios", json={}, timeout=30)
    finally:
        stop_server(process)
    process, url = start_server(tmp_path, "--no-access-log")
    try:
        assert requests.get(f"{url}/state", timeout=30).content == base
        assert [s["id"] for s in requests.get(f"{url}/scenarios", timeout=30).json()["scenarios"]] == ["default"]
    finally:
        stop_server(process)
    assert list(tmp_path.iterdir()) == []  # nothing written without --state


# ---------------------------------------------------------------------------- SIGKILL
@pytest.mark.slow
def test_sigkill_in_a_burst_loses_no_acknowledged_change(tmp_path):
    state_file = tmp_path / "grid.sqlite"
    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state_file))
    scenarios = ["default"] + [requests.post(f"{url}/scenarios", json={}, timeout=30).json()["scenario"]["id"]
                               for _ in range(2)]
    acknowledged: list[tuple[str, dict]] = []
    lock, stop = threading.Lock(), threading.Event()

    def client(seed: int) -> None:
        rng, session = random.Random(seed), requests.Session()
        while not stop.is_set():
            scenario = rng.choice(scenarios)
            route, body = random_change(rng)
            try:
                response = session.post(f"{url}/scenarios/{scenario}/{route}?sections=power_summary", json=body,
                                        timeout=10)
            except requests.RequestException:
                return  # the server died under this request: not acknowledged
            if response.status_code == 200:
                with lock:
                    acknowledged.append((scenario, response.json()["action"]))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(acknowledged) > 20

    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state_file))
    try:
        for scenario in scenarios:
            entries = journal(url, scenario)
            assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1))  # no half change
            held = [e["action"] for e in entries]
            for acknowledged_scenario, action in acknowledged:
                if acknowledged_scenario == scenario:
                    assert held[action["sequence"] - 1] == action
            assert np.max(np.abs(node_voltages(url, scenario) - replayed_by_hand(entries))) < 1e-9
    finally:
        stop_server(process)


# ---------------------------------------------------------------------------- eviction
def test_resting_scenarios_are_rebuilt_on_first_use(tmp_path):
    state_file = tmp_path / "grid.sqlite"
    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state_file), "--max-live-scenarios", "2")
    try:
        made, answers = [], {}
        for i in range(4):
            scenario = requests.post(f"{url}/scenarios", json={}, timeout=30).json()["scenario"]["id"]
            requests.post(f"{url}/scenarios/{scenario}/add_generator",
                          json={"bus_name": ["67", "16", "35", "76"][i], "phases": 1, "kw": 300 + 100 * i}, timeout=30)
            made.append(scenario)
            answers[scenario] = node_voltages(url, scenario)
        listed = {s["id"]: s for s in requests.get(f"{url}/scenarios", timeout=30).json()["scenarios"]}
        assert sum(listed[s]["live"] for s in made) <= 2
        assert not listed[made[0]]["live"]
        health = requests.get(f"{url}/health", timeout=30).json()
        assert health["durable"] is True and health["live_scenarios"] <= 3  # default keeps its engine
        for scenario in made:  # each rebuilt (evicting another) and equal to what it answered before
            assert np.max(np.abs(node_voltages(url, scenario) - answers[scenario])) < 1e-9
        assert requests.post(f"{url}/scenarios/{made[0]}/undo", json={}, timeout=30).status_code == 200
    finally:
        stop_server(process)


# ---------------------------------------------------------------------------- files that are not ours
def start_failure(tmp_path: Path, state_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "api.py"), "--port", "1", "--state", str(state_file)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_a_file_that_is_not_sqlite_stops_the_start_and_is_left_alone(tmp_path):
    state_file = tmp_path / "notes.txt"
    state_file.write_bytes(b"my thesis notes, not a database\n" * 100)
    before = state_file.read_bytes()
    result = start_failure(tmp_path, state_file)
    assert result.returncode != 0
    assert "--state" in result.stderr and "left as it is" in result.stderr
    assert state_file.read_bytes() == before


def test_another_programs_sqlite_file_stops_the_start(tmp_path):
    state_file = tmp_path / "other.sqlite"
    with sqlite3.connect(state_file) as db:
        db.execute("CREATE TABLE photos (id INTEGER, path TEXT)")
    result = start_failure(tmp_path, state_file)
    assert result.returncode != 0 and "not written by this server" in result.stderr
    with sqlite3.connect(state_file) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["photos"]


def test_a_damaged_journal_stops_the_start(tmp_path):
    state_file = tmp_path / "grid.sqlite"
    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state_file))
    requests.post(f"{url}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 900}, timeout=30)
    stop_server(process)
    with sqlite3.connect(state_file) as db:
        db.execute("UPDATE changes SET action = '{\"type\": \"teleport\"}'")
    result = start_failure(tmp_path, state_file)
    assert result.returncode != 0 and "cannot be replayed" in result.stderr


def test_the_journal_op_of_every_action_kind_replays(tmp_path):
    """op_from_action covers every action a change can report (a journal must always be replayable)."""
    circuit = OpenDSSCircuit()
    actions = [dict(circuit.add_generator("67", 3, 100)), dict(circuit.add_generator("16", 1, 50, 3)),
               dict(circuit.scale_neighbourhood_loads(2, 1.2)), dict(circuit.remove_generator("gen_67_123")),
               dict(circuit.reset())]
    replay = OpenDSSCircuit()
    for action in actions:
        assert dict(replay.apply(op_from_action(action))) == action
    with pytest.raises(SimulationError):
        replay.apply({"op": "teleport"})
