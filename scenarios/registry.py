"""The scenario registry: isolated grids, each with its own engine, lock, journal and ETag.

Routes ask the registry for a scenario's state or give it a change (an op); the registry checks the
preconditions (If-Match, Idempotency-Key), has the scenario's circuit (`engine.interface.Circuit`) apply it, journals it in the
store, and only then answers. Engines are kept for at most `max_live` scenarios; the others rest as journals
and are rebuilt on first use, reusing the engine of the least recently used scenario.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson

from engine.results import Change, Snapshot
from scenarios.journal import JournalState, Op, replay_journal, utc_now
from scenarios.store import (IdempotencyRecord, JournalEntry, ScenarioStore, StateFileError, StoredScenario)
from engine.errors import SimulationError
from engine.interface import Circuit

DEFAULT_ID = "default"
MAX_JOURNAL = 10_000  # changes listed per scenario; a full journal is folded into the scenario's starting point


class ScenarioError(Exception):
    """A request the registry refuses: unknown scenario (404), conflicts (409), stale If-Match (412),
    a reused idempotency key (422), limits (429). The message says what was wrong and what to do."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class Scenario:
    """One isolated grid: its journal is its state; its engine, when live, is that journal applied."""

    def __init__(self, stored: StoredScenario) -> None:
        self.id = stored.id
        self.name = stored.name
        self.created_at = stored.created_at
        self.forked_from = stored.forked_from
        self.journal: list[JournalEntry] = list(stored.journal)
        self.base_ops, self.base_sequence = list(stored.base_ops), stored.base_sequence
        self.lock = threading.RLock()
        self.circuit: Circuit | None = None
        self.snapshot: Snapshot | None = None  # the current state's results while live (read without the lock)
        self.last_used = time.monotonic()

    @property
    def sequence(self) -> int:
        return self.journal[-1].sequence if self.journal else self.base_sequence

    def etag(self, sequence: int | None = None) -> str:
        """Strong entity tag of the scenario's state: it changes exactly when the sequence moves on."""
        return f'"{self.id}.{self.sequence if sequence is None else sequence}"'

    def journal_state(self) -> JournalState:
        return replay_journal((entry.action for entry in self.journal), self.base_ops, self.base_sequence)

    def ops(self) -> list[Op]:
        """The ops the journal adds up to: applying them to the base case gives the current state."""
        return self.journal_state().ops

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "sequence": self.sequence, "created_at": self.created_at,
                "forked_from": self.forked_from, "changes": len(self.journal), "live": self.circuit is not None}

    def describe_journal(self) -> dict[str, Any]:
        """The journal as GET …/changes lists it: `since` is the sequence it starts after (0 unless folded)."""
        return {"scenario": self.id, "since": self.base_sequence,
                "changes": [entry.describe() for entry in self.journal]}


@dataclass(frozen=True)
class ChangeOutcome:
    """A change's answer: the change itself, or (a retried idempotency key) the body first sent."""

    status: int
    etag: str
    change: Change | None = None
    body: bytes | None = None
    replayed: bool = False


