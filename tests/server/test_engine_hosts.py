"""Engine hosts (--engine-hosts N) over real HTTP: the same requests get the same bytes as the single process, and
a host killed in the middle of a burst costs only the requests caught on it (503 + Retry-After), no change that
was answered 200.

The reference is the single-process server (--engine-hosts 1), which the rest of the suite checks against OpenDSS;
a restarted host's states are checked against an OpenDSSCircuit in this process given the scenario's journal."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import requests
from support.server import start_server, stop_server

from scenarios.journal import op_from_action
from simulation_core import EngineSettings, OpenDSSCircuit

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals needed")

TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
#: Headers a server sets from the clock, not from the state.
CLOCK_HEADERS = {"date"}


class Recorder:
    """Sends requests to one server and keeps what came back, with scenario ids and times made comparable."""

    def __init__(self, url: str) -> None:
        self.url, self.session, self.ids, self.answers, self.probes = url, requests.Session(), {}, [], []
        # Plain answers, as curl gets them: a gzip body's length depends on the random scenario ids inside it, so
        # compressed answers of the same state differ in Content-Length between two servers (compression is
        # tested in test_compression.py).
        self.session.headers["Accept-Encoding"] = "identity"

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        for label, real in self.ids.items():
            path = path.replace(f"{{{label}}}", real)
        response = self.session.request(method, self.url + path, timeout=60, **kwargs)
        self.answers.append((method, path, response.status_code, dict(response.headers), response.content))
        return response

    def normalized(self) -> list[tuple]:
        """The answers with the scenario ids replaced by their labels (known once the conversation is over)."""
        return [(method, self.normal(path.encode()), status, self.normal_headers(headers), self.normal(body))
                for method, path, status, headers, body in self.answers]

    def probe(self, path: str, body: dict | None = None) -> None:
        """A request kept apart from the compared answers: GET /health differs by design (it lists the hosts),
        a study's job has its own id and times (its result is compared)."""
        for label, real in self.ids.items():
            path = path.replace(f"{{{label}}}", real)
        method = "GET" if body is None else "POST"
        self.probes.append(self.session.request(method, self.url + path, json=body, timeout=60).json())

    def remember(self, label: str, response: requests.Response) -> None:
        self.ids[label] = response.json()["scenario"]["id"]

    def normal(self, data: bytes) -> bytes:
        for label, real in self.ids.items():
            data = data.replace(real.encode(), label.encode())
        return TIMESTAMP.sub(b"<time>", data)

    def normal_headers(self, headers: dict[str, str]) -> dict[str, bytes]:
        return {k.lower(): self.normal(v.encode()) for k, v in headers.items()
                if k.lower() not in CLOCK_HEADERS}


