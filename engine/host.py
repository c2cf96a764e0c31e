"""An engine host: a process that owns the `OpenDSSCircuit`s of a share of the scenarios (`--engine-hosts N`).

Run by `engine.pool.EngineHost` as `python -m engine.host FD`, FD being its end of a socket pair. It answers one
request at a time, so the web process's threads working on scenarios in different hosts run on different cores
(one GIL per host). It imports only the engine owner, never Flask: it starts in well under a second.

Protocol: each message is pickled and framed by its length (`send_message`, `recv_message`); a request is
`(request_id, verb, circuit_id, args)`, an answer `(request_id, "ok", value)` or `(request_id, "err", exception)`.
The web process may send several requests before reading an answer (each for a different circuit): they queue in
the socket, so the host never waits for the web process between requests. A snapshot crosses as `Host.payload`: its
numbers, its sections and the JSON of the whole results rendered here (the costly part of an answer), with the row
layout sent only the first time a layout is seen (it is fixed for a feeder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import socket
import struct
import sys
from typing import Any

import numpy as np

from engine.interface import FORWARDED, FORWARDED_PROPERTIES
from engine.results import RowLayout, Snapshot
from engine.circuit import OpenDSSCircuit

def layout_key(layout: RowLayout) -> tuple[str, tuple]:
    """A layout's content hash and field values (the same feeder gives the same key in every host)."""
    fields = tuple(getattr(layout, field.name) for field in dataclasses.fields(layout))
    return hashlib.sha256(pickle.dumps(fields)).hexdigest(), fields


def pack_arrays(arrays: dict[str, np.ndarray]) -> tuple[list[tuple[str, str, tuple, int, int]], bytes]:
    """The arrays as one buffer and where each lies in it: unpickling 14 small numpy arrays one by one cost the
    web process ~0.1 ms per change, under its GIL; one bytes object is a copy."""
    spec, offset = [], 0
    for name, array in arrays.items():
        spec.append((name, array.dtype.str, array.shape, offset, array.nbytes))
        offset += array.nbytes
    return spec, b"".join(np.ascontiguousarray(array).tobytes() for array in arrays.values())


def unpack_arrays(packed: tuple[list[tuple[str, str, tuple, int, int]], bytes]) -> dict[str, np.ndarray]:
    """The arrays of `pack_arrays`, as read-only views of its buffer (a snapshot never changes)."""
    spec, buffer = packed
    return {name: np.frombuffer(buffer, dtype=np.dtype(dtype), count=nbytes // np.dtype(dtype).itemsize,
                                offset=offset).reshape(shape)
            for name, dtype, shape, offset, nbytes in spec}


class Host:
    """The circuits of one host by id, and what the web process already knows (layouts)."""

    def __init__(self) -> None:
        self.circuits: dict[int, OpenDSSCircuit] = {}
        self.layouts: dict[int, tuple[RowLayout, str]] = {}  # id(layout) -> (layout kept alive, key)
        self.sent_layouts: set[str] = set()

    def payload(self, snapshot: Snapshot) -> tuple:
        """What the web process needs to rebuild this snapshot, with its big tables' JSON already rendered."""
        known = self.layouts.get(id(snapshot.layout))
        if known is None or known[0] is not snapshot.layout:
            key, _ = layout_key(snapshot.layout)
            self.layouts[id(snapshot.layout)] = (snapshot.layout, key)
            if len(self.layouts) > 64:  # one per compile; keep the newest
                self.layouts.pop(next(iter(self.layouts)))
        key = self.layouts[id(snapshot.layout)][1]
        fields = None
        if key not in self.sent_layouts:
            fields = layout_key(snapshot.layout)[1]
            self.sent_layouts.add(key)
        return (snapshot.sequence, key, fields, snapshot.small_sections, pack_arrays(snapshot.arrays),
                snapshot.results_json)

    def handle(self, verb: str, circuit_id: int, args: tuple) -> Any:
        if verb == "new":
            circuit = OpenDSSCircuit(settings=args[0])
            self.circuits[circuit_id] = circuit
            return self.payload(circuit.snapshot)
        circuit = self.circuits[circuit_id]
        if verb == "apply":
            change = circuit.apply(args[0], dry_run=args[1])
            return dict(change), self.payload(change.snapshot)
        if verb == "rebuild":
            actions = circuit.rebuild(args[0], args[1])
            return actions, self.payload(circuit.snapshot)
        if verb == "base_snapshot":
            return self.payload(circuit.base_snapshot)
        if verb == "close":
            self.circuits.pop(circuit_id).close()
            return None
        if verb in FORWARDED_PROPERTIES:
            return getattr(circuit, verb)
        if verb in FORWARDED:  # the interface's plain-data reads, by name
            return getattr(circuit, verb)(*args)
        raise ValueError(f"engine host: unknown request {verb!r}")


FRAME = struct.Struct("!Q")  # a message's length, before its pickle


def send_message(sock: socket.socket, message: Any) -> None:
    """Pickle and send one message whole (pickling errors raise before anything is sent)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(FRAME.pack(len(data)) + data)


def recv_message(sock: socket.socket) -> Any:
    """The next whole message. MSG_WAITALL lets the kernel gather a 100 KB answer in one call: read piecewise (as
    multiprocessing.connection does) it took ~3 times as long, one wake-up per piece."""
    (size,) = FRAME.unpack(recv_exactly(sock, FRAME.size))
    return pickle.loads(recv_exactly(sock, size))


def recv_exactly(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view, received = memoryview(buffer), 0
    while received < size:
        count = sock.recv_into(view[received:], size - received, socket.MSG_WAITALL)
        if count == 0:
            raise EOFError("the other end closed the socket")
        received += count
    return buffer


def serve(sock: socket.socket) -> None:
    """Answer requests until the web process closes its end (or dies): then exit."""
    host = Host()
    send_message(sock, ("ready", None))
    while True:
        try:
            request_id, verb, circuit_id, args = recv_message(sock)
        except (EOFError, OSError):
            return
        try:
            answer: tuple = (request_id, "ok", host.handle(verb, circuit_id, args))
        except Exception as error:  # the web process re-raises it: SimulationError keeps its field
            answer = (request_id, "err", error)
        try:
            send_message(sock, answer)
        except (pickle.PicklingError, TypeError, AttributeError):
            send_message(sock, (request_id, "err", RuntimeError(f"engine host: unpicklable answer to {verb}")))
        except OSError:
            return


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
