"""A long session of inverter generators through the API, run as its own process by `test_inverter_lifecycle.py`
so that an engine crash (DSS C-API 0.14.5 segfaulted on an InvControl over a disabled PVSystem) fails that test
instead of killing pytest.

    python tests/support/inverter_lifecycle.py '{"seed": 1, "order": 3, "kinds": ["add", "update", ...]}'

The operations follow a de Bruijn sequence of the given order over the kinds, so every ordered run of `order`
kinds happens at least once (every order of any 3, for order 3); what each touches (bus, kW, mode, curves) is
drawn from the seed. After each operation the engine that did it is checked: no InvControl on over a PVSystem
that is off, and at most one element of each generator on. Prints a JSON report; any 5xx, an unexpected status or
a broken check raises (exit status 1); a crash is a signal (negative exit status).

With `"compare_hosts": true` the lifecycle's session runs twice with the same seed: in one process
(`--engine-hosts 1`) and on 2 engine hosts, where a "kill" operation SIGKILLs one of the hosts between requests (in
the single process it does nothing), so its scenarios are rebuilt from their journals. Without kills every answer
must be the same bytes (scenario ids and times aside). A rebuild starts the solver from another point, so with kills
and plain generators (`"plain": true`) every number must agree to 1e-5 absolute or 1e-8 relative (the solver's
noise: a few 1e-6 kW on 2,100 kW) and everything else exactly; with inverters, whose controls settle within their
own tolerances (README, "Smart inverters": 1e-3 pu and 5 kW), statuses and actions must be equal and the power
summary and voltage profile within those.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from api import create_app  # noqa: E402
from studies import batch  # noqa: E402

BUSES = [("85", 1), ("67", 3), ("114", 1), ("76", 3), ("20", 1)]
LIFECYCLE_KINDS = ["add", "update", "delete", "undo", "dry", "rebuild", "fork", "evict"]
KINDS = LIFECYCLE_KINDS + ["trial", "series", "batch", "customers"]
MAX_SCENARIOS = 5


def de_bruijn(symbols: int, order: int) -> list[int]:
    """A cyclic sequence over range(symbols) holding every word of length `order` once (opened into a line)."""
    a = [0] * symbols * order
    sequence: list[int] = []

    def db(t: int, p: int) -> None:
        if t > order:
            if order % p == 0:
                sequence.extend(a[1:p + 1])
        else:
            a[t] = a[t - p]
            db(t + 1, p)
            for j in range(a[t - p] + 1, symbols):
                a[t] = j
                db(t + 1, t)

    db(1, 1)
    return sequence + sequence[:order - 1]


TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?")


class Session:
    def __init__(self, seed: int, state_file: Path, engine_hosts: int = 1, plain: bool = False) -> None:
        self.random = random.Random(seed)
        self.plain = plain
        self.app = create_app({"TESTING": True, "STATE_FILE": str(state_file), "MAX_LIVE_SCENARIOS": 2,
                               "MAX_SCENARIOS": MAX_SCENARIOS + 2, "WORKERS": 1, "ENGINE_HOSTS": engine_hosts})
        self.client = self.app.test_client()
        self.registry = self.app.extensions["scenarios"]
        self.pool = self.app.extensions["engine_pool"]
        self.scenarios = ["default"]
        self.every_scenario = ["default"]  # in order of creation: labels for the transcript
        self.current = "default"
        self.statuses: dict[str, dict[int, int]] = {}
        self.transcript: list[tuple[str, int, bytes]] = []

    # ------------------------------------------------------------------ helpers
    def inverter(self) -> dict[str, Any] | None:
        if self.plain:
            return None
        mode = self.random.choice([None, "unity", "constant_pf", "volt_var", "volt_watt", "volt_var_volt_watt"])
        if mode is None:
            return None
        settings: dict[str, Any] = {"mode": mode}
        if self.random.random() < 0.3:
            settings["kva"] = round(self.random.uniform(50, 800), 1)
        if mode == "constant_pf":
            settings["pf"] = self.random.choice([-0.9, -0.95, 0.97, 1.0])
        if mode in ("volt_var", "volt_var_volt_watt") and self.random.random() < 0.5:
            v1 = round(self.random.uniform(0.9, 0.97), 3)
            settings["volt_var"] = {"v": [v1, v1 + 0.04, v1 + 0.07, v1 + 0.12], "q": [0.44, 0.1, 0.0, -0.44]}
        if mode in ("volt_watt", "volt_var_volt_watt") and self.random.random() < 0.5:
            v1 = round(self.random.uniform(1.03, 1.07), 3)
            settings["volt_watt"] = {"v": [v1, v1 + 0.04], "p": [1.0, round(self.random.uniform(0, 0.5), 2)]}
        return settings

    def generators(self) -> list[dict[str, Any]]:
        return self.client.get(f"/scenarios/{self.current}/generators").get_json()["generators"]

    def record(self, kind: str, response: Any, allowed: set[int]) -> None:
        status = response.status_code
        self.transcript.append((kind, status, response.data))
        self.statuses.setdefault(kind, {}).setdefault(status, 0)
        self.statuses[kind][status] += 1
        if status not in allowed:
            raise AssertionError(f"{kind}: status {status}: {response.get_json()}")

    def add_body(self, bus: str, phases: int) -> dict[str, Any]:
        body: dict[str, Any] = {"bus_name": bus, "phases": phases, "kw": round(self.random.uniform(20, 600), 1)}
        settings = self.inverter()
        if settings is not None:
            body["inverter"] = settings
        return body

    def switch_to(self, scenario: str) -> None:
        self.current = scenario

    def new_scenario(self, scenario: str) -> None:
        self.scenarios.append(scenario)
        self.every_scenario.append(scenario)
        self.current = scenario
        while len(self.scenarios) > MAX_SCENARIOS:
            old = self.scenarios.pop(1)
            assert self.client.delete(f"/scenarios/{old}").status_code == 200

    # ------------------------------------------------------------------ operations
    def op_add(self) -> None:
        bus, phases = self.random.choice(BUSES)
        response = self.client.post(f"/scenarios/{self.current}/add_generator", json=self.add_body(bus, phases))
        self.record("add", response, {200, 422})

    def op_update(self) -> None:
        rows = self.generators()
        if not rows:
            return self.op_add()
        row = self.random.choice(rows)
        body = self.add_body(row["bus"], row["phases"])
        if row["phases"] == 1:
            body["phase"] = row["nodes"][0]
        response = self.client.post(f"/scenarios/{self.current}/add_generator", json=body)
        self.record("update", response, {200, 422})

    def op_delete(self) -> None:
        rows = self.generators()
        name = self.random.choice(rows)["name"] if rows else "gen_85_3"
        response = self.client.delete(f"/scenarios/{self.current}/generators/{name}")
        self.record("delete", response, {200, 404, 422})

    def op_undo(self) -> None:
        self.record("undo", self.client.post(f"/scenarios/{self.current}/undo", json={}), {200, 409})

    def op_dry(self) -> None:
        rows = self.generators()
        if rows and self.random.random() < 0.3:
            response = self.client.delete(f"/scenarios/{self.current}/generators/{rows[0]['name']}?dry_run=true")
        else:
            bus, phases = self.random.choice(BUSES)
            response = self.client.post(f"/scenarios/{self.current}/add_generator?dry_run=true",
                                        json=self.add_body(bus, phases))
        self.record("dry", response, {200, 422})

    def op_rebuild(self) -> None:
        """The scenario rebuilt from its document (import), or reset (a recompile) now and then."""
        if self.random.random() < 0.2:
            self.record("rebuild", self.client.post(f"/scenarios/{self.current}/reset", json={}), {200})
            return
        document = self.client.get(f"/scenarios/{self.current}/export").get_json()
        response = self.client.post("/scenarios/import", json=document)
        self.record("rebuild", response, {201})
        self.new_scenario(response.get_json()["scenario"]["id"])

    def op_fork(self) -> None:
        response = self.client.post("/scenarios", json={"from": self.current})
        self.record("fork", response, {201})
        self.new_scenario(response.get_json()["scenario"]["id"])

    def op_evict(self) -> None:
        """Another scenario, the least recently used: with 2 live engines, it is rebuilt on an evicted one."""
        others = [s for s in self.scenarios if s != self.current]
        if others:
            self.switch_to(min(others, key=lambda s: self.registry.get(s).last_used))
        self.record("evict", self.client.get(f"/scenarios/{self.current}/state"), {200})

    def op_kill(self) -> None:
        """SIGKILL one engine host between requests (engine hosts only): its scenarios are rebuilt on next use."""
        victim = self.random.randrange(2)
        if self.pool is not None:
            host = self.pool.hosts[victim]
            if host.process.poll() is None:  # not already killed with no request since
                os.kill(host.pid, signal.SIGKILL)
                host.process.wait()
        self.statuses.setdefault("kill", {}).setdefault(200, 0)
        self.statuses["kill"][200] += 1

    def normalized_transcript(self) -> list[tuple[str, int, bytes]]:
        """The answers with scenario ids replaced by their order of creation and times by a marker."""
        def normal(data: bytes) -> bytes:
            for label, scenario in enumerate(self.every_scenario):
                data = data.replace(scenario.encode(), f"<scenario {label}>".encode())
            return TIMESTAMP.sub(b"<time>", data)
        return [(kind, status, normal(body)) for kind, status, body in self.transcript]

    def op_trial(self) -> None:
        """Hosting-capacity trials with an inverter on this scenario's engine, as a study's task runs them."""
        bus, phases = self.random.choice(BUSES)
        settings = self.inverter() or {"mode": "volt_var"}
        settings.pop("kva", None)
        with self.registry.engine(self.current) as (_, circuit):
            for kw in (50.0, 400.0, 200.0):
                try:
                    circuit.preview_generator_limits(bus, phases, kw, "hc", inverter=settings)
                except Exception as error:  # noqa: BLE001 - a refused trial is fine, anything else is not
                    if type(error).__name__ != "NotConvergedError":
                        raise
        self.statuses.setdefault("trial", {}).setdefault(200, 0)
        self.statuses["trial"][200] += 1

    def op_customers(self) -> None:
        """A stochastic trial with inverters: customer PV at several loads at once (line-to-line ones too), then
        the same customers as plain generators, as the stochastic study's tasks run them on a warm engine."""
        settings = self.inverter() or {"mode": "volt_var"}
        settings.pop("kva", None)
        with self.registry.engine(self.current) as (_, circuit):
            count = len(circuit.customer_connections())
            systems = [(c, round(self.random.uniform(5, 80), 1)) for c in self.random.sample(range(count), 12)]
            for inverter in (settings, None):
                try:
                    circuit.preview_customer_pv_limits(systems, inverter)
                except Exception as error:  # noqa: BLE001 - a refused trial is fine, anything else is not
                    if type(error).__name__ != "NotConvergedError":
                        raise
        self.statuses.setdefault("customers", {}).setdefault(200, 0)
        self.statuses["customers"][200] += 1

    def op_series(self) -> None:
        import numpy as np

        with self.registry.engine(self.current) as (_, circuit):
            loads = np.full((3, len(circuit.load_neighbourhoods())), self.random.uniform(0.2, 1.0))
            try:
                circuit.run_hours(loads, np.array([0.0, 0.6, 1.0]))
            except Exception as error:  # noqa: BLE001 - an hour whose controls do not settle fails the series
                if type(error).__name__ != "NotConvergedError":
                    raise
        self.statuses.setdefault("series", {}).setdefault(200, 0)
        self.statuses["series"][200] += 1

    def op_batch(self) -> None:
        bus, phases = self.random.choice(BUSES)
        case = {"name": "c", "changes": [{"op": "add_generator", **self.add_body(bus, phases)}]}
        rows = self.generators()
        if rows:
            case["changes"].append({"op": "remove_generator", "name": rows[0]["name"]})
        scenario = self.registry.get(self.current)
        with self.registry.engine(self.current) as (_, circuit):
            batch.run(circuit, {"cases": [case, {"name": "reset", "changes": [{"op": "reset"}]}],
                                "ops": scenario.ops()})
        self.statuses.setdefault("batch", {}).setdefault(200, 0)
        self.statuses["batch"][200] += 1

    # ------------------------------------------------------------------ checks
    def check_engine(self) -> None:
        """What the lifecycle promises, read from the engine itself: an InvControl is on only over a PVSystem
        that is on, each generator has at most one element on, and the rows are what is on."""
        with self.registry.engine(self.current) as (_, circuit):
            engine = circuit._engine
            enabled: dict[tuple[str, str], bool] = {}
            for full_name in engine.Circuit.AllElementNames():
                kind, _, name = full_name.partition(".")
                if kind.lower() in ("pvsystem", "generator", "invcontrol"):
                    engine.Circuit.SetActiveElement(full_name)
                    enabled[(kind.lower(), name.lower())] = engine.CktElement.Enabled()
            for (kind, name), on in enabled.items():
                if kind == "invcontrol" and on:
                    assert enabled[("pvsystem", name)], f"InvControl.{name} is on over a PVSystem that is off"
            on_per_slot: dict[str, int] = {}
            for (kind, name), on in enabled.items():
                if kind != "invcontrol":
                    slot = name.rsplit("_", 1)[0] if kind == "pvsystem" else name
                    on_per_slot[slot] = on_per_slot.get(slot, 0) + int(on)
            rows = {row["name"] for row in circuit.generators()}
            for slot, count in on_per_slot.items():
                assert count <= 1, f"{slot}: {count} elements on"
                if slot.startswith("gen_"):
                    assert (count == 1) == (slot in rows), f"{slot}: rows {sorted(rows)}, {count} on"

    def check_journal(self) -> None:
        """Each live scenario's generators are those its exported ops add up to, with their modes and kW."""
        for scenario in self.scenarios:
            document = self.client.get(f"/scenarios/{scenario}/export").get_json()
            expected: dict[str, tuple[float, str]] = {}
            for op in document["changes"]:
                if op["op"] == "reset":
                    expected = {}
                elif op["op"] == "remove_generator":
                    expected.pop(op["name"], None)
                elif op["op"] == "add_generator":
                    nodes = "123" if op["phases"] == 3 else str(op["phase"])
                    expected[f"gen_{op['bus_name']}_{nodes}"] = (op["kw"], (op.get("inverter") or {}).get("mode"))
            rows = self.client.get(f"/scenarios/{scenario}/generators").get_json()["generators"]
            assert {row["name"]: (row["kw"], row.get("mode")) for row in rows} == expected, scenario
            state = self.client.get(f"/scenarios/{scenario}/state?sections=power_summary").get_json()
            assert state["results"]["power_summary"]["converged"]

    def run(self, kinds: list[str], order: int) -> dict[str, Any]:
        steps = [kinds[i] for i in de_bruijn(len(kinds), order)]
        for kind in steps:
            getattr(self, f"op_{kind}")()
            if self.pool is None:  # the engine is in this process: read it
                self.check_engine()
        self.check_journal()
        self.app.extensions["jobs"].close()
        if self.pool is not None:
            self.pool.close()
        return {"operations": len(steps), "statuses": self.statuses, "scenarios": len(self.scenarios)}