def conversation(r: Recorder) -> None:
    """Every kind of request a client makes: changes, dry runs, preconditions, idempotency keys, undo, fork,
    import/export, diff across scenarios (on different hosts with 2), eviction (--max-live-scenarios 2), reads."""
    json = {"Content-Type": "application/json"}
    r.send("GET", "/state")
    r.send("POST", "/modify_load_neighbourhood", json={"neighbourhood": 3, "factor": 1.2})
    r.send("POST", "/add_generator?dry_run=true", json={"bus_name": "67", "phases": 3, "kw": 400})
    r.send("POST", "/add_generator", json={"bus_name": "67", "phases": 3, "kw": 400},
           headers={"Idempotency-Key": "k1"})
    r.send("POST", "/add_generator", json={"bus_name": "67", "phases": 3, "kw": 400},
           headers={"Idempotency-Key": "k1"})
    r.send("POST", "/add_generator", json={"bus_name": "67", "phases": 3, "kw": 500},
           headers={"Idempotency-Key": "k1"})
    r.send("POST", "/modify_load_neighbourhood?sections=power_summary", json={"neighbourhood": 2, "factor": 0.9},
           headers={"If-Match": '"default.1"'})
    r.send("POST", "/add_generator", json={"bus_name": "nope", "phases": 3, "kw": 10})
    r.send("POST", "/add_generator", json={"bus_name": "94_open", "phases": 3, "kw": 10})  # refused: 422
    r.send("POST", "/modify_load_neighbourhood", json={"neighbourhood": 99, "factor": 2})
    r.send("POST", "/modify_load_neighbourhood", data=b"{bad", headers=json)
    r.send("POST", "/undo?dry_run=true", json={})
    r.send("POST", "/undo", json={})
    r.send("GET", "/state", headers={"If-None-Match": '"default.3"'})
    r.send("GET", "/state?sections=power_summary,violations")
    r.send("GET", "/state?format=csv")
    for table in ("buses", "buses/67", "lines", "transformers", "neighbourhoods", "generators", "changes", "export",
                  "lines?format=csv", "buses?format=csv"):
        r.send("GET", f"/{table}")
    r.remember("A", r.send("POST", "/scenarios", json={"name": "a", "from": "default"}))
    r.remember("B", r.send("POST", "/scenarios", json={"name": "b"}))
    r.send("POST", "/scenarios/{B}/add_generator", json={"bus_name": "35", "phases": 1, "kw": 50, "phase": 1})
    r.probe("/health")
    r.probe("/scenarios/{B}/studies/batch?wait=60", {"cases": [
        {"name": "pv67", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 500}]},
        {"name": "bad", "changes": [{"op": "modify_load_neighbourhood", "neighbourhood": 1, "factor": 50}]}]})
    r.send("GET", "/scenarios/{A}/diff?against={B}")
    r.send("GET", "/scenarios/{B}/diff?against=default")
    r.send("GET", "/diff?against=base")
    document = r.send("GET", "/scenarios/{A}/export").json()
    r.remember("C", r.send("POST", "/scenarios/import", json=document))
    r.remember("D", r.send("POST", "/scenarios/import?sections=power_summary", json={**document, "name": "d"}))
    for label in ("A", "B", "C", "D"):  # only 2 live: each of these is rebuilt from its journal
        r.send("POST", f"/scenarios/{{{label}}}/modify_load_neighbourhood", json={"neighbourhood": 5, "factor": 1.1})
        r.send("GET", f"/scenarios/{{{label}}}/generators")
    for label in ("A", "B", "C", "D"):
        r.send("GET", f"/scenarios/{{{label}}}")
        r.send("GET", f"/scenarios/{{{label}}}/state?sections=bus_details")
        r.send("POST", f"/scenarios/{{{label}}}/undo", json={})
    r.send("GET", "/scenarios/{C}/diff?against={D}")
    r.send("DELETE", "/scenarios/{D}")
    r.send("DELETE", "/scenarios/default")
    r.remember("E", r.send("POST", "/scenarios", json={"name": "e"}))
    r.send("POST", "/scenarios/{E}/undo", json={})
    r.send("GET", "/scenarios/{D}/state")
    r.send("GET", "/scenarios")
    r.send("POST", "/reset", json={})
    r.send("POST", "/undo", json={})
    r.send("GET", "/scenarios/{A}/changes")


def test_two_hosts_answer_byte_for_byte_like_one_process(tmp_path: Path) -> None:
    answers, studies = [], []
    for hosts in ("1", "2"):
        work = tmp_path / hosts
        work.mkdir()
        process, url = start_server(work, "--no-access-log", "--engine-hosts", hosts, "--state",
                                    str(work / "state.db"), "--max-live-scenarios", "2")
        try:
            recorder = Recorder(url)
            conversation(recorder)
            answers.append(recorder.normalized())
            health, study = recorder.probes
            assert study["job"]["status"] == "done", study
            studies.append({**study["job"]["result"], "scenario": "B"})  # the id differs; B is compared
            assert study["job"]["result"]["scenario"] == recorder.ids["B"]
        finally:
            stop_server(process)
        if hosts == "2":
            assert [h["host"] for h in health["hosts"]] == [0, 1]
            held = [set(h["scenarios"]) for h in health["hosts"]]
            assert all(held) and not held[0] & held[1], held  # both hosts used, a scenario in one only
            assert health["live_scenarios"] == sum(map(len, held))
        else:
            assert health["hosts"] == []
    assert studies[0] == studies[1]  # a study reads its scenario through the host (ops, buses, set-points)
    single, hosted = answers
    assert len(single) == len(hosted) > 60
    statuses = {status for _, _, status, _, _ in single}
    assert {200, 201, 304, 400, 404, 409, 412, 422}.issubset(statuses), str(sorted(statuses))
    for one, two in zip(single, hosted):
        assert one == two, (one[:3], two[:3])


