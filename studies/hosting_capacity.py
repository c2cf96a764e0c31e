"""Hosting capacity: how much generation one bus takes before something breaks, and what breaks first.

For each bus a generator is connected as `add_generator` connects it and previewed (a dry run: the regulators
act, then the circuit goes back to the scenario's state) at multiples of `step_kw`, found by doubling and then
bisection on one warm engine. The trial at `hosting_capacity_kW` passes and the one a step above violates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from results import RowLayout, Snapshot
from simulation_core import NotConvergedError, OpenDSSCircuit

KIND_ORDER = ("voltage_high", "voltage_low", "thermal", "reverse_power")


@dataclass(frozen=True)
class Criteria:
    step_kw: float = 10.0
    max_kw: float = 10_000.0
    voltage_high_pu: float = 1.05
    voltage_low_pu: float = 0.95
    thermal_pct: float = 100.0
    reverse_power: bool = False
    thermal_margin_pct: float = 1.0  # a line must rise this far above its own loading to count (solver noise)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def reading_of(snapshot: Snapshot) -> dict[str, Any]:
    """The scenario's own state in the shape of a trial's lean reading."""
    return {**snapshot.arrays, "source_kw": snapshot.section("power_summary")["total_circuit_power_kW"]}


def first_violation(a: dict[str, Any], b: dict[str, Any], layout: RowLayout, criteria: Criteria,
                    transformer_names: list[str]) -> dict[str, Any] | None:
    """The violation that bounds a trial (reading `a`, against the scenario's own state `b`): the first kind of
    voltage_high, voltage_low, thermal, reverse_power that fails, at its worst element; None when it passes."""
    v = a["vmag_pu"]

    def node(i: int) -> str:
        return f"{layout.node_bus[i]}.{layout.node_number[i]}"

    high = np.flatnonzero(v > criteria.voltage_high_pu)
    if high.size:
        i = high[np.argmax(v[high])]
        return {"kind": "voltage_high", "element": node(i), "value": float(v[i]), "limit": criteria.voltage_high_pu}
    low = np.flatnonzero((v < criteria.voltage_low_pu) & (v < b["vmag_pu"]))
    if low.size:
        i = low[np.argmin(v[low])]
        return {"kind": "voltage_low", "element": node(i), "value": float(v[i]), "limit": criteria.voltage_low_pu}
    loading = np.concatenate([a["line_loading_pct"], a["transformer_loading_pct"]])
    own_loading = np.concatenate([b["line_loading_pct"], b["transformer_loading_pct"]])
    hot = np.flatnonzero((loading > criteria.thermal_pct) & (loading > own_loading + criteria.thermal_margin_pct))
    if hot.size:
        i = hot[np.argmax(loading[hot])]
        lines = len(layout.line_names)
        element = f"Line.{layout.line_names[i]}" if i < lines else f"Transformer.{transformer_names[i - lines]}"
        return {"kind": "thermal", "element": element, "value": float(loading[i]), "limit": criteria.thermal_pct}
    source_kw = a["source_kw"]
    if criteria.reverse_power and source_kw < 0:
        return {"kind": "reverse_power", "element": "Vsource.source", "value": float(source_kw), "limit": 0.0}
    return None


def hosting_capacity_of_bus(circuit: OpenDSSCircuit, bus: str, phases: int, criteria: Criteria) -> dict[str, Any]:
    """One bus's row: doubling from one step until a trial violates (or max_kw passes), then bisection."""
    own, layout = reading_of(circuit.snapshot), circuit.snapshot.layout
    transformer_names = circuit.transformer_names
    steps_max = max(1, math.floor(criteria.max_kw / criteria.step_kw + 1e-9))
    trials = 0
    nodes: list[int] = []

    def violation_at(steps: int) -> dict[str, Any] | None:
        nonlocal trials, nodes
        trials += 1
        kw = steps * criteria.step_kw
        try:
            nodes, reading = circuit.preview_generator_limits(bus, phases, kw, prefix="hc")
        except NotConvergedError:
            return {"kind": "not_converged", "element": None, "value": kw, "limit": None}
        return first_violation(reading, own, layout, criteria, transformer_names)

    passing, failing, bound = 0, None, None
    steps = 1
    while failing is None:
        steps = min(steps, steps_max)
        found = violation_at(steps)
        if found:
            failing, bound = steps, found
        else:
            passing = steps
            if steps == steps_max:
                break
            steps *= 2
    while failing is not None and failing - passing > 1:
        middle = (passing + failing) // 2
        found = violation_at(middle)
        if found:
            failing, bound = middle, found
        else:
            passing = middle
    capacity = passing * criteria.step_kw
    if failing is None:
        bound = {"kind": "max_kw", "element": None, "value": capacity, "limit": criteria.max_kw}
    return {"bus": bus, "phases": phases, "nodes": nodes, "hosting_capacity_kW": capacity, "limited_by": bound,
            "trials": trials, "reason": None}


def run(circuit: OpenDSSCircuit, work: dict[str, Any]) -> dict[str, Any]:
    """A task: the rows of a group of buses."""
    criteria = Criteria(**work["criteria"])
    return {"rows": [hosting_capacity_of_bus(circuit, bus, phases, criteria) for bus, phases in work["buses"]]}


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: limited_by spread into columns, nodes space-separated."""
    bound = row["limited_by"] or {}
    return {"bus": row["bus"], "phases": row["phases"], "nodes": " ".join(map(str, row["nodes"])),
            "hosting_capacity_kW": row["hosting_capacity_kW"], "limited_by_kind": bound.get("kind"),
            "limited_by_element": bound.get("element"), "limited_by_value": bound.get("value"),
            "limited_by_limit": bound.get("limit"), "trials": row["trials"], "reason": row["reason"]}