def compare_hosts(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The same seeded session in one process and on 2 engine hosts (with kills): the same answers."""
    kinds, plain = spec.get("kinds", LIFECYCLE_KINDS + ["kill"]), bool(spec.get("plain"))
    single = Session(spec["seed"], folder / "single.sqlite", plain=plain)
    hosted = Session(spec["seed"], folder / "hosted.sqlite", 2, plain=plain)
    report = single.run(kinds, spec["order"])
    hosted_report = hosted.run(kinds, spec["order"])
    if len(single.transcript) != len(hosted.transcript) or hosted_report["statuses"] != report["statuses"]:
        raise AssertionError(f"the sessions differ: {report} against {hosted_report}")
    same = close_enough if "kill" not in kinds else (numbers_close if plain else within_inverter_tolerance)
    pairs = list(zip(single.normalized_transcript(), hosted.normalized_transcript()))
    for step, (ours, theirs) in enumerate(pairs):
        if ours != theirs and not (ours[:2] == theirs[:2] and same(json.loads(ours[2]), json.loads(theirs[2]))):
            raise AssertionError(f"answer {step} differs: one process {ours[:2]} {ours[2][:600]!r}\n"
                                 f"engine hosts {theirs[:2]} {theirs[2][:600]!r}")
    return {**report, "answers": len(pairs), "restarts": sum(h.restarts for h in hosted.pool.hosts),
            "byte_identical": sum(a == b for a, b in pairs)}


def close_enough(ours: Any, theirs: Any) -> bool:
    """Without kills nothing but the bytes will do."""
    return False


def numbers_close(ours: Any, theirs: Any) -> bool:
    """The same document, numbers to 1e-5 absolute or 1e-8 relative."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and ours.keys() == theirs.keys() and all(
            numbers_close(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list):
        return isinstance(theirs, list) and len(ours) == len(theirs) and all(
            numbers_close(a, b) for a, b in zip(ours, theirs))
    if isinstance(ours, float) and isinstance(theirs, (int, float)) and not isinstance(theirs, bool):
        return abs(ours - theirs) <= max(1e-5, 1e-8 * abs(ours))
    return ours == theirs


def within_inverter_tolerance(ours: Any, theirs: Any) -> bool:
    """The same action, and the power summary and voltage profile within the inverter controls' tolerance."""
    if ours.get("action") != theirs.get("action") or ours.keys() != theirs.keys() or "results" not in ours:
        return False
    for section, tolerance in (("power_summary", 5.0), ("voltage_profile", 1e-3)):
        x, y = ours["results"][section], theirs["results"][section]
        if x.keys() != y.keys() or any(abs(x[k] - y[k]) > tolerance for k in x if not isinstance(x[k], bool)
                                       and isinstance(x[k], (int, float))):
            return False
    return True


def sabotage() -> None:
    """For the test that shows a crash is caught: every InvControl defined over its PVSystem switched off first,
    the sequence that kills DSS C-API 0.14.5 (the text interface's class patched, in this process only)."""
    import opendssdirect

    text_class = type(opendssdirect.NewContext().Text)
    command = text_class.Command

    def crashing(self: Any, value: str | None = None) -> Any:
        if value and value.startswith("New InvControl."):
            command(self, f"disable PVSystem.{value.split('PVSystemList=[')[1].split(']')[0]}")
        return command(self, value) if value is not None else command(self)

    text_class.Command = crashing


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("sabotage"):
        sabotage()
    with tempfile.TemporaryDirectory() as folder:
        if spec.get("compare_hosts"):
            print(json.dumps(compare_hosts(spec, Path(folder))))
            return
        session = Session(spec["seed"], Path(folder) / "state.sqlite")
        print(json.dumps(session.run(spec.get("kinds", KINDS), spec["order"])))


if __name__ == "__main__":
    main()
