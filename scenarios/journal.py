"""What a scenario's history is: journal entries, the ops they stand for, and the state they add up to.

A scenario's state is never stored as numbers: it is the list of ops its journal adds up to (`effective_ops`),
and rebuilding a scenario means compiling the feeder and applying those ops again. Undo and reset are journal
entries too, so the history only grows and a sequence number never comes back.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from engine.feeder import Feeder
from engine.ieee123 import MODEL_DIR

DOCUMENT_FORMAT = "ieee123-scenario"
DOCUMENT_VERSION = 1

Op = dict[str, Any]
Action = dict[str, Any]


def utc_now() -> str:
    """UTC ISO 8601 with milliseconds, e.g. 2026-11-25T16:32:02.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.cache
def feeder_sha256(feeder: Feeder | None = None) -> str:
    """The hash a scenario document names its feeder by; a server whose feeder differs refuses the document. For
    our deck (`feeder` None), one hash of its folder's model files (deck, coordinates, neighbourhoods; not the
    time-series shapes), as documents have always carried; for a user's feeder, its deck's hash."""
    if feeder is not None:
        return feeder.sha256
    digest = hashlib.sha256()
    for path in sorted(p for p in MODEL_DIR.glob("*") if p.is_file()):
        digest.update(path.relative_to(MODEL_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")  # a Windows checkout hashes the same
    return digest.hexdigest()


def op_from_action(action: Action) -> Op:
    """The op that, applied again, repeats this change (the change routes' body plus the op's name)."""
    kind = action["type"]
    if kind == "add_generator":
        op: Op = {"op": kind, "bus_name": action["bus"], "phases": action["phases"], "kw": action["kw"]}
        if action["phases"] == 1:
            op["phase"] = action["nodes"][0]
        if action.get("inverter") is not None:
            op["inverter"] = action["inverter"]
        return op
    if kind == "modify_load_neighbourhood":
        return {"op": kind, "neighbourhood": action["neighbourhood"], "factor": action["factor"]}
    if kind == "remove_generator":
        return {"op": kind, "name": action["name"]}
    if kind == "reset":
        return {"op": kind}
    raise ValueError(f"no op for a {kind!r} action")


@dataclass(frozen=True)
class _OpNode:
    """One op on top of the ops before it: states share their past, so a long journal costs O(n)."""

    op: Op
    before: Optional["_OpNode"]


@dataclass(frozen=True)
class JournalState:
    """Where a journal has got to: the ops of the current state and the states undo can go back to."""

    history: tuple[tuple[int, Optional[_OpNode]], ...]  # (sequence of the change that made it, its ops)

    @property
    def ops(self) -> list[Op]:
        return _ops_of(self.history[-1][1])

    @property
    def undoable_sequence(self) -> int | None:
        """The change an undo would take back, or None when the journal is back at its start."""
        return self.history[-1][0] if len(self.history) > 1 else None

    def ops_before_last_change(self) -> list[Op]:
        return _ops_of(self.history[-2][1])


def replay_journal(actions: Iterable[Action], base_ops: Iterable[Op] = (), base_sequence: int = 0) -> JournalState:
    """Walk the journal from its starting point (the base case, or the ops a full journal was folded into): a
    change adds its op, a reset starts from the base case, an undo steps back to the state before the last change
    not yet undone (so repeated undos walk back through the history, never past the starting point)."""
    start: Optional[_OpNode] = None
    for op in base_ops:
        start = _OpNode(op, start)
    history: list[tuple[int, Optional[_OpNode]]] = [(base_sequence, start)]
    for action in actions:
        if action["type"] == "undo":
            history.pop()
        elif action["type"] == "reset":
            history.append((action["sequence"], None))
        else:
            history.append((action["sequence"], _OpNode(op_from_action(action), history[-1][1])))
    return JournalState(tuple(history))


def _ops_of(node: Optional[_OpNode]) -> list[Op]:
    ops = []
    while node is not None:
        ops.append(node.op)
        node = node.before
    return ops[::-1]


def export_document(name: str | None, ops: list[Op], feeder: str, sha256: str) -> dict[str, Any]:
    """A scenario as plain JSON a person can read and edit: the ops its state adds up to, in order, and the feeder
    (name and deck hash) they apply to."""
    return {"format": DOCUMENT_FORMAT, "version": DOCUMENT_VERSION, "feeder": {"name": feeder, "sha256": sha256},
            "name": name, "changes": ops}
