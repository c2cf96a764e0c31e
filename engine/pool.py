"""Engine hosts (`--engine-hosts N`): scenarios' engines in N processes, so changes to different scenarios use
different cores instead of taking turns under one GIL.

The web process keeps everything else (validation, the journal and its one SQLite writer, ETags, idempotency keys):
the registry is given `EnginePool.make_circuit`, whose `HostedCircuit`s have the methods the registry and the routes
use of an `OpenDSSCircuit`, each answered by the host process (engine/host.py). A snapshot comes back with its
results' JSON already rendered in the host, so answers are the same bytes the single process sends.

A host that dies is started again at once; its circuits answer `alive == False`, so the registry rebuilds their
scenarios from their journals on next use, and a request caught on the dead host gets `HostUnavailable` (503 with
Retry-After), never a hang.
"""

from __future__ import annotations

import functools
import itertools
import os
import select
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from engine.host import recv_message, send_message, unpack_arrays
from engine.interface import Circuit
from engine.results import Change, RowLayout, Snapshot
from engine.settings import EngineSettings

REPO = Path(__file__).resolve().parent.parent  #: where `python -m engine.host` finds our code


def host_environment() -> dict[str, str]:
    """This process's environment with our code first on the path (the host keeps the server's working folder,
    so relative feeder paths mean the same in both)."""
    path = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
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
    """One host process and the socket to it.

    Requests for different circuits are sent without waiting for earlier answers: they queue in the socket and the
    host answers them in turn, so it never idles while the web process finishes another answer. Answers are matched
    to callers by request id, and the callers take turns reading them (one reads while the others wait), so an
    answer reaches its caller without a hop through another thread.
    Locks: `send_lock` orders writes and the swap of the process on a restart; `answers` (a condition) guards the
    waiting callers and who reads, never held while reading or writing; `lock` makes one restart at a time."""

    def __init__(self, index: int, pool: "EnginePool") -> None:
        self.index = index
        self.pool = pool
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.answers = threading.Condition(threading.Lock())
        self.pending: dict[int, Future] = {}
        self.reading = False  # a caller is reading the socket
        self.request_ids = itertools.count(1)
        self.generation = 0
        self.restarts = 0
        self.circuits = 0  # open circuits (placement balances on it)
        self.closing = False
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.start()

    def start(self) -> None:
        """Spawn the process; `wait_ready` completes the start (hosts start side by side)."""
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, "-m", "engine.host", str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], env=host_environment())
        theirs.close()
        self.sock = ours

    def wait_ready(self) -> None:
        """Wait for the host's first message (nobody else reads before it: no request has been sent)."""
        assert self.sock is not None
        ready, _, _ = select.select([self.sock], [], [], START_TIMEOUT_S)
        if not ready:
            raise RuntimeError(f"engine host {self.index} did not start within {START_TIMEOUT_S:g} s")
        recv_message(self.sock)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def current_generation(self) -> int:
        """The generation of the running process, restarting it first if it died while idle (so the next
        request on one of its scenarios is rebuilt elsewhere and answered, rather than refused)."""
        process = self.process
        if process is not None and process.poll() is None:
            return self.generation
        with self.lock:
            if self.process is process and not self.closing:
                self._restart()
            return self.generation

    def call(self, generation: int, verb: str, circuit_id: int, args: tuple = ()) -> Any:
        """Send one request and wait for its answer; a dead host raises HostUnavailable (and is restarted)."""
        future: Future = Future()
        with self.send_lock:
            if generation != self.generation or self.closing:
                raise HostUnavailable(f"engine host {self.index} was restarted; the scenario is rebuilt from its "
                                      f"journal on the next request")
            request_id = next(self.request_ids)
            with self.answers:
                self.pending[request_id] = future
            try:
                assert self.sock is not None
                send_message(self.sock, (request_id, verb, circuit_id, args))
            except BaseException as error:
                with self.answers:
                    self.pending.pop(request_id, None)
                if isinstance(error, OSError):  # the host died: whoever reads sees the end and restarts it
                    raise self.stopped() from error
                raise
        self._wait_for(future, generation)
        status, value = future.result()
        if status == "err":
            raise value
        return value

    def _wait_for(self, future: Future, generation: int) -> None:
        """Read answers, or wait while another caller reads them, until this one's has come."""
        while True:
            with self.answers:
                while not future.done() and self.reading:
                    self.answers.wait()
                if future.done():
                    return
                self.reading, sock = True, self.sock
            assert sock is not None
            try:
                request_id, status, value = recv_message(sock)
            except (EOFError, OSError):
                with self.answers:
                    self.reading = False
                    self._close_if_replaced(sock)
                    self.answers.notify_all()
                self._died(generation)  # fails every waiting caller, this one included
                continue
            with self.answers:
                self.reading = False
                waiting = self.pending.pop(request_id, None)
                if waiting is not None:
                    waiting.set_result((status, value))
                self.answers.notify_all()

    def stopped(self) -> HostUnavailable:
        return HostUnavailable(f"engine host {self.index} stopped while answering; nothing was applied. "
                               f"Retry: the scenario is rebuilt from its journal")

    def _died(self, generation: int) -> None:
        with self.lock:
            if not self.closing and self.generation == generation:
                self._restart()

    def _close_if_replaced(self, sock: socket.socket) -> None:
        """Close a dead generation's socket (or the last one, when closing) once nobody reads it (caller holds
        `answers`): closed under a reader, its number could be reused by a new socket the reader would then read."""
        if (sock is not self.sock or self.closing) and not self.reading:
            sock.close()

    def _restart(self) -> None:
        """A new process in place of the dead one (caller holds `lock`); its circuits are gone, and the callers
        waiting on it get HostUnavailable."""
        with self.send_lock:
            assert self.process is not None and self.sock is not None
            self.process.kill()
            self.process.wait()
            old = self.sock
            self._shut(old)  # wakes a caller reading it
            with self.answers:
                waiting, self.pending = self.pending, {}
                self.generation += 1
                self.restarts += 1
                self.circuits = 0
                self.start()
                self._close_if_replaced(old)
                for future in waiting.values():
                    future.set_exception(self.stopped())
                self.answers.notify_all()
            self.wait_ready()

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

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
        """End of input for the host, which exits; callers still waiting get HostUnavailable."""
        with self.lock:
            self.closing = True
            with self.send_lock, self.answers:
                if self.sock is not None:
                    self._shut(self.sock)
                    self._close_if_replaced(self.sock)
                waiting, self.pending = self.pending, {}
                for future in waiting.values():
                    future.set_exception(self.stopped())
                self.answers.notify_all()
            if self.process is not None:
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()


