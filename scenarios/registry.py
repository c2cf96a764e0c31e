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
from scenarios.feeders import ServedFeeder, ServedFeeders

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
    """One isolated grid on one feeder: its journal is its state; its engine, when live, is that journal applied.

    `unavailable`: why it cannot be rebuilt on this server (its feeder is not served, or its deck's files changed
    since it was made), or None. Such a scenario is kept as it is, listed, and refused (409) until its feeder is
    served again."""

    def __init__(self, stored: StoredScenario, feeder: str, feeder_sha256: str, unavailable: str | None = None
                 ) -> None:
        self.id = stored.id
        self.name = stored.name
        self.created_at = stored.created_at
        self.forked_from = stored.forked_from
        self.feeder, self.feeder_sha256, self.unavailable = feeder, feeder_sha256, unavailable
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
        described = {"id": self.id, "name": self.name, "sequence": self.sequence, "created_at": self.created_at,
                     "forked_from": self.forked_from, "changes": len(self.journal), "live": self.circuit is not None,
                     "feeder": self.feeder}
        if self.unavailable:
            described["unavailable"] = self.unavailable
        return described

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
    """The scenarios of every feeder served. `feeders`: the served feeders, the first the default scenario's (the
    caller has checked the state file was made with that default: `ScenarioStore.claim_feeder`). Each feeder's
    engine is compiled at start-up (a deck that does not compile or converge stops the server) and its facts read
    then, before any change."""

    def __init__(self, store: ScenarioStore, feeders: ServedFeeders, max_scenarios: int = 64,
                 max_live: int | None = None, default_circuit: Circuit | None = None) -> None:
        self.store = store
        self.feeders = feeders
        self.max_scenarios = max_scenarios
        self.max_live = max_live or max_scenarios
        self._lock = threading.Lock()  # the registry's dict, engine accounting and in-flight keys
        self._scenarios: dict[str, Scenario] = {}
        self._idle_engines: dict[str, list[Circuit]] = {feeder.name: [] for feeder in feeders}
        self._in_flight: set[tuple[str, str]] = set()
        self._creating = 0
        default_feeder = feeders.default
        for stored in store.load():
            self._check_journal(stored)
            name = stored.feeder or default_feeder.name  # rows from before feeders were named: the file's feeder
            sha256 = stored.feeder_sha256 or default_feeder.sha256
            self._scenarios[stored.id] = Scenario(stored, name, sha256, unavailable_reason(feeders, name, sha256))
        if DEFAULT_ID not in self._scenarios:
            stored = StoredScenario(DEFAULT_ID, "default", utc_now(), None, [], feeder=default_feeder.name,
                                    feeder_sha256=default_feeder.sha256)
            store.add_scenario(stored)
            self._scenarios[DEFAULT_ID] = Scenario(stored, default_feeder.name, default_feeder.sha256)
        default = self._scenarios[DEFAULT_ID]
        with default.lock:
            if default_circuit is not None and not default.journal:
                self._go_live(default, default_circuit, rebuild=False)
            else:
                self._ensure_live(default)
            self._facts = {default_feeder.name: default.circuit.feeder_facts()}
        for feeder in list(feeders)[1:]:
            circuit = feeder.make_circuit()
            self._facts[feeder.name] = circuit.feeder_facts()
            self._release_engine(circuit, feeder.name)

    def feeder_facts(self) -> list[dict[str, Any]]:
        """Each served feeder's facts (read at start-up), the default first and marked."""
        return [{**self._facts[feeder.name], "default": feeder is self.feeders.default} for feeder in self.feeders]

    def served(self, scenario: Scenario) -> ServedFeeder:
        """The feeder a scenario is on, as served here (409 when it is not: the scenario is kept, unavailable)."""
        feeder = self.feeders.get(scenario.feeder)
        if scenario.unavailable or feeder is None:
            raise ScenarioError(409, f"scenario: {scenario.unavailable}", field="scenario")
        return feeder

    def feeder_named(self, name: str | None) -> ServedFeeder:
        """A served feeder by name (None: the default), or 404 naming those served."""
        if name is None:
            return self.feeders.default
        feeder = self.feeders.get(name)
        if feeder is None:
            raise ScenarioError(404, f"feeder: no feeder {name!r} is served here; GET /feeders lists them "
                                     f"({', '.join(self.feeders.names())})", field="feeder")
        return feeder

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

    def create(self, name: str | None, from_id: str | None, feeder: str | None = None) -> Scenario:
        """A new scenario from the base case of `feeder` (default: the default feeder), or from the current state
        of `from_id` (its ops journalled anew, on its parent's feeder)."""
        ops: list[Op] = []
        if from_id is None:
            return self._add(name, ops, None, self.feeder_named(feeder))
        parent = self.get(from_id)
        served = self.served(parent)
        if feeder is not None and feeder != parent.feeder:
            raise ScenarioError(409, f"feeder: scenario {from_id} is on feeder {parent.feeder}, and a fork stays on "
                                     f"its parent's feeder (omit feeder, or create from {feeder}'s base case)",
                                field="feeder")
        with parent.lock:
            ops = parent.ops()
        return self._add(name, ops, from_id, served)

    def import_ops(self, name: str | None, ops: list[Op], feeder: ServedFeeder | None = None) -> Scenario:
        """A new scenario on `feeder` (default: the default feeder) whose journal is these ops applied in order (a
        refused op creates nothing: 422)."""
        try:
            return self._add(name, ops, None, feeder or self.feeders.default)
        except SimulationError as error:
            raise ScenarioError(422, str(error), error.field) from error

    def _add(self, name: str | None, ops: list[Op], forked_from: str | None, feeder: ServedFeeder) -> Scenario:
        with self._lock:
            if len(self._scenarios) + self._creating >= self.max_scenarios:
                raise ScenarioError(429, f"scenarios: the limit of {self.max_scenarios} scenarios (default "
                                         f"included) is reached; delete one (DELETE /scenarios/<id>) or start "
                                         f"the server with --max-scenarios N", field="scenarios")
            self._creating += 1
        try:
            circuit = self._take_engine(feeder)
            try:
                actions = circuit.rebuild(ops)
            except Exception:
                self._release_engine(circuit, feeder.name)
                raise
            at = utc_now()
            journal = [JournalEntry(action["sequence"], at, action) for action in actions]
            bound = {"feeder": feeder.name, "feeder_sha256": feeder.sha256}
            if len(journal) > MAX_JOURNAL:  # too long to journal: the ops become its starting point
                stored = StoredScenario(secrets.token_urlsafe(12), name, at, forked_from, [], ops, len(ops), **bound)
            else:
                stored = StoredScenario(secrets.token_urlsafe(12), name, at, forked_from, journal, **bound)
            scenario = Scenario(stored, feeder.name, feeder.sha256)
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
                self._release_engine(scenario.circuit, scenario.feeder)
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
        preview = self.served(scenario).make_circuit()
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
            circuit = self._take_engine(self.served(scenario))
            self._go_live(scenario, circuit, rebuild=True)
        return circuit

    def _go_live(self, scenario: Scenario, circuit: Circuit, rebuild: bool) -> None:
        if rebuild:
            try:
                circuit.rebuild(scenario.ops(), scenario.sequence)
            except SimulationError as error:
                self._release_engine(circuit, scenario.feeder)
                raise RuntimeError(f"scenario {scenario.id} could not be rebuilt from its journal: {error}") \
                    from error
        scenario.circuit, scenario.snapshot = circuit, circuit.snapshot

    def _take_engine(self, feeder: ServedFeeder) -> Circuit:
        """An engine of `feeder` for one more live scenario: while under max_live an idle one or a new one; at the
        limit, the engine of the least recently used scenario not busy right now (it rests as its journal; an
        engine of another feeder is closed, and an idle or new one of this feeder takes its place)."""
        with self._lock:
            idle = self._idle_engines[feeder.name]
            idle[:] = [engine for engine in idle if engine_alive(engine)]
            live = [s for s in self._scenarios.values() if s.circuit is not None]
            if len(live) < self.max_live:
                if idle:
                    return idle.pop()
                live = []
        for victim in sorted(live, key=lambda s: s.last_used):
            if victim.id == DEFAULT_ID or not victim.lock.acquire(blocking=False):
                continue
            try:
                if victim.circuit is not None:
                    circuit, victim.circuit, victim.snapshot = victim.circuit, None, None
                    if engine_alive(circuit) and victim.feeder == feeder.name:
                        return circuit
                    circuit.close()
                    break
            finally:
                victim.lock.release()
        with self._lock:
            if idle:
                return idle.pop()
        return feeder.make_circuit()

    def _release_engine(self, circuit: Circuit, feeder: str) -> None:
        with self._lock:
            idle = self._idle_engines[feeder]
            if len(idle) < 2:
                idle.append(circuit)
                return
        circuit.close()

    def live_count(self) -> int:
        return sum(s.circuit is not None for s in list(self._scenarios.values()))

    def live_engines(self) -> list[tuple[str, Any]]:
        """(scenario id, engine) of every live scenario (GET /health says which engine host holds which)."""
        return [(s.id, s.circuit) for s in list(self._scenarios.values()) if s.circuit is not None]


def unavailable_reason(feeders: ServedFeeders, name: str, sha256: str) -> str | None:
    """Why a scenario made on feeder `name` (deck hash `sha256`) cannot be rebuilt here, or None when it can."""
    served = feeders.get(name)
    if served is not None and served.holds(name, sha256):
        return None
    now = "is not served by this server" if served is None else f"is served with other files now (deck sha256 " \
                                                                  f"{served.sha256})"
    return (f"made on feeder {name} (deck sha256 {sha256}), which {now}; it is kept as it is: serve that feeder "
            f"again (--feeder {name}=PATH) to use it")


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