def burst(url: str, scenario: str, stop: threading.Event, log: list[tuple[int, Any, str | None]]) -> None:
    """POST changes to one scenario until told to stop, keeping (status, action or message, Retry-After)."""
    session, k = requests.Session(), 0
    while not stop.is_set():
        k += 1
        response = session.post(f"{url}/scenarios/{scenario}/modify_load_neighbourhood?sections=power_summary",
                                json={"neighbourhood": 1 + k % 4, "factor": 1.05 if k // 4 % 2 else 1 / 1.05},
                                timeout=30)  # each neighbourhood up and back down: a long burst stays in limits
        body = response.json()
        log.append((response.status_code, body.get("action", body.get("message")),
                    response.headers.get("Retry-After")))


def node_voltages(url: str, scenario: str) -> np.ndarray:
    rows = requests.get(f"{url}/scenarios/{scenario}/state?sections=bus_details", timeout=30).json()
    return np.array([row["VMag_pu"] for row in rows["results"]["bus_details"]])


def reference_voltages(actions: list[dict[str, Any]]) -> np.ndarray:
    circuit = OpenDSSCircuit()
    try:
        for action in actions:
            circuit.apply(op_from_action(action))
        return circuit.snapshot.arrays["vmag_pu"].copy()
    finally:
        circuit.close()


def process_gone(pid: int) -> bool:
    """Exited, every thread of it (a zombie until its parent, the server, notices), or gone. The main thread
    shows Z while the others (numpy's) may still be closing the process's files."""
    try:
        states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                  for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return True
    return all(state in "ZX" for state in states)


def retry_once(send: Callable[[], requests.Response]) -> requests.Response:
    """The answer, or after a 503 with Retry-After, the answer to the same request sent again."""
    response = send()
    if response.status_code == 503:
        assert response.headers.get("Retry-After") == "1" and "engine host" in response.json()["message"]
        response = send()
    return response


def stalled(logs: list[list[Any]], quiet_s: float = 0.5) -> bool:
    """No log grew for `quiet_s`: their callers are all waiting for an answer."""
    before = [len(log) for log in logs]
    time.sleep(quiet_s)
    return [len(log) for log in logs] == before


def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_a_host_killed_in_a_burst_loses_no_answered_change(tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--no-access-log", "--engine-hosts", "2", "--threads", "8")
    try:
        ids = [requests.post(f"{url}/scenarios", json={"name": f"s{k}"}, timeout=30).json()["scenario"]["id"]
               for k in range(4)]
        hosts = requests.get(f"{url}/health", timeout=30).json()["hosts"]
        victim = next(h for h in hosts if len(h["scenarios"]) >= 2)
        stop, logs = threading.Event(), [[] for _ in ids]
        threads = [threading.Thread(target=burst, args=(url, s, stop, log)) for s, log in zip(ids, logs)]
        for thread in threads:
            thread.start()
        wait_for(lambda: all(len(log) >= 5 for log in logs), 60)
        # Stopped first, so the victim's callers are surely waiting on it when it dies: a kill landing between
        # two requests (the web process serialising an answer) would catch nothing, and prove nothing.
        os.kill(victim["pid"], signal.SIGSTOP)
        victims = [log for s, log in zip(ids, logs) if s in victim["scenarios"]]
        wait_for(lambda: stalled(victims), 10)
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = [len(log) for log in logs]
        wait_for(lambda: all(len(log) >= n + 10 for log, n in zip(logs, killed_at)), 60)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a client hung"
        refused = [entry for log in logs for entry in log if entry[0] != 200]
        assert refused, "the kill caught no request in flight"
        assert all(status == 503 and retry == "1" and "engine host" in message
                   for status, message, retry in refused), refused
        for scenario, log in zip(ids, logs):
            if scenario not in victim["scenarios"]:
                assert all(status == 200 for status, _, _ in log), "a host that was not killed refused a change"
            acknowledged = [action for status, action, _ in log if status == 200]
            journal = requests.get(f"{url}/scenarios/{scenario}/changes", timeout=30).json()["changes"]
            assert [entry["action"] for entry in journal] == acknowledged  # every 200 kept, nothing else
            np.testing.assert_allclose(node_voltages(url, scenario), reference_voltages(acknowledged), atol=1e-9)
        after = requests.get(f"{url}/health", timeout=30).json()["hosts"]
        assert after[victim["host"]]["pid"] != victim["pid"] and after[victim["host"]]["restarts"] == 1
        idle = after[victim["host"]]
        assert idle["scenarios"], after  # rebuilt in the restarted host (it had the fewest engines)
        os.kill(idle["pid"], signal.SIGKILL)  # killed while idle: restarted, its scenarios rebuilt on next use
        wait_for(lambda: process_gone(idle["pid"]), 10)
        for scenario in idle["scenarios"]:
            before = node_voltages(url, scenario)
            # A request racing the death (the kernel still closing the host) may get the 503; its retry is answered.
            generators = retry_once(lambda: requests.get(f"{url}/scenarios/{scenario}/generators", timeout=30))
            assert generators.status_code == 200, generators.text
            change = requests.post(f"{url}/scenarios/{scenario}/modify_load_neighbourhood",
                                   json={"neighbourhood": 7, "factor": 1.0}, timeout=30)
            assert change.status_code == 200, change.text
            np.testing.assert_allclose(node_voltages(url, scenario), before, atol=1e-9)
        assert requests.get(f"{url}/health", timeout=30).json()["hosts"][victim["host"]]["restarts"] == 2
    finally:
        stop_server(process)


def test_answers_reach_their_own_callers_when_requests_overlap() -> None:
    """Six threads on six circuits of one host send requests without waiting for each other's answers (they queue in
    the socket and the callers take turns reading): every answer must be the one its caller asked for."""
    from engine.pool import EnginePool

    pool = EnginePool(1, EngineSettings())
    try:
        circuits = [pool.make_circuit() for _ in range(6)]
        bus_names = [bus["name"] for bus in circuits[0].buses()]
        failures: list[str] = []

        def work(k: int) -> None:
            circuit = circuits[k]
            for step in range(12):
                name = bus_names[(7 * k + step) % len(bus_names)]
                if circuit.bus(name)["name"] != name:
                    failures.append(f"thread {k} asked for bus {name}")
                factor = 1 + (k + 1) / 100 if step % 2 == 0 else 1 / (1 + (k + 1) / 100)
                action = dict(circuit.apply({"op": "modify_load_neighbourhood", "neighbourhood": k + 1,
                                             "factor": factor}))
                if (action["neighbourhood"], action["factor"], action["sequence"]) != (k + 1, factor, step + 1):
                    failures.append(f"thread {k} step {step} got {action}")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a caller never got its answer"
        assert failures == []
        assert pool.hosts[0].pending == {} and not pool.hosts[0].reading
    finally:
        pool.close()


def test_callers_waiting_on_a_killed_host_get_host_unavailable_and_it_restarts() -> None:
    """Killed while four callers wait on it, a host fails each of them with HostUnavailable (none hangs); it is
    started again, its old circuits report dead, and a new circuit on it answers."""
    from engine.pool import EnginePool, HostUnavailable

    pool = EnginePool(1, EngineSettings())
    try:
        circuits = [pool.make_circuit() for _ in range(4)]
        host = pool.hosts[0]
        old_pid = host.pid
        outcomes: list[str] = []
        started = threading.Barrier(5)

        def work(circuit: Any) -> None:
            started.wait()
            try:
                for _ in range(200):
                    circuit.apply({"op": "modify_load_neighbourhood", "neighbourhood": 2, "factor": 1.01})
                outcomes.append("finished")
            except HostUnavailable:
                outcomes.append("unavailable")

        threads = [threading.Thread(target=work, args=(circuit,)) for circuit in circuits]
        for thread in threads:
            thread.start()
        started.wait()
        time.sleep(0.2)
        os.kill(old_pid, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a caller hung on the dead host"
        assert outcomes == ["unavailable"] * 4
        assert host.restarts == 1 and host.pid != old_pid and host.pending == {}
        assert not any(circuit.alive for circuit in circuits)
        with pytest.raises(HostUnavailable, match="restarted"):
            circuits[0].bus("67")
        assert pool.make_circuit().bus("67")["name"] == "67"
    finally:
        pool.close()
    assert host.process is not None and host.process.poll() is not None, "the host outlived close()"
