"""The results of one solved state: the immutable Snapshot every reader gets, and the JSON templates of its
two big tables.

The JSON of the per-node and per-line tables is cut into a template once per compile (JsonTable) and filled with
each state's numbers in one orjson call, so a request does no per-element work in Python.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

#: Stands for a number while a table's JSON template is built (no name in the circuit can contain it).
NUMBER_SLOT = "\u0000number\u0000"

#: One heavy job at a time in this process: a change in an engine (its calls, solve and batch reads) or the JSON of
#: a state's tables. Python runs one thread at a time anyway; threads doing such work for different scenarios at
#: once took the GIL from each other at every one of the ~100 engine calls of a change and evicted each other's
#: caches, so 4 of them managed half the changes per second of one. Taking turns, they keep 85-90 %. Held for one
#: change, one compile or one table's JSON, never across a rebuild's ops: a long rebuild lets others in between.
WORK_TURN = threading.RLock()


class built_in_turn:  # noqa: N801 - used like functools.cached_property
    """Like functools.cached_property, but built in WORK_TURN. (Python 3.11's cached_property also holds one lock
    for every instance of the class while it builds: with WORK_TURN inside it, threads queued twice.)"""

    def __init__(self, build: Any) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        with WORK_TURN:
            if self.name not in instance.__dict__:  # another thread may have built it while this one waited
                instance.__dict__[self.name] = self.build(instance)
        return instance.__dict__[self.name]


class JsonTable:
    """The JSON text of a table whose names and keys are fixed for one compile and whose numbers change
    with every solve. The fixed text is cut once, around slots where the numbers go; each state's numbers
    are then serialised by orjson in one call and dropped into the slots by slicing and joining, so no
    Python code runs per row on the request path."""

    def __init__(self, rows_with_slots: list[dict[str, Any]]) -> None:
        pieces = orjson.dumps(rows_with_slots).split(orjson.dumps(NUMBER_SLOT))
        self.size = len(pieces) - 1
        self._parts: list[bytes] = [b""] * (2 * len(pieces) - 1)
        self._parts[0::2] = pieces

    def render(self, numbers: np.ndarray) -> bytes:
        """The table's JSON with these numbers in row order (NaN and infinities become null, as orjson does)."""
        if numbers.shape != (self.size,):
            raise ValueError(f"expected {self.size} numbers, got {numbers.shape}")
        if self.size == 0:
            return self._parts[0]
        parts = self._parts.copy()  # the template is shared between threads: fill a copy
        parts[1::2] = orjson.dumps(np.ascontiguousarray(numbers, dtype=np.float64),
                                   option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
        return b"".join(parts)


def bus_detail_rows(node_bus: list[str], node_number: list[int], vmag: list, vangle: list, load_kw: list,
                    load_kvar: list, gen_kw: list, gen_kvar: list) -> list[dict[str, Any]]:
    """One row per bus node (the `bus_details` section)."""
    return [{"Bus": bus, "Node": node, "VMag_pu": v, "VAngle": angle, "Load_kW": lp, "Load_kVAR": lq,
             "Gen_kW": gp, "Gen_kVAR": gq}
            for bus, node, v, angle, lp, lq, gp, gq in zip(node_bus, node_number, vmag, vangle, load_kw,
                                                           load_kvar, gen_kw, gen_kvar)]


def line_flow_rows(names: list[str], bus1: list[str], bus2: list[str], phases: list[int], p_kw: list,
                   q_kvar: list, currents: list[list], norm_amps: list[float], emerg_amps: list[float],
                   rating_source: list[str], loading: list, losses: list, switch: list[bool]) -> list[dict[str, Any]]:
    """One row per line or switch (the `line_flows` section); `currents` holds each line's per-phase list, and
    `Loading_pct` is the highest of them against `NormAmps` (the deck's ratings, fixed for a compile, or OpenDSS's
    default where the deck gave none: `rating_source`, see engine.ratings)."""
    return [{"Line": name, "Bus1": b1, "Bus2": b2, "Phases": n, "P_kW": p, "Q_kVAR": q, "I_A": i,
             "NormAmps": normal, "EmergAmps": emergency, "rating_source": source, "Loading_pct": pct,
             "Losses_kW": loss, "Switch": sw}
            for name, b1, b2, n, p, q, i, normal, emergency, source, pct, loss, sw in zip(
                names, bus1, bus2, phases, p_kw, q_kvar, currents, norm_amps, emerg_amps, rating_source, loading,
                losses, switch)]


@dataclass(frozen=True)
class RowLayout:
    """What the result rows need besides the numbers: names and slices, fixed for one compile."""

    node_bus: list[str]
    node_number: list[int]
    line_names: list[str]
    line_bus1: list[str]
    line_bus2: list[str]
    line_phases: list[int]
    line_current_starts: list[int]
    line_current_ends: list[int]
    line_switch: list[bool]
    line_norm_amps: list[float]
    line_emerg_amps: list[float]
    line_rating_source: list[str]  # "deck" or "default" (engine.ratings)
    node_is_phase: list[bool]  # judged against the voltage limits: phase nodes, not neutrals (engine.index)

    @functools.cached_property
    def phase_node_mask(self) -> np.ndarray:
        """`node_is_phase` as a boolean array, for judging a reading's node voltages."""
        return np.array(self.node_is_phase, dtype=bool)

    @functools.cached_property
    def bus_details_table(self) -> JsonTable:
        """Numbers per row: VMag_pu, VAngle, Load_kW, Load_kVAR, Gen_kW, Gen_kVAR."""
        slots = [NUMBER_SLOT] * len(self.node_bus)
        return JsonTable(bus_detail_rows(self.node_bus, self.node_number, *[slots] * 6))

    @functools.cached_property
    def line_flows_table(self) -> JsonTable:
        slots = [NUMBER_SLOT] * len(self.line_names)
        return JsonTable(line_flow_rows(self.line_names, self.line_bus1, self.line_bus2, self.line_phases, slots,
                                        slots, [[NUMBER_SLOT] * n for n in self.line_phases],
                                        self.line_norm_amps, self.line_emerg_amps, self.line_rating_source, slots,
                                        slots, self.line_switch))

    @functools.cached_property
    def line_number_order(self) -> np.ndarray:
        """Where each number of the line table comes from in concatenate([P, Q, currents, loading, losses])."""
        n, m = len(self.line_names), self.line_current_ends[-1] if self.line_names else 0
        order: list[int] = []
        for j, (start, end) in enumerate(zip(self.line_current_starts, self.line_current_ends)):
            order += [j, n + j, *range(2 * n + start, 2 * n + end), 2 * n + m + j, 3 * n + m + j]
        return np.array(order, dtype=np.intp)


SECTION_ORDER = ("power_summary", "voltage_profile", "bus_details", "line_flows", "losses", "violations")


class Snapshot:
    """One complete, converged state. Readers get a whole snapshot, never half a change.

    Rows and JSON text are built on first use, outside the engine lock, and kept: a snapshot never changes
    once made.
    """

    def __init__(self, sequence: int, layout: RowLayout, arrays: dict[str, np.ndarray],
                 sections: dict[str, Any]) -> None:
        self.sequence = sequence
        self.layout = layout
        self.arrays = arrays
        self._sections = sections

    def with_sequence(self, sequence: int) -> "Snapshot":
        """The same state under another sequence number (a rebuilt or previewed state)."""
        return Snapshot(sequence, self.layout, self.arrays, self._sections)

    @property
    def small_sections(self) -> dict[str, Any]:
        """The sections kept as values (every one but the row tables, which are built from the arrays)."""
        return self._sections

    def section(self, name: str) -> Any:
        if name == "bus_details":
            return self.bus_details
        if name == "line_flows":
            return self.line_flows
        return self._sections[name]

    @functools.cached_property
    def bus_details(self) -> list[dict[str, Any]]:
        a, layout = self.arrays, self.layout
        return bus_detail_rows(layout.node_bus, layout.node_number, *(a[key].tolist() for key in (
            "vmag_pu", "vangle_deg", "load_kw", "load_kvar", "gen_kw", "gen_kvar")))

    @functools.cached_property
    def line_flows(self) -> list[dict[str, Any]]:
        a, layout = self.arrays, self.layout
        currents = a["line_currents_a"].tolist()
        return line_flow_rows(layout.line_names, layout.line_bus1, layout.line_bus2, layout.line_phases,
                              a["line_p_kw"].tolist(), a["line_q_kvar"].tolist(),
                              [currents[s:e] for s, e in zip(layout.line_current_starts, layout.line_current_ends)],
                              layout.line_norm_amps, layout.line_emerg_amps, layout.line_rating_source,
                              a["line_loading_pct"].tolist(), a["line_losses_kw"].tolist(), layout.line_switch)

    @built_in_turn
    def bus_details_json(self) -> bytes:
        a = self.arrays
        numbers = np.column_stack([a["vmag_pu"], a["vangle_deg"], a["load_kw"], a["load_kvar"], a["gen_kw"],
                                   a["gen_kvar"]]).ravel()
        return self.layout.bus_details_table.render(numbers)

    @built_in_turn
    def line_flows_json(self) -> bytes:
        a = self.arrays
        numbers = np.concatenate([a["line_p_kw"], a["line_q_kvar"], a["line_currents_a"], a["line_loading_pct"],
                                  a["line_losses_kw"]])[self.layout.line_number_order]
        return self.layout.line_flows_table.render(numbers)

    def section_json(self, name: str) -> bytes:
        if name == "bus_details":
            return self.bus_details_json
        if name == "line_flows":
            return self.line_flows_json
        return orjson.dumps(self._sections[name])

    def sections_json(self, names: tuple[str, ...] | list[str]) -> bytes:
        """A results object with these sections, in this order, as JSON (in one turn: see WORK_TURN)."""
        with WORK_TURN:
            return orjson.dumps({name: orjson.Fragment(self.section_json(name)) for name in names})

    @functools.cached_property
    def results(self) -> dict[str, Any]:
        """The whole results document."""
        return {name: self.section(name) for name in SECTION_ORDER}

    @built_in_turn
    def results_json(self) -> bytes:
        """The whole results document as JSON, serialised once per snapshot."""
        return self.sections_json(SECTION_ORDER)

    @built_in_turn
    def state_json(self) -> bytes:
        """The whole answer of GET /state for this state, built once: repeated reads send the same bytes."""
        return orjson.dumps({"status": "success", "sequence": self.sequence,
                             "results": orjson.Fragment(self.results_json)})


class Change(dict):
    """What a change did (a plain dict, serialised as the response's `action`), carrying the snapshot it
    produced, so a caller answers with exactly that state even when other changes follow at once."""

    def __init__(self, action: dict[str, Any], snapshot: Snapshot) -> None:
        super().__init__(action)
        self.snapshot = snapshot


def diff_snapshots(this: Snapshot, other: Snapshot) -> dict[str, Any]:
    """How `this` state differs from `other`: each power_summary number, every node's voltage (largest change
    first), every line's flow and loading (largest flow change first), and the violations new or cleared."""
    ours, theirs = this.section("power_summary"), other.section("power_summary")
    summary = {key: {"this": ours[key], "other": theirs[key], "delta": ours[key] - theirs[key]}
               for key, value in ours.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    a, b, layout = this.arrays, other.arrays, this.layout
    dv = a["vmag_pu"] - b["vmag_pu"]
    buses = [{"Bus": layout.node_bus[i], "Node": layout.node_number[i], "VMag_pu": float(a["vmag_pu"][i]),
              "other_VMag_pu": float(b["vmag_pu"][i]), "delta_pu": float(dv[i])}
             for i in np.argsort(-np.abs(dv), kind="stable")]
    dp = a["line_p_kw"] - b["line_p_kw"]
    lines = [{"Line": layout.line_names[i], "P_kW": float(a["line_p_kw"][i]), "other_P_kW": float(b["line_p_kw"][i]),
              "delta_kW": float(dp[i]), "Loading_pct": float(a["line_loading_pct"][i]),
              "other_Loading_pct": float(b["line_loading_pct"][i])}
             for i in np.argsort(-np.abs(dp), kind="stable")]
    return {"summary": summary, "buses": buses, "lines": lines,
            "violations": _violation_changes(this.section("violations"), other.section("violations"))}


def _violation_changes(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Violations in `ours` but not `theirs` (new) and the reverse (cleared), matched by element and node."""
    def keyed(violations: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
        found = {("voltage", v["element"], v["node"], v["kind"]): v for v in violations["voltage"]}
        found.update({("thermal", v["element"]): v for v in violations["thermal"]})
        if violations["reverse_power"]:
            found[("reverse_power",)] = violations["reverse_power"]
        return found

    mine, other = keyed(ours), keyed(theirs)
    return {"new": [{"type": key[0], **v} for key, v in mine.items() if key not in other],
            "cleared": [{"type": key[0], **v} for key, v in other.items() if key not in mine]}