class ScenarioRegistry:
    def __init__(self, store: ScenarioStore, make_circuit: Callable[[], Circuit], max_scenarios: int = 64,
                 max_live: int | None = None, default_circuit: Circuit | None = None) -> None:
        self.store = store
        self.make_circuit = make_circuit
        self.max_scenarios = max_scenarios
        self.max_live = max_live or max_scenarios
        self._lock = threading.Lock()  # the registry's dict, engine accounting and in-flight keys
        self._scenarios: dict[str, Scenario] = {}
        self._idle_engines: list[Circuit] = []
        self._in_flight: set[tuple[str, str]] = set()
        self._creating = 0
        for stored in store.load():
            self._check_journal(stored)
            self._scenarios[stored.id] = Scenario(stored)
        if DEFAULT_ID not in self._scenarios:
            stored = StoredScenario(DEFAULT_ID, "default", utc_now(), None, [])
            store.add_scenario(stored)
            self._scenarios[DEFAULT_ID] = Scenario(stored)
        default = self._scenarios[DEFAULT_ID]
        with default.lock:
            if default_circuit is not None and not default.journal:
                self._go_live(default, default_circuit, rebuild=False)
            else:
                self._ensure_live(default)

    def _check_journal(self, stored: StoredScenario) -> None:
        """Refuse to start on a journal this server cannot replay (it is never silently dropped)."""
        try:
            replay_journal((entry.action for entry in stored.journal), stored.base_ops, stored.base_sequence)
        except (KeyError, ValueError, TypeError, IndexError) as error:
            raise StateFileError(f"--state {self.store.path}: the journal of scenario {stored.id} cannot be "
                                 f"replayed ({error!r}); the file was left as it is.") from error

    # ------------------------------------------------------------------ the scenarios
    def get(self, scenario_id: str) -> Scenario:
        scenario = self._scenarios.get(scenario_id)
        if scenario is None:
            raise ScenarioError(404, f"scenario: no scenario {scenario_id!r}; GET /scenarios lists them",
                                field="scenario")
        return scenario

    def list(self) -> list[dict[str, Any]]:
        return [scenario.describe() for scenario in list(self._scenarios.values())]

    def __len__(self) -> int:
        return len(self._scenarios)

    def create(self, name: str | None, from_id: str | None) -> Scenario:
        """A new scenario from the base case, or from the current state of `from_id` (its ops journalled anew)."""
        ops: list[Op] = []
        if from_id is not None:
            parent = self.get(from_id)
            with parent.lock:
                ops = parent.ops()
        return self._add(name, ops, forked_from=from_id)

    def import_ops(self, name: str | None, ops: list[Op]) -> Scenario:
        """A new scenario whose journal is these ops applied in order (a refused op creates nothing: 422)."""
        try:
            return self._add(name, ops, forked_from=None)
        except SimulationError as error:
            raise ScenarioError(422, str(error), error.field) from error

    def _add(self, name: str | None, ops: list[Op], forked_from: str | None) -> Scenario:
        with self._lock:
            if len(self._scenarios) + self._creating >= self.max_scenarios:
                raise ScenarioError(429, f"scenarios: the limit of {self.max_scenarios} scenarios (default "
                                         f"included) is reached; delete one (DELETE /scenarios/<id>) or start "
                                         f"the server with --max-scenarios N", field="scenarios")
            self._creating += 1
        try:
            circuit = self._take_engine()
            try:
                actions = circuit.rebuild(ops)
            except Exception:
                self._release_engine(circuit)
                raise
            at = utc_now()
            journal = [JournalEntry(action["sequence"], at, action) for action in actions]
            if len(journal) > MAX_JOURNAL:  # too long to journal: the ops become its starting point
                stored = StoredScenario(secrets.token_urlsafe(12), name, at, forked_from, [], ops, len(ops))
            else:
                stored = StoredScenario(secrets.token_urlsafe(12), name, at, forked_from, journal)
            scenario = Scenario(stored)
            with scenario.lock:
                self.store.add_scenario(stored)
                self._go_live(scenario, circuit, rebuild=False)
                with self._lock:
                    self._scenarios[scenario.id] = scenario
            return scenario
        finally:
            with self._lock:
                self._creating -= 1

    def delete(self, scenario_id: str) -> dict[str, Any]:
        if scenario_id == DEFAULT_ID:
            raise ScenarioError(409, "scenario: the default scenario cannot be deleted (POST /reset restores "
                                     "its base case)", field="scenario")
        scenario = self.get(scenario_id)
        with scenario.lock:
            self.store.delete_scenario(scenario_id)
            with self._lock:
                self._scenarios.pop(scenario_id, None)
            description = scenario.describe()
            if scenario.circuit is not None:
                self._release_engine(scenario.circuit)
                scenario.circuit, scenario.snapshot = None, None
        return description

    # ------------------------------------------------------------------ reading a scenario
    def snapshot(self, scenario_id: str) -> tuple[Scenario, Snapshot]:
        """The scenario's current results, without waiting for a change in progress when it is live."""
        scenario = self.get(scenario_id)
        snapshot = scenario.snapshot
        if snapshot is None:
            with scenario.lock:
                snapshot = self._ensure_live(scenario).snapshot
        scenario.last_used = time.monotonic()
        return scenario, snapshot

    @contextlib.contextmanager
    def engine(self, scenario_id: str) -> Iterator[tuple[Scenario, Circuit]]:
        """The scenario's live engine, held (no change, no eviction) for the block."""
        scenario = self.get(scenario_id)
        with scenario.lock:
            yield scenario, self._ensure_live(scenario)

    # ------------------------------------------------------------------ changing a scenario
    def change(self, scenario_id: str, op: Op, *, dry_run: bool = False, if_match: list[str] | None = None,
               idempotency_key: str | None = None, render: Callable[[Change], bytes] | None = None
               ) -> ChangeOutcome:
        """Apply one op (or `{"op": "undo"}`) under the scenario's lock; journalled before it is answered.

        With an idempotency key, the body (`render(change)`) is committed with the journal row, so a retry gets
        that body back instead of a second change."""
        scenario = self.get(scenario_id)
        key = idempotency_key if not dry_run else None
        fingerprint = op_fingerprint(op) if key else ""
        if key is not None:
            with self._lock:
                if (scenario_id, key) in self._in_flight:
                    raise ScenarioError(409, "Idempotency-Key: a request with this key is still being processed; "
                                             "retry when it has answered", field="Idempotency-Key")
                self._in_flight.add((scenario_id, key))
        try:
            with scenario.lock:
                if key is not None:
                    record = self.store.idempotency_record(scenario_id, key)
                    if record is not None:
                        if record.fingerprint != fingerprint:
                            raise ScenarioError(422, "Idempotency-Key: this key was used with another request; "
                                                     "use a new key for a new change", field="Idempotency-Key")
                        return ChangeOutcome(record.status, record.etag, body=record.body, replayed=True)
                if if_match is not None and "*" not in if_match and scenario.etag() not in if_match:
                    raise ScenarioError(412, f"If-Match: the scenario has changed (its ETag is now "
                                             f"{scenario.etag()}); nothing was applied. Read it again and retry",
                                        field="If-Match")
                circuit = self._ensure_live(scenario)
                if dry_run:
                    change = self._apply(scenario, circuit, op, dry_run=True)
                    return ChangeOutcome(200, scenario.etag(), change=change)
                if len(scenario.journal) >= MAX_JOURNAL:
                    self._fold(scenario)
                change = self._apply(scenario, circuit, op, dry_run=False)
                entry = JournalEntry(change["sequence"], utc_now(), dict(change))
                etag = scenario.etag(change["sequence"])
                record = IdempotencyRecord(fingerprint, 200, etag, render(change)) if key and render else None
                try:
                    self.store.append_change(scenario_id, entry, key, record)
                except Exception:
                    circuit.rebuild(scenario.ops(), scenario.sequence)  # not journalled: not applied
                    scenario.snapshot = circuit.snapshot
                    raise
                scenario.journal.append(entry)
                scenario.snapshot = change.snapshot
                return ChangeOutcome(200, etag, change=change, body=record.body if record else None)
        finally:
            if key is not None:
                with self._lock:
                    self._in_flight.discard((scenario_id, key))

    def _fold(self, scenario: Scenario) -> None:
        """A full journal becomes the scenario's starting point (its current ops): the state is unchanged, the
        listed changes start again, and undo cannot go back past this point."""
        ops, sequence = scenario.ops(), scenario.sequence
        self.store.fold(scenario.id, ops, sequence)
        scenario.base_ops, scenario.base_sequence, scenario.journal = ops, sequence, []

    def _apply(self, scenario: Scenario, circuit: Circuit, op: Op, dry_run: bool) -> Change:
        if op.get("op") != "undo":
            return circuit.apply(op, dry_run=dry_run)
        state = scenario.journal_state()
        undid = state.undoable_sequence
        if undid is None:
            start = f"its start (sequence {scenario.base_sequence}: the changes before were folded when its journal " \
                    f"reached {MAX_JOURNAL})" if scenario.base_sequence else "its start"
            raise ScenarioError(409, f"scenario: nothing to undo; scenario {scenario.id} is at {start}",
                                field="scenario")
        sequence = scenario.sequence + 1
        action = {"type": "undo", "sequence": sequence, "undid": undid, **({"dry_run": True} if dry_run else {})}
        if not dry_run:
            circuit.rebuild(state.ops_before_last_change(), sequence)
            return Change(action, circuit.snapshot)
        preview = self.make_circuit()
        try:
            preview.rebuild(state.ops_before_last_change(), sequence)
            return Change(action, preview.snapshot)
        finally:
            preview.close()

    # ------------------------------------------------------------------ engines
    def _ensure_live(self, scenario: Scenario) -> Circuit:
        """The scenario's engine (caller holds its lock), rebuilt from the journal if it was resting."""
        scenario.last_used = time.monotonic()
        circuit = scenario.circuit
        if circuit is not None and not engine_alive(circuit):
            scenario.circuit = circuit = None  # its engine host died: rebuilt from the journal (its snapshot stays)
        if circuit is None:
            circuit = self._take_engine()
            self._go_live(scenario, circuit, rebuild=True)
        return circuit

    def _go_live(self, scenario: Scenario, circuit: Circuit, rebuild: bool) -> None:
        if rebuild:
            try:
                circuit.rebuild(scenario.ops(), scenario.sequence)
            except SimulationError as error:
                self._release_engine(circuit)
                raise RuntimeError(f"scenario {scenario.id} could not be rebuilt from its journal: {error}") \
                    from error
        scenario.circuit, scenario.snapshot = circuit, circuit.snapshot

    def _take_engine(self) -> Circuit:
        """An engine for one more live scenario: an idle one, a new one while under max_live, or the engine of
        the least recently used scenario not busy right now (it rests as its journal)."""
        with self._lock:
            self._idle_engines = [engine for engine in self._idle_engines if engine_alive(engine)]
            if self._idle_engines:
                return self._idle_engines.pop()
            live = [s for s in self._scenarios.values() if s.circuit is not None]
            if len(live) < self.max_live:
                live = []
        for victim in sorted(live, key=lambda s: s.last_used):
            if victim.id == DEFAULT_ID or not victim.lock.acquire(blocking=False):
                continue
            try:
                if victim.circuit is not None:
                    circuit, victim.circuit, victim.snapshot = victim.circuit, None, None
                    if engine_alive(circuit):
                        return circuit
            finally:
                victim.lock.release()
        return self.make_circuit()

    def _release_engine(self, circuit: Circuit) -> None:
        with self._lock:
            if len(self._idle_engines) < 2:
                self._idle_engines.append(circuit)
                return
        circuit.close()

    def live_count(self) -> int:
        return sum(s.circuit is not None for s in list(self._scenarios.values()))

    def live_engines(self) -> list[tuple[str, Any]]:
        """(scenario id, engine) of every live scenario (GET /health says which engine host holds which)."""
        return [(s.id, s.circuit) for s in list(self._scenarios.values()) if s.circuit is not None]


def engine_alive(circuit: Any) -> bool:
    """An engine in this process is always alive; one in an engine host is not once that host has died."""
    return getattr(circuit, "alive", True)


def op_fingerprint(op: Op) -> str:
    """What an Idempotency-Key is bound to: the op, keys sorted. orjson stops at 64-bit integers; a body may hold
    a larger one (an unknown neighbourhood, refused later with a 404), which the standard library writes."""
    try:
        text = orjson.dumps(op, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(op, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()
