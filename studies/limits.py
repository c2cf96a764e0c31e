"""The limits a trial is judged by, and the rule for overloads the trial did not cause.

Any study that adds generation and asks what breaks first judges a trial's lean reading
(`engine.index.read_limits`) against the state the trial started from (the scenario's, or one hour's):
- `voltage_high`: a phase node above `voltage_high_pu`. A node already above it in the starting state is
  **pre-existing** (a deck's own regulator set high: IEEE 13's rg60 sits at 1.056 pu before any generator): with
  `preexisting="exclude"` it is never a limit, with `"worsened"` it counts once it is more than `worsened_by_pct`
  % of nominal (0.01 pu per point) above its own starting voltage; every other node counts as soon as it is above;
- `voltage_low`: a phase node below `voltage_low_pu` and lower than in the starting state (phase nodes: the
  layout's `phase_node_mask`; a neutral's near-zero volts are never judged). A study that adds load marks the
  nodes already below it as pre-existing (`starting_state(..., low=True)`), by the same rule as high ones: any new
  load lowers them further, so otherwise one low node would bind every bus at nothing;
- `thermal`: a line or transformer above `thermal_pct` of its normal rating (a line's bound says its
  `rating_source`: `deck`, or `default` where the deck gave no rating and OpenDSS's 400 A stands in, so the
  answer rests on a guess; `engine.ratings`). An element already above it in the
  starting state is **pre-existing**: with `preexisting="exclude"` it is never a limit (the trial did not
  cause it; a planner lists it apart); with `"worsened"` (the rule before the deck had conductor ratings) any
  element counts only once it is more than `worsened_by_pct` points above its own starting loading;
- `reverse_power` (when asked): the substation exports.
The first kind that fails bounds the trial, at its worst element.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from engine.results import RowLayout
from engine.settings import ANSI_RANGE_A_PU

KIND_ORDER = ("voltage_high", "voltage_low", "thermal", "reverse_power")
PREEXISTING_RULES = ("exclude", "worsened")


@dataclass(frozen=True)
class Limits:
    voltage_high_pu: float = ANSI_RANGE_A_PU[1]
    voltage_low_pu: float = ANSI_RANGE_A_PU[0]
    thermal_pct: float = 100.0
    reverse_power: bool = False
    preexisting: str = "exclude"
    worsened_by_pct: float = 1.0  # "worsened": the rise above its own loading that counts (beyond solver noise)

    def __post_init__(self) -> None:
        if self.preexisting not in PREEXISTING_RULES:
            raise ValueError(f"preexisting: expected one of {', '.join(PREEXISTING_RULES)}, got {self.preexisting!r}")

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StartingState:
    """What a trial is judged against: the starting state's voltages, loadings (lines, then transformers, named
    in `elements`), substation power, and which elements are pre-existing overloads."""

    vmag_pu: np.ndarray
    loading_pct: np.ndarray
    source_kw: float
    elements: list[str]
    preexisting: np.ndarray  # bool, one per element
    preexisting_high: np.ndarray | None = None  # bool, one per node: a phase node above voltage_high_pu
    high_nodes: tuple[str, ...] = ()  # those nodes' names (`bus.node`), in the feeder's node order
    preexisting_low: np.ndarray | None = None  # bool, one per node: a phase node below voltage_low_pu (load studies)
    low_nodes: tuple[str, ...] = ()


def element_names(layout: RowLayout, transformer_names: list[str]) -> list[str]:
    """The thermal elements in the order of a reading's loadings, named as `limited_by` names them."""
    return [f"Line.{name}" for name in layout.line_names] + [f"Transformer.{name}" for name in transformer_names]


def starting_state(reading: dict[str, Any], elements: list[str], limits: Limits, layout: RowLayout | None = None,
                   low: bool = False) -> StartingState:
    """A lean reading of the state trials start from, with its pre-existing overloads marked, and (given the
    layout) its phase nodes already above voltage_high_pu (and with `low`, those already below voltage_low_pu)."""
    loading = np.concatenate([reading["line_loading_pct"], reading["transformer_loading_pct"]])
    vmag = np.asarray(reading["vmag_pu"])
    high, names = None, ()
    if layout is not None:
        high = (vmag > limits.voltage_high_pu) & layout.phase_node_mask
        names = tuple(f"{layout.node_bus[i]}.{layout.node_number[i]}" for i in np.flatnonzero(high))
    low_mask, low_names = None, ()
    if layout is not None and low:
        low_mask = (vmag < limits.voltage_low_pu) & layout.phase_node_mask
        low_names = tuple(f"{layout.node_bus[i]}.{layout.node_number[i]}" for i in np.flatnonzero(low_mask))
    return StartingState(vmag, loading, float(reading["source_kw"]), elements, loading > limits.thermal_pct, high,
                         names, low_mask, low_names)


