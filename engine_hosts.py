"""Engine hosts (`--engine-hosts N`): scenarios' engines in N processes, so changes to different scenarios use
different cores instead of taking turns under one GIL.

The web process keeps everything else (validation, the journal and its one SQLite writer, ETags, idempotency keys):
the registry is given `EnginePool.make_circuit`, whose `HostedCircuit`s have the methods the registry and the routes
use of an `OpenDSSCircuit`, each answered by the host process (engine_host.py). A snapshot comes back with its
results' JSON already rendered in the host, so answers are the same bytes the single process sends.

A host that dies is started again at once; its circuits answer `alive == False`, so the registry rebuilds their
scenarios from their journals on next use, and a request caught on the dead host gets `HostUnavailable` (503 with
Retry-After), never a hang.
"""

from __future__ import annotations

import functools
import itertools
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from engine_host import unpack_arrays
from results import Change, RowLayout, Snapshot

HOST_SCRIPT = Path(__file__).resolve().parent / "engine_host.py"
START_TIMEOUT_S = 60.0


class HostUnavailable(Exception):
    """The engine host of a scenario died while working on a request (HTTP 503 with Retry-After)."""

    retry_after_s = 1


class HostedSnapshot(Snapshot):
    """A snapshot made in a host: its results' JSON came rendered; its arrays are unpacked on first use (a
    change's answer needs only the JSON)."""

    def __init__(self, sequence: int, layout: RowLayout, sections: dict[str, Any], packed: tuple,
                 results_json: bytes) -> None:
        self.sequence, self.layout, self._sections, self._packed = sequence, layout, sections, packed
        self.__dict__["results_json"] = results_json  # what built_in_turn would build and keep

    @functools.cached_property
    def arrays(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        return unpack_arrays(self._packed)


class EngineHost:
    """One host process and the pipe to it; one request at a time (the host answers them in turn)."""

    def __init__(self, index: int, pool: "EnginePool") -> None:
        self.index = index
        self.pool = pool
        self.lock = threading.Lock()
        self.generation = 0
        self.restarts = 0
        self.circuits = 0  # open circuits (placement balances on it)
        self.process: subprocess.Popen | None = None
        self.connection: Connection | None = None
        self.start()

    def start(self) -> None:
        """Spawn the process; `wait_ready` completes the start (hosts start side by side)."""
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, str(HOST_SCRIPT), str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()])
        theirs.close()
        self.connection = Connection(ours.detach())

    def wait_ready(self) -> None:
        assert self.connection is not None
        if not self.connection.poll(START_TIMEOUT_S):
            raise RuntimeError(f"engine host {self.index} did not start within {START_TIMEOUT_S:g} s")
        self.connection.recv()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def current_generation(self) -> int:
        """The generation of the running process, restarting it first if it died while idle (so the next
        request on one of its scenarios is rebuilt elsewhere and answered, rather than refused)."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._restart()
            return self.generation

    def call(self, generation: int, verb: str, circuit_id: int, args: tuple = ()) -> Any:
        """Send one request and wait for its answer; a dead host raises HostUnavailable (and is restarted)."""
        with self.lock:
            if generation != self.generation:
                raise HostUnavailable(f"engine host {self.index} was restarted; the scenario is rebuilt from its "
                                      f"journal on the next request")
            assert self.connection is not None
            try:
                self.connection.send((verb, circuit_id, args))
                status, value = self.connection.recv()
            except (EOFError, OSError) as error:
                self._restart()
                raise HostUnavailable(f"engine host {self.index} stopped while answering; nothing was applied. "
                                      f"Retry: the scenario is rebuilt from its journal") from error
        if status == "err":
            raise value
        return value

    def _restart(self) -> None:
        """A new process in place of the dead one (caller holds the lock); its circuits are gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        if self.connection is not None:
            self.connection.close()
        self.generation += 1
        self.restarts += 1
        self.circuits = 0
        self.start()
        self.wait_ready()

    def rss_mb(self) -> float | None:
        """Resident memory of the host process (Linux /proc), for /health and the bench."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.close()
            if self.process is not None:
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()


class EnginePool:
    """The hosts, and where each new engine goes: the host with the fewest open engines."""

    def __init__(self, count: int, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.layouts: dict[str, RowLayout] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.hosts = [EngineHost(index, self) for index in range(count)]
        for host in self.hosts:
            host.wait_ready()

    def make_circuit(self) -> "HostedCircuit":
        with self._lock:
            host = min(self.hosts, key=lambda h: h.circuits)
            host.circuits += 1
        return HostedCircuit(host, next(self._ids), self.settings)

    def snapshot(self, payload: tuple) -> Snapshot:
        """The web process's copy of a host's snapshot, its results' JSON already in it."""
        sequence, key, fields, sections, packed, results_json = payload
        if fields is not None and key not in self.layouts:
            self.layouts[key] = RowLayout(*fields)
        return HostedSnapshot(sequence, self.layouts[key], sections, packed, results_json)

    def describe(self, circuits_by_scenario: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        """Each host: index, pid, memory, restarts and the live scenarios it holds (for GET /health)."""
        held: dict[int, list[str]] = {host.index: [] for host in self.hosts}
        for scenario_id, circuit in circuits_by_scenario:
            if isinstance(circuit, HostedCircuit) and circuit.alive:
                held[circuit.host.index].append(scenario_id)
        return [{"host": host.index, "pid": host.pid, "rss_mb": host.rss_mb(), "restarts": host.restarts,
                 "scenarios": sorted(held[host.index])} for host in self.hosts]

    def close(self) -> None:
        for host in self.hosts:
            host.close()


class HostedCircuit:
    """An `OpenDSSCircuit` living in an engine host: the methods the registry and the routes use, answered there."""

    def __init__(self, host: EngineHost, circuit_id: int, settings: Mapping[str, Any]) -> None:
        self.host, self.id, self.generation = host, circuit_id, host.current_generation()
        try:
            self._snapshot = host.pool.snapshot(self._call("new", (dict(settings),)))
        except Exception:
            with host.pool._lock:
                host.circuits -= 1
            raise

    @property
    def alive(self) -> bool:
        """False once its host died: the engine is gone and the scenario must be rebuilt elsewhere."""
        return self.generation == self.host.current_generation()

    def _call(self, verb: str, args: tuple = ()) -> Any:
        return self.host.call(self.generation, verb, self.id, args)

    def apply(self, op: Mapping[str, Any], dry_run: bool = False) -> Change:
        action, payload = self._call("apply", (dict(op), dry_run))
        change = Change(action, self.host.pool.snapshot(payload))
        if not dry_run:
            self._snapshot = change.snapshot
        return change

    def rebuild(self, ops: list[Mapping[str, Any]], sequence: int | None = None) -> list[dict[str, Any]]:
        actions, payload = self._call("rebuild", ([dict(op) for op in ops], sequence))
        self._snapshot = self.host.pool.snapshot(payload)
        return actions

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def base_snapshot(self) -> Snapshot:
        return self.host.pool.snapshot(self._call("base_snapshot"))

    @property
    def transformer_names(self) -> list[str]:
        return self._call("transformer_names")

    def results(self) -> dict[str, Any]:
        return self._snapshot.results

    def buses(self) -> list[dict[str, Any]]:
        return self._call("buses")

    def bus(self, name: str) -> dict[str, Any]:
        return self._call("bus", (name,))

    def generators(self) -> list[dict[str, Any]]:
        return self._call("generators")

    def neighbourhoods(self) -> list[dict[str, Any]]:
        return self._call("neighbourhoods")

    def transformers(self) -> list[dict[str, Any]]:
        return self._call("transformers")

    def health(self) -> dict[str, Any]:
        return self._call("health")

    def load_setpoints_kw(self) -> list[float]:
        return self._call("load_setpoints_kw")

    def load_neighbourhoods(self) -> list[int | None]:
        return self._call("load_neighbourhoods")

    def customers(self) -> Any:
        return self._call("customers")

    def close(self) -> None:
        if not self.alive:
            return
        try:
            self._call("close")
        except HostUnavailable:
            return
        with self.host.pool._lock:
            self.host.circuits -= 1