class EnginePool:
    """The hosts, and where each new engine goes: the host with the fewest open engines."""

    def __init__(self, count: int, settings: EngineSettings) -> None:
        self.settings = settings
        self.layouts: dict[str, RowLayout] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.hosts = [EngineHost(index, self) for index in range(count)]
        for host in self.hosts:
            host.wait_ready()

    def make_circuit(self, settings: EngineSettings | None = None) -> "HostedCircuit":
        """A new engine on the least busy host, compiling `settings`' feeder (default: the pool's)."""
        with self._lock:
            host = min(self.hosts, key=lambda h: h.circuits)
            host.circuits += 1
        return HostedCircuit(host, next(self._ids), settings or self.settings)

    def forget_circuit(self, host: EngineHost) -> None:
        """A circuit of `host` closed (or never made): one fewer to place beside."""
        with self._lock:
            host.circuits -= 1

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


#: The proxy's own public members beside the interface's (which host holds it, whether that host still does).
PROXY_MEMBERS = ("alive", "ask_host", "host", "id", "generation")


class HostedCircuit(Circuit):
    """A scenario's circuit living in an engine host. Its state and changes cross as snapshots; every other member
    is a read it inherits from `Circuit`, which the host answers by name (`ask_host`)."""

    host: EngineHost  # where the engine lives
    id: int  # the engine's number in its host
    generation: int  # the host process it was made in (`alive` compares)

    def __init__(self, host: EngineHost, circuit_id: int, settings: EngineSettings) -> None:
        self.host, self.id, self.generation = host, circuit_id, host.current_generation()
        try:
            self._snapshot = host.pool.snapshot(self._call("new", (settings,)))
        except Exception:
            host.pool.forget_circuit(host)
            raise

    @property
    def alive(self) -> bool:
        """False once its host died: the engine is gone and the scenario must be rebuilt elsewhere."""
        return self.generation == self.host.current_generation()

    def _call(self, verb: str, args: tuple = ()) -> Any:
        return self.host.call(self.generation, verb, self.id, args)

    def ask_host(self, verb: str, args: tuple) -> Any:
        """One of the interface's reads (`engine.interface.FORWARDED`), answered by the host."""
        return self._call(verb, args)

    def apply(self, op: Mapping[str, Any], dry_run: bool = False) -> Change:
        action, payload = self._call("apply", (dict(op), dry_run))
        change = Change(action, self.host.pool.snapshot(payload))
        if not dry_run:
            self._snapshot = change.snapshot
        return change

    def rebuild(self, ops: Sequence[Mapping[str, Any]], sequence: int | None = None) -> list[dict[str, Any]]:
        actions, payload = self._call("rebuild", ([dict(op) for op in ops], sequence))
        self._snapshot = self.host.pool.snapshot(payload)
        return actions

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def base_snapshot(self) -> Snapshot:
        return self.host.pool.snapshot(self._call("base_snapshot"))

    def results(self) -> dict[str, Any]:
        return self._snapshot.results

    def close(self) -> None:
        if not self.alive:
            return
        try:
            self._call("close")
        except HostUnavailable:
            return
        self.host.pool.forget_circuit(self.host)

