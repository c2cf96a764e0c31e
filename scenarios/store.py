"""Scenarios, journals and idempotency keys in SQLite (the standard library's sqlite3).

With `--state FILE` the database is that file, in WAL mode with synchronous=FULL: a change's journal row (and
its idempotency record) is committed, on disk, before its 200 is sent, in one transaction, so a crash leaves
either the whole change or none of it. Without `--state` the same code runs on an in-memory database.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import orjson

APPLICATION_ID = 0x49313233  # "I123": PRAGMA application_id marks a file as ours
SCHEMA_VERSION = 1
IDEMPOTENCY_KEEP_COUNT = 10_000  # per scenario: at least this many keys ...
IDEMPOTENCY_KEEP_SECONDS = 24 * 3600  # ... and every key for at least this long

#: SQLite's primary result codes for a write the disk could not take (full, or an I/O failure).
_STORAGE_FAILURES = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR}
log = logging.getLogger("scenarios.store")

SCHEMA = """
CREATE TABLE scenarios (
    id TEXT PRIMARY KEY,
    name TEXT,
    created_at TEXT NOT NULL,
    forked_from TEXT,
    base_ops TEXT NOT NULL DEFAULT '[]',
    base_sequence INTEGER NOT NULL DEFAULT 0,
    feeder TEXT,
    feeder_sha256 TEXT
);
CREATE TABLE changes (
    scenario_id TEXT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    PRIMARY KEY (scenario_id, sequence)
);
CREATE TABLE idempotency (
    scenario_id TEXT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    etag TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scenario_id, key)
);
CREATE INDEX idempotency_age ON idempotency (scenario_id, created_at);
"""


class StorageFullError(Exception):
    """A write the state file's disk could not take (HTTP 507): the transaction was rolled back, nothing applied."""


class StateFileError(Exception):
    """The --state file is not ours or is damaged: the server refuses to start rather than reset it."""


@dataclass(frozen=True)
class JournalEntry:
    sequence: int
    at: str
    action: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "at": self.at, "action": self.action}


@dataclass(frozen=True)
class StoredScenario:
    id: str
    name: Optional[str]
    created_at: str
    forked_from: Optional[str]
    journal: list[JournalEntry]
    base_ops: list[dict[str, Any]] = field(default_factory=list)  # where the journal starts (a folded journal)
    base_sequence: int = 0
    feeder: Optional[str] = None  # the feeder it was made on (None: a file from before feeders were named)
    feeder_sha256: Optional[str] = None  # that feeder's deck hash when the scenario was made


@dataclass(frozen=True)
class IdempotencyRecord:
    """The answer a change gave, kept so a retry with the same key gets it again instead of a second change."""

    fingerprint: str
    status: int
    etag: str
    body: bytes


