"""Scenarios: isolated, journaled, durable grids (the registry), their history (the journal) and SQLite (the store)."""

from scenarios.journal import DOCUMENT_FORMAT, DOCUMENT_VERSION, export_document, feeder_sha256
from scenarios.registry import DEFAULT_ID, MAX_JOURNAL, ChangeOutcome, Scenario, ScenarioError, ScenarioRegistry
from scenarios.store import ScenarioStore, StateFileError, StorageFullError

__all__ = ["DEFAULT_ID", "DOCUMENT_FORMAT", "DOCUMENT_VERSION", "MAX_JOURNAL", "ChangeOutcome", "Scenario",
           "ScenarioError", "ScenarioRegistry", "ScenarioStore", "StateFileError", "StorageFullError", "export_document",
           "feeder_sha256"]
