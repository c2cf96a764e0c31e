"""Batch what-ifs: many cases, each a list of changes applied to the scenario's state, each answered alone.

A case's changes are applied in order on a warm engine holding the scenario's state; its results are read;
then the engine goes back to that state (a checkpoint, or a rebuild after a case that reset the feeder). A
refused change fails its case only.
"""

from __future__ import annotations

from typing import Any

from engine.hours import CheckpointLost
from engine.errors import SimulationError
from engine.interface import StudyEngine


def run(circuit: StudyEngine, work: dict[str, Any]) -> dict[str, Any]:
    """A task: the rows of a group of cases."""
    kept = circuit.checkpoint()
    rows = []
    for case in work["cases"]:
        rows.append(run_case(circuit, case))
        try:
            circuit.restore(kept)
        except CheckpointLost:  # the case reset the feeder: rebuild the scenario's state
            circuit.rebuild(work["ops"], kept.sequence)
            kept = circuit.checkpoint()
    return {"rows": rows}


def run_case(circuit: StudyEngine, case: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"name": case["name"], "error": None}
    for position, op in enumerate(case["changes"]):
        try:
            circuit.apply(op)
        except SimulationError as error:
            field = f"changes[{position}].{error.field}" if error.field else f"changes[{position}]"
            row["error"] = {"message": f"changes[{position}]: {error}", "field": field}
            return row
    snapshot = circuit.snapshot
    summary = snapshot.section("power_summary")
    row.update({"power_summary": summary, "voltage_profile": snapshot.section("voltage_profile"),
                "voltage_violations": summary["voltage_violations"],
                "thermal_violations": summary["thermal_violations"], "reverse_power": summary["reverse_power"]})
    return row


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: the summary and voltage profile spread into columns, the error's message."""
    flat = {"name": row["name"], "error": row["error"]["message"] if row["error"] else None}
    for section in ("power_summary", "voltage_profile"):
        flat.update(row.get(section) or {})
    return flat