class ScenarioStore:
    """One SQLite connection shared by the server's threads, one transaction per write."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self.durable = path is not None
        self.writable = True  # False from a write the disk refused until a write succeeds again
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._open()
        except sqlite3.DatabaseError as error:
            raise StateFileError(f"--state {self.path}: not a usable state file ({error}); it was left as it "
                                 f"is. Use another file name to start afresh.") from error

    def _open(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        if tables and application_id != APPLICATION_ID:
            raise StateFileError(f"--state {self.path}: this SQLite file was not written by this server (it has "
                                 f"tables {', '.join(sorted(tables))}); it was left as it is. Use another file.")
        if self.durable:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")  # in WAL mode: every commit is on disk before it returns
        db.execute("PRAGMA foreign_keys = ON")
        if not tables:
            with self._transaction():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise StateFileError(f"--state {self.path}: written by another version of this server (schema "
                                 f"{version}, this one reads {SCHEMA_VERSION}); it was left as it is.")
        columns = {row[1] for row in db.execute("PRAGMA table_info(scenarios)")}
        for column in ("feeder", "feeder_sha256"):  # files from before a server served several feeders
            if column not in columns:
                db.execute(f"ALTER TABLE scenarios ADD COLUMN {column} TEXT")
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StateFileError(f"--state {self.path}: the database is damaged ({'; '.join(problems[:3])}); "
                                 f"it was left as it is.")

    def _transaction(self) -> Any:
        return _Transaction(self._db)

    def claim_feeder(self, name: str, sha256: str, same_files: bool) -> None:
        """Bind the file to the feeder its scenarios are made on, or refuse a server on another feeder (its
        journals would not rebuild there): the file is left as it is until that feeder is served again. A file
        from before feeders were named holds scenarios of our IEEE 123-bus deck. `same_files`: also refuse the
        same feeder whose deck's files changed (a user's deck; ours changes only with this code)."""
        db = self._db
        with self._lock, self._transaction():
            db.execute("CREATE TABLE IF NOT EXISTS feeder (name TEXT NOT NULL, sha256 TEXT NOT NULL)")
            row = db.execute("SELECT name, sha256 FROM feeder").fetchone()
            if row is None:
                made_before = db.execute("SELECT count(*) FROM scenarios").fetchone()[0] > 0
                row = ("ieee123", "") if made_before else (name, sha256)
                db.execute("INSERT INTO feeder (name, sha256) VALUES (?, ?)", row)
        if row[0] != name or (same_files and row[1] != sha256):
            held = f"feeder {row[0]}" + (f" (deck sha256 {row[1]})" if row[1] else "")
            raise StateFileError(f"--state {self.path}: its scenarios were made on {held}; this server serves "
                                 f"feeder {name} (deck sha256 {sha256}). They are kept as they are: serve that "
                                 f"feeder again (--feeder), or use another state file.")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction under the lock. A disk that refuses it becomes a StorageFullError naming the
        file, logged once per episode (not per request); the first write that succeeds again ends the episode."""
        with self._lock:
            try:
                with self._transaction():
                    yield
            except sqlite3.OperationalError as error:
                if getattr(error, "sqlite_errorcode", 0) & 0xFF not in _STORAGE_FAILURES:
                    raise
                if self.writable:
                    log.error("the state file %s cannot be written (%s): changes are refused with 507 until "
                              "it can", self.path, error)
                self.writable = False
                raise StorageFullError(f"the state file {self.path} could not be written ({error}); nothing was "
                                       f"applied. Free space on its disk and retry") from error
            if not self.writable:
                log.warning("the state file %s is written again", self.path)
            self.writable = True

    # ------------------------------------------------------------------ reads
    def load(self) -> list[StoredScenario]:
        """Every scenario with its journal, in creation order."""
        with self._lock:
            rows = self._db.execute("SELECT id, name, created_at, forked_from, base_ops, base_sequence, feeder, "
                                    "feeder_sha256 FROM scenarios ORDER BY rowid").fetchall()
            journals: dict[str, list[JournalEntry]] = {row[0]: [] for row in rows}
            for scenario_id, sequence, at, action in self._db.execute(
                    "SELECT scenario_id, sequence, at, action FROM changes ORDER BY scenario_id, sequence"):
                try:
                    journals[scenario_id].append(JournalEntry(sequence, at, orjson.loads(action)))
                except (orjson.JSONDecodeError, KeyError) as error:
                    raise StateFileError(f"--state {self.path}: change {sequence} of scenario {scenario_id} is "
                                         f"damaged ({error}); the file was left as it is.") from error
        return [StoredScenario(row[0], row[1], row[2], row[3], journals[row[0]], orjson.loads(row[4]), row[5],
                               row[6], row[7]) for row in rows]

    def idempotency_record(self, scenario_id: str, key: str) -> IdempotencyRecord | None:
        with self._lock:
            row = self._db.execute("SELECT fingerprint, status, etag, body FROM idempotency "
                                   "WHERE scenario_id = ? AND key = ?", (scenario_id, key)).fetchone()
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], zlib.decompress(row[3]))

    # ------------------------------------------------------------------ writes
    def add_scenario(self, scenario: StoredScenario) -> None:
        """A new scenario and the journal it starts with (a fork's or an import's changes), in one commit."""
        with self._writing():
            self._db.execute("INSERT INTO scenarios (id, name, created_at, forked_from, base_ops, base_sequence, "
                             "feeder, feeder_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (scenario.id, scenario.name, scenario.created_at, scenario.forked_from,
                              orjson.dumps(scenario.base_ops).decode(), scenario.base_sequence, scenario.feeder,
                              scenario.feeder_sha256))
            self._db.executemany("INSERT INTO changes (scenario_id, sequence, at, action) VALUES (?, ?, ?, ?)",
                                 [(scenario.id, e.sequence, e.at, orjson.dumps(e.action).decode())
                                  for e in scenario.journal])

    def delete_scenario(self, scenario_id: str) -> None:
        with self._writing():
            self._db.execute("DELETE FROM scenarios WHERE id = ?", (scenario_id,))

    def fold(self, scenario_id: str, base_ops: list[dict[str, Any]], base_sequence: int) -> None:
        """A full journal folded into the scenario's starting point: the ops of its current state."""
        with self._writing():
            self._db.execute("UPDATE scenarios SET base_ops = ?, base_sequence = ? WHERE id = ?",
                             (orjson.dumps(base_ops).decode(), base_sequence, scenario_id))
            self._db.execute("DELETE FROM changes WHERE scenario_id = ?", (scenario_id,))

    def append_change(self, scenario_id: str, entry: JournalEntry, key: str | None = None,
                      record: IdempotencyRecord | None = None) -> None:
        """One applied change, with the answer kept under its idempotency key, committed together."""
        with self._writing():
            self._db.execute("INSERT INTO changes (scenario_id, sequence, at, action) VALUES (?, ?, ?, ?)",
                             (scenario_id, entry.sequence, entry.at, orjson.dumps(entry.action).decode()))
            if key is not None and record is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO idempotency (scenario_id, key, fingerprint, status, etag, body, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (scenario_id, key, record.fingerprint, record.status, record.etag,
                     zlib.compress(record.body, 1), time.time()))
                self._forget_old_keys(scenario_id)

    def _forget_old_keys(self, scenario_id: str) -> None:
        """Drop keys that are both older than a day and outside the newest IDEMPOTENCY_KEEP_COUNT."""
        self._db.execute(
            "DELETE FROM idempotency WHERE scenario_id = ? AND created_at < ? AND rowid NOT IN ("
            "SELECT rowid FROM idempotency WHERE scenario_id = ? ORDER BY created_at DESC LIMIT ?)",
            (scenario_id, time.time() - IDEMPOTENCY_KEEP_SECONDS, scenario_id, IDEMPOTENCY_KEEP_COUNT))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._roll_back()
                raise
        self._roll_back()

    def _roll_back(self) -> None:
        """SQLite may have rolled back already (a full disk ends the transaction): only roll back an open one."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