def preexisting_entries(start: StartingState, limits: Limits, hour_of_year: int | None = None
                        ) -> list[dict[str, Any]]:
    """The starting state's pre-existing violations as a result lists them, in the feeder's order (nodes above
    voltage_high_pu, then lines, then transformers over thermal_pct): an order that solver noise cannot swap, so
    every executor gives the same list."""
    entries = []
    high = np.flatnonzero(start.preexisting_high) if start.preexisting_high is not None else []
    for name, i in zip(start.high_nodes, high):
        entry = {"element": name, "value": float(start.vmag_pu[i]), "limit": limits.voltage_high_pu}
        entries.append(entry if hour_of_year is None else {**entry, "hour_of_year": hour_of_year})
    low = np.flatnonzero(start.preexisting_low) if start.preexisting_low is not None else []
    for name, i in zip(start.low_nodes, low):
        entry = {"element": name, "value": float(start.vmag_pu[i]), "limit": limits.voltage_low_pu}
        entries.append(entry if hour_of_year is None else {**entry, "hour_of_year": hour_of_year})
    for i in np.flatnonzero(start.preexisting):
        entry = {"element": start.elements[i], "value": float(start.loading_pct[i]), "limit": limits.thermal_pct}
        if hour_of_year is not None:
            entry["hour_of_year"] = hour_of_year
        entries.append(entry)
    return entries


def first_violation(reading: dict[str, Any], start: StartingState, limits: Limits, layout: RowLayout
                    ) -> dict[str, Any] | None:
    """The violation that bounds a trial: the first kind of KIND_ORDER that fails, at its worst element (`kind`,
    `element`, `value`, `limit`); None when the trial passes."""
    v, phase = reading["vmag_pu"], layout.phase_node_mask  # neutrals read near zero: never an undervoltage

    def node(i: int) -> str:
        return f"{layout.node_bus[i]}.{layout.node_number[i]}"

    above = (v > limits.voltage_high_pu) & phase
    if start.preexisting_high is not None:  # a node above already: by the pre-existing rule
        counts = v > start.vmag_pu + limits.worsened_by_pct / 100.0 if limits.preexisting == "worsened" else False
        above &= ~start.preexisting_high | counts
    high = np.flatnonzero(above)
    if high.size:
        i = high[np.argmax(v[high])]
        return {"kind": "voltage_high", "element": node(i), "value": float(v[i]), "limit": limits.voltage_high_pu}
    below = (v < limits.voltage_low_pu) & (v < start.vmag_pu) & phase
    if start.preexisting_low is not None:  # a node below already (a load study): by the pre-existing rule
        counts = v < start.vmag_pu - limits.worsened_by_pct / 100.0 if limits.preexisting == "worsened" else False
        below &= ~start.preexisting_low | counts
    low = np.flatnonzero(below)
    if low.size:
        i = low[np.argmin(v[low])]
        return {"kind": "voltage_low", "element": node(i), "value": float(v[i]), "limit": limits.voltage_low_pu}
    loading = np.concatenate([reading["line_loading_pct"], reading["transformer_loading_pct"]])
    over = loading > limits.thermal_pct
    if limits.preexisting == "exclude":
        hot = np.flatnonzero(over & ~start.preexisting)
    else:
        hot = np.flatnonzero(over & (loading > start.loading_pct + limits.worsened_by_pct))
    if hot.size:
        i = hot[np.argmax(loading[hot])]
        bound = {"kind": "thermal", "element": start.elements[i], "value": float(loading[i]),
                 "limit": limits.thermal_pct}
        if i < len(layout.line_rating_source):  # a line: is its rating the deck's or OpenDSS's default?
            bound["rating_source"] = layout.line_rating_source[i]
        return bound
    if limits.reverse_power and reading["source_kw"] < 0:
        return {"kind": "reverse_power", "element": "Vsource.source", "value": float(reading["source_kw"]),
                "limit": 0.0}
    return None


def default_rated_limits(bounds: Iterable[tuple[Any, dict[str, Any] | None]], label: str) -> list[dict[str, Any]]:
    """The limits that bound on a line rated at OpenDSS's default (the deck gave it none), from (who, limited_by)
    pairs: each such line with whom it bounds under `label` (buses, samples), in the pairs' order, so a planner
    sees which answers rest on a guess."""
    found: dict[str, list[Any]] = {}
    for who, bound in bounds:
        if bound and bound.get("rating_source") == "default":
            found.setdefault(bound["element"], []).append(who)
    return [{"element": element, label: whom} for element, whom in found.items()]
