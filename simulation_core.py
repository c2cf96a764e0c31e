"""OpenDSSCircuit: one IEEE 123-bus feeder in its own OpenDSS engine, changed and re-solved on request.

The engine is single-threaded and works through an "active element", so every public method takes the
circuit's lock once and does its whole job under it. Results are read with the engine's batch calls into
NumPy arrays and mapped to buses and lines with index arrays built once per compile (and again only when
a generator is created). The JSON of the per-node and per-line tables is cut into a template once per
compile and filled with each state's numbers in one serialisation, so a request does no per-element work
in Python.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import opendssdirect
import orjson

MODEL_DIR = Path(__file__).resolve().parent / "Test_Systems" / "IEEE_123_Bus-G"
DEFAULT_MASTER_FILE = MODEL_DIR / "Master.dss"
DEFAULT_NEIGHBOURHOOD_FILE = MODEL_DIR / "neighbourhoods.json"

#: Regulator taps published by the IEEE for the 123-node feeder (one step = 0.00625 pu).
PUBLISHED_REGULATOR_TAPS: dict[str, int] = {
    "reg1a": 7, "reg2a": -1, "reg3a": 0, "reg3c": -1, "reg4a": 8, "reg4b": 1, "reg4c": 5,
}
TAP_STEP_PU = 0.00625

MAX_GENERATOR_KW = 100_000.0
MAX_FACTOR = 10.0
MAX_CUMULATIVE_FACTOR = 100.0
SAFE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
#: Buses that exist in the model but cannot host a generator, with the reason given to the user.
NO_GENERATOR_BUSES = {
    "94_open": "94_open is the far side of the normally open switch Sw8 and is not energised",
    "300_open": "300_open is the far side of the normally open switch Sw7 and is not energised",
    "610": "610 is the ungrounded 480 V delta secondary of XFM1",
}


class SimulationError(Exception):
    """A change the grid cannot take (HTTP 422 at the API)."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(SimulationError):
    """A bus, neighbourhood or generator the circuit does not have (HTTP 404)."""


class NotConvergedError(SimulationError):
    """The power flow did not converge after a change; the change was rolled back."""


@dataclass
class Generator:
    """A generator added through the API; kept (disabled) after removal so its slot can be reused."""

    name: str
    bus: str
    phases: int
    nodes: list[int]
    kw: float
    enabled: bool = True

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "bus": self.bus, "phases": self.phases, "nodes": self.nodes,
                "kw": self.kw}


#: Stands for a number while a table's JSON template is built (no name in the circuit can contain it).
NUMBER_SLOT = "\u0000number\u0000"


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
                   q_kvar: list, currents: list[list], loading: list, losses: list, switch: list[bool]
                   ) -> list[dict[str, Any]]:
    """One row per line or switch (the `line_flows` section); `currents` holds each line's per-phase list."""
    return [{"Line": name, "Bus1": b1, "Bus2": b2, "Phases": n, "P_kW": p, "Q_kVAR": q, "I_A": i,
             "Loading_pct": pct, "Losses_kW": loss, "Switch": sw}
            for name, b1, b2, n, p, q, i, pct, loss, sw in zip(names, bus1, bus2, phases, p_kw, q_kvar, currents,
                                                               loading, losses, switch)]


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

    @functools.cached_property
    def bus_details_table(self) -> JsonTable:
        """Numbers per row: VMag_pu, VAngle, Load_kW, Load_kVAR, Gen_kW, Gen_kVAR."""
        slots = [NUMBER_SLOT] * len(self.node_bus)
        return JsonTable(bus_detail_rows(self.node_bus, self.node_number, *[slots] * 6))

    @functools.cached_property
    def line_flows_table(self) -> JsonTable:
        slots = [NUMBER_SLOT] * len(self.line_names)
        return JsonTable(line_flow_rows(self.line_names, self.line_bus1, self.line_bus2, self.line_phases, slots,
                                        slots, [[NUMBER_SLOT] * n for n in self.line_phases], slots, slots,
                                        self.line_switch))

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
                              a["line_loading_pct"].tolist(), a["line_losses_kw"].tolist(), layout.line_switch)

    @functools.cached_property
    def bus_details_json(self) -> bytes:
        a = self.arrays
        numbers = np.column_stack([a["vmag_pu"], a["vangle_deg"], a["load_kw"], a["load_kvar"], a["gen_kw"],
                                   a["gen_kvar"]]).ravel()
        return self.layout.bus_details_table.render(numbers)

    @functools.cached_property
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
        """A results object with these sections, in this order, as JSON."""
        return orjson.dumps({name: orjson.Fragment(self.section_json(name)) for name in names})

    @functools.cached_property
    def results(self) -> dict[str, Any]:
        """The whole results document."""
        return {name: self.section(name) for name in SECTION_ORDER}

    @functools.cached_property
    def results_json(self) -> bytes:
        """The whole results document as JSON, serialised once per snapshot."""
        return self.sections_json(SECTION_ORDER)


class Change(dict):
    """What a change did (a plain dict, serialised as the response's `action`), carrying the snapshot it
    produced, so a caller answers with exactly that state even when other changes follow at once."""

    def __init__(self, action: dict[str, Any], snapshot: Snapshot) -> None:
        super().__init__(action)
        self.snapshot = snapshot


def _conductor_node_index(engine: Any, element: str, node_index: Mapping[str, int]) -> list[int]:
    """Global node index of each conductor of an element (-1 for ground), in the engine's order."""
    engine.Circuit.SetActiveElement(element)
    buses = engine.CktElement.BusNames()
    conductors = engine.CktElement.NumConductors()
    order = engine.CktElement.NodeOrder()
    result = []
    for term, bus in enumerate(buses):
        bus_name = bus.split(".")[0].lower()
        for k in range(conductors):
            node = order[term * conductors + k]
            result.append(node_index.get(f"{bus_name}.{node}", -1) if node else -1)
    return result


class OpenDSSCircuit:
    """One feeder in one engine context. Thread-safe: each public method holds the lock throughout."""

    def __init__(
        self,
        master_file: Path | str = DEFAULT_MASTER_FILE,
        neighbourhood_file: Path | str | None = DEFAULT_NEIGHBOURHOOD_FILE,
        locked_taps: Mapping[str, int] | None = None,
        voltage_limits_pu: tuple[float, float] = (0.95, 1.05),
    ) -> None:
        self.master_file = Path(master_file).resolve()
        self.locked_taps = dict(locked_taps) if locked_taps else None
        self.voltage_limits_pu = voltage_limits_pu
        self._lock = threading.RLock()
        self._engine = opendssdirect.NewContext()
        self._engine.Basic.AllowChangeDir(False)
        self._batch = self._engine.to_altdss()
        neighbourhoods = {}
        if neighbourhood_file is not None:
            raw = json.loads(Path(neighbourhood_file).read_text(encoding="utf-8"))["neighbourhoods"]
            neighbourhoods = {int(k): [b.lower() for b in v] for k, v in raw.items()}
        self._neighbourhood_buses: dict[int, list[str]] = neighbourhoods
        self.sequence = 0
        with self._lock:
            self._compile()

    # ------------------------------------------------------------------ compile and index maps
    def _compile(self) -> None:
        """Compile the deck from scratch, build the index maps, solve the base case."""
        engine = self._engine
        engine.Text.Command("Clear")
        engine.Text.Command(f"Compile [{self.master_file}]")
        engine.Solution.Mode(0)  # snapshot
        if self.locked_taps:
            for transformer, tap in self.locked_taps.items():
                engine.Transformers.Name(transformer)
                engine.Transformers.Wdg(2)
                engine.Transformers.Tap(1.0 + TAP_STEP_PU * tap)
            for control in engine.RegControls.AllNames():
                engine.RegControls.Name(control)
                engine.RegControls.MaxTapChange(0)
        self._generators: dict[str, Generator] = {}
        self._build_static_maps()
        self._build_generator_map()
        self._load_base = self._load_setpoints()
        self._cumulative_factor = {nb: 1.0 for nb in self._neighbourhood_buses}
        self._snapshot = self._read_snapshot(self._solve_or_raise("the base case"))

    def _build_static_maps(self) -> None:
        engine, batch = self._engine, self._batch
        self._node_names: list[str] = list(engine.Circuit.AllNodeNames())
        self._node_index = {name: i for i, name in enumerate(self._node_names)}
        self._node_bus = [name.split(".")[0] for name in self._node_names]
        self._node_number = [int(name.split(".")[1]) for name in self._node_names]
        self._bus_names: list[str] = list(engine.Circuit.AllBusNames())
        self._bus_info: dict[str, dict[str, Any]] = {}
        for bus in self._bus_names:
            engine.Circuit.SetActiveBus(bus)
            has_xy = engine.Bus.Coorddefined()  # the open-tie stubs 94_open and 300_open have none
            self._bus_info[bus] = {"name": bus, "nodes": sorted(engine.Bus.Nodes()), "kv_base_ln": engine.Bus.kVBase(),
                                   "x": engine.Bus.X() if has_xy else None, "y": engine.Bus.Y() if has_xy else None,
                                   "distance_km": engine.Bus.Distance(), "loads": []}

        self._load_names: list[str] = list(batch.Load.Name)
        self._load_bus = [b.split(".")[0].lower() for b in batch.Load.Bus1]
        self._load_conductor_node = np.array(
            [i for n in self._load_names for i in _conductor_node_index(engine, f"Load.{n}", self._node_index)])
        self._bus_neighbourhood = {b: nb for nb, buses in self._neighbourhood_buses.items() for b in buses}
        for load, bus in zip(self._load_names, self._load_bus):
            self._bus_info[bus]["loads"].append(load)
        for bus, info in self._bus_info.items():
            info["neighbourhood"] = self._bus_neighbourhood.get(bus)
        self._neighbourhood_loads = {
            nb: [i for i, b in enumerate(self._load_bus) if self._bus_neighbourhood.get(b) == nb]
            for nb in self._neighbourhood_buses}

        self._line_names: list[str] = list(batch.Line.Name)
        self._line_bus1 = [b.split(".")[0].lower() for b in batch.Line.Bus1]
        self._line_bus2 = [b.split(".")[0].lower() for b in batch.Line.Bus2]
        self._line_phases = np.asarray(_values(batch.Line.Phases), dtype=int)
        self._line_is_switch = np.asarray(_values(batch.Line.Switch), dtype=bool)
        self._line_norm_amps = np.asarray(_values(batch.Line.NormAmps), dtype=float)
        self._line_term1_conductors, self._line_segment_starts = _terminal1_phase_conductors(
            np.asarray(_values(batch.Line.NumConductors), dtype=int), self._line_phases)
        self._layout = RowLayout(
            node_bus=self._node_bus, node_number=self._node_number, line_names=self._line_names,
            line_bus1=self._line_bus1, line_bus2=self._line_bus2, line_phases=self._line_phases.tolist(),
            line_current_starts=self._line_segment_starts.tolist(),
            line_current_ends=np.cumsum(self._line_phases).tolist(), line_switch=self._line_is_switch.tolist())
        for template in ("bus_details_table", "line_flows_table", "line_number_order"):
            getattr(self._layout, template)  # build them now, not on the first request
        # (transformer, winding) of each regulator control, to save and restore taps around a change.
        self._regulated_windings = []
        for control in engine.RegControls.AllNames():
            engine.RegControls.Name(control)
            self._regulated_windings.append((engine.RegControls.Transformer(), engine.RegControls.Winding()))

        self._transformer_names: list[str] = list(batch.Transformer.Name)
        self._transformer_norm_amps = np.asarray(_values(batch.Transformer.NormAmps), dtype=float)
        self._transformer_buses = [[b.split(".")[0].lower() for b in buses] for buses in _values(batch.Transformer.Buses)]
        self._transformer_kva = [float(k[0]) for k in _values(batch.Transformer.kVAs)]
        self._transformer_term1_conductors, self._transformer_segment_starts = _terminal1_phase_conductors(
            np.asarray(_values(batch.Transformer.NumConductors), dtype=int),
            np.asarray(_values(batch.Transformer.Phases), dtype=int))

    def _build_generator_map(self) -> None:
        """Map generator conductors to nodes (phases, then the grounded neutral), in the engine's order.

        Built from our own registry, since the engine cannot report a new element's nodes before a solve;
        redone only when a generator is created."""
        self._generator_order = list(self._batch.Generator.Name)
        conductor_nodes = []
        for name in self._generator_order:
            generator = self._generators[name]
            conductor_nodes += [self._node_index[f"{generator.bus}.{n}"] for n in generator.nodes] + [-1]
        self._generator_conductor_node = np.array(conductor_nodes, dtype=int)

    def _load_setpoints(self) -> np.ndarray:
        return np.stack([np.asarray(_values(self._batch.Load.kW), dtype=float),
                         np.asarray(_values(self._batch.Load.kvar), dtype=float)])

    # ------------------------------------------------------------------ solving and reading
    def _solve_or_raise(self, what: str) -> np.ndarray:
        """Solve; return the node voltage magnitudes (pu) or raise if the result cannot be trusted."""
        engine = self._engine
        try:
            engine.Solution.Solve()
            converged = engine.Solution.Converged()
        except opendssdirect.DSSException as error:
            raise NotConvergedError(f"the power flow failed for {what}: {error}") from error
        if not converged:
            raise NotConvergedError(f"the power flow did not converge for {what}")
        magnitudes = np.asarray(engine.Circuit.AllBusMagPu())
        if not np.all(np.isfinite(magnitudes)) or magnitudes.max() > 2.0:
            raise NotConvergedError(f"the power flow for {what} gave implausible voltages "
                                    f"(max {magnitudes.max():.3g} pu)")
        return magnitudes

    def _read_snapshot(self, vmag_pu: np.ndarray | None = None) -> Snapshot:
        """Read the solved state with batch calls (the magnitudes the solve check already read, if given)."""
        engine, batch = self._engine, self._batch
        if vmag_pu is None:
            vmag_pu = np.asarray(engine.Circuit.AllBusMagPu())
        n_nodes = len(self._node_names)
        volts = np.asarray(engine.Circuit.AllBusVolts()).view(complex)
        vangle = np.degrees(np.angle(volts))

        load_p, load_q = _sum_per_node(self._load_conductor_node, np.asarray(_values(batch.Load.Powers)), n_nodes)
        gen_p, gen_q = np.zeros(n_nodes), np.zeros(n_nodes)
        generator_totals = np.zeros(0, dtype=complex)
        if len(self._generator_order):
            generator_totals = -np.asarray(_values(batch.Generator.TotalPowers))
            gen_p, gen_q = _sum_per_node(self._generator_conductor_node,
                                         -np.asarray(_values(batch.Generator.Powers)), n_nodes)

        line_terminal_powers = np.asarray(_values(batch.Line.TotalPowers))
        line_p1 = line_terminal_powers[0::2]
        line_losses = (line_terminal_powers[0::2] + line_terminal_powers[1::2]).real
        # Complex currents and np.abs: a third of the engine's time for CurrentsMagAng.
        line_currents = np.abs(np.asarray(_values(batch.Line.Currents))[self._line_term1_conductors])
        line_max_current = np.maximum.reduceat(line_currents, self._line_segment_starts)
        line_loading = 100.0 * line_max_current / self._line_norm_amps

        xf_terminal_powers = np.asarray(_values(batch.Transformer.TotalPowers))
        xf_losses = (xf_terminal_powers[0::2] + xf_terminal_powers[1::2]).real
        xf_currents = np.abs(np.asarray(_values(batch.Transformer.Currents))[self._transformer_term1_conductors])
        xf_loading = 100.0 * np.maximum.reduceat(xf_currents, self._transformer_segment_starts) \
            / self._transformer_norm_amps

        source_kw, source_kvar = (-x for x in engine.Circuit.TotalPower())
        losses_w, losses_var = engine.Circuit.Losses()
        arrays = {"vmag_pu": vmag_pu, "vangle_deg": vangle, "load_kw": load_p, "load_kvar": load_q,
                  "gen_kw": gen_p, "gen_kvar": gen_q, "line_p_kw": line_p1.real, "line_q_kvar": line_p1.imag,
                  "line_currents_a": line_currents, "line_loading_pct": line_loading,
                  "line_losses_kw": line_losses, "transformer_loading_pct": xf_loading,
                  "generator_power": generator_totals, "transformer_losses_kw": xf_losses}
        sections = {
            "power_summary": {
                "converged": True,
                "total_circuit_power_kW": source_kw,
                "total_circuit_power_kVAR": source_kvar,
                "total_load_kW": float(load_p.sum()),
                "total_load_kVAR": float(load_q.sum()),
                "total_generation_kW": float(gen_p.sum()),
                "total_generation_kVAR": float(gen_q.sum()),
                "total_losses_kW": losses_w / 1000.0,
                "total_losses_kVAR": losses_var / 1000.0,
            },
            "voltage_profile": {
                "min_voltage_pu": float(vmag_pu.min()),
                "max_voltage_pu": float(vmag_pu.max()),
                "avg_voltage_pu": float(vmag_pu.mean()),
            },
            "losses": {
                "total_kW": losses_w / 1000.0,
                "total_kVAR": losses_var / 1000.0,
                "lines_kW": float(line_losses.sum()),
                "transformers_kW": float(xf_losses.sum()),
                "percent_of_input": 100.0 * losses_w / 1000.0 / source_kw if source_kw > 0 else None,
            },
        }
        violations = self._violations(arrays, source_kw)
        sections["violations"] = violations
        summary = sections["power_summary"]
        summary["voltage_violations"] = len(violations["voltage"])
        summary["thermal_violations"] = len(violations["thermal"])
        summary["reverse_power"] = bool(violations["reverse_power"])
        return Snapshot(self.sequence, self._layout, arrays, sections)

    def _violations(self, arrays: dict[str, np.ndarray], source_kw: float) -> dict[str, Any]:
        low, high = self.voltage_limits_pu
        vmag = arrays["vmag_pu"]
        voltage = [
            {"element": f"Bus.{self._node_bus[i]}", "node": self._node_number[i], "value_pu": float(vmag[i]),
             "limit_pu": low if vmag[i] < low else high, "kind": "undervoltage" if vmag[i] < low else "overvoltage"}
            for i in np.flatnonzero((vmag < low) | (vmag > high))]
        thermal = [
            {"element": f"Line.{self._line_names[i]}", "value_pct": float(arrays["line_loading_pct"][i]),
             "limit_pct": 100.0}
            for i in np.flatnonzero(arrays["line_loading_pct"] > 100.0)]
        thermal += [
            {"element": f"Transformer.{self._transformer_names[i]}",
             "value_pct": float(arrays["transformer_loading_pct"][i]), "limit_pct": 100.0}
            for i in np.flatnonzero(arrays["transformer_loading_pct"] > 100.0)]
        reverse = ({"element": "Vsource.source", "value_kW": source_kw, "limit_kW": 0.0}
                   if source_kw < 0 else None)
        return {"voltage_limits_pu": [low, high], "voltage": voltage, "thermal": thermal,
                "reverse_power": reverse}

    # ------------------------------------------------------------------ changes with rollback
    def _regulator_taps(self) -> list[float]:
        engine = self._engine
        taps = []
        for transformer, winding in self._regulated_windings:
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            taps.append(engine.Transformers.Tap())
        return taps

    def _restore_regulator_taps(self, taps: list[float]) -> None:
        engine = self._engine
        for (transformer, winding), tap in zip(self._regulated_windings, taps):
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            engine.Transformers.Tap(tap)

    def _apply(self, what: str, change, undo) -> None:
        """Apply a change and solve; on any failure undo it, restore the taps and re-solve."""
        taps = self._regulator_taps()
        try:
            change()
            magnitudes = self._solve_or_raise(what)
        except Exception as error:
            undo()
            self._restore_regulator_taps(taps)
            self._engine.Solution.Solve()
            if isinstance(error, SimulationError):
                raise NotConvergedError(f"{error}; the change was rolled back and the grid is unchanged",
                                        field=getattr(error, "field", None)) from error
            raise
        self.sequence += 1
        self._snapshot = self._read_snapshot(magnitudes)

    # ------------------------------------------------------------------ public verbs
    def add_generator(self, bus: str, phases: int, kw: float, phase: int | None = None) -> Change:
        """Add a constant-kW, unity-power-factor generator, or update the one already at this bus and phases."""
        with self._lock:  # a reset rebuilds the bus maps: look them up under the lock
            bus, nodes, kv, name = self._generator_connection(bus, phases, kw, phase)
            existing = self._generators.get(name)
            created = existing is None or not existing.enabled
            previous = (existing.kw, existing.enabled) if existing else None

            def change() -> None:
                if existing is None:
                    self._engine.Text.Command(
                        f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                        f"kv={kv:.6f} kw={kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
                    self._generators[name] = Generator(name, bus, phases, nodes, 0.0, enabled=False)
                    self._build_generator_map()
                else:
                    self._set_generator(name, kw, True)

            def undo() -> None:
                if existing is None:
                    self._set_generator(name, 0.0, False)
                else:
                    self._set_generator(name, previous[0], previous[1])

            self._apply(f"generator {name} at {kw} kW", change, undo)
            self._generators[name] = Generator(name, bus, phases, nodes, float(kw))
            return Change({"type": "add_generator", "sequence": self.sequence, "generator": name, "bus": bus,
                           "phases": phases, "nodes": nodes, "kw": float(kw), "kv": kv,
                           "created": created, "updated": not created}, self._snapshot)

    def _generator_connection(self, bus: Any, phases: int, kw: Any, phase: int | None
                              ) -> tuple[str, list[int], float, str]:
        """Check a generator request against the circuit: its bus, nodes, rated kV and name, or an error."""
        bus = self._check_bus(bus, "bus_name")
        if bus in NO_GENERATOR_BUSES:
            raise SimulationError(f"bus_name: {NO_GENERATOR_BUSES[bus]}", field="bus_name")
        _check_number(kw, "kw", 0.0, MAX_GENERATOR_KW)
        available = self._bus_info[bus]["nodes"]
        if phases == 3:
            if phase is not None:
                raise SimulationError("phase: only for 1-phase generators; omit it when phases is 3", field="phase")
            if not {1, 2, 3} <= set(available):
                raise SimulationError(f"phases: bus {bus} has phases {available}; a 3-phase generator needs "
                                      f"a bus with phases 1, 2 and 3", field="phases")
            nodes, kv = [1, 2, 3], self._bus_info[bus]["kv_base_ln"] * math.sqrt(3)  # rated line-to-line
        elif phases == 1:
            node = available[0] if phase is None else phase
            if node not in available:
                raise SimulationError(f"phase: bus {bus} has phases {available}, not {node}", field="phase")
            nodes, kv = [node], self._bus_info[bus]["kv_base_ln"]  # rated line-to-neutral
        else:
            raise SimulationError("phases: expected 1 or 3", field="phases")
        name = f"gen_{bus}_{''.join(map(str, nodes))}"
        if not SAFE_NAME.match(name):  # bus names come from the circuit; this is a second line of defence
            raise SimulationError(f"bus_name: {bus!r} cannot host a generator", field="bus_name")
        return bus, nodes, kv, name

    def _set_generator(self, name: str, kw: float, enabled: bool) -> None:
        engine = self._engine
        engine.Generators.Name(name)
        engine.Generators.kW(kw)
        engine.Circuit.SetActiveElement(f"Generator.{name}")
        engine.CktElement.Enabled(enabled)

    def remove_generator(self, name: str) -> Change:
        """Take out a generator added through the API (it stays disabled in the engine)."""
        key = name.lower() if isinstance(name, str) else ""
        with self._lock:
            generator = self._generators.get(key)
            if generator is None or not generator.enabled:
                known = ", ".join(sorted(g.name for g in self._generators.values() if g.enabled)) or "none"
                raise NotFoundError(f"name: no generator {name!r}; present: {known}", field="name")
            self._apply(f"removing {key}", lambda: self._set_generator(key, 0.0, False),
                        lambda: self._set_generator(key, generator.kw, True))
            generator.enabled = False
            return Change({"type": "remove_generator", "sequence": self.sequence, **generator.describe()},
                          self._snapshot)

    def scale_neighbourhood_loads(self, neighbourhood: int, factor: float) -> Change:
        """Multiply kW and kvar of every load in a neighbourhood; successive factors compound."""
        if isinstance(neighbourhood, bool) or not isinstance(neighbourhood, int) \
                or neighbourhood not in self._neighbourhood_buses:
            raise NotFoundError(f"neighbourhood: expected one of {sorted(self._neighbourhood_buses)}, "
                                f"got {neighbourhood!r}", field="neighbourhood")
        _check_number(factor, "factor", 0.0, MAX_FACTOR)
        with self._lock:
            previous = self._cumulative_factor[neighbourhood]
            cumulative = previous * factor
            if cumulative > MAX_CUMULATIVE_FACTOR:
                raise SimulationError(f"factor: the cumulative factor of neighbourhood {neighbourhood} would be "
                                      f"{cumulative:g}, above the limit {MAX_CUMULATIVE_FACTOR:g}", field="factor")
            loads = self._neighbourhood_loads[neighbourhood]
            self._apply(f"neighbourhood {neighbourhood} x{factor}",
                        lambda: self._set_load_factor(loads, cumulative),
                        lambda: self._set_load_factor(loads, previous))
            self._cumulative_factor[neighbourhood] = cumulative
            return Change({"type": "modify_load_neighbourhood", "sequence": self.sequence,
                           "neighbourhood": neighbourhood, "factor": float(factor), "cumulative_factor": cumulative,
                           "loads_changed": [self._load_names[i] for i in loads]}, self._snapshot)

    def _set_load_factor(self, load_indices: list[int], cumulative: float) -> None:
        engine = self._engine
        for i in load_indices:
            engine.Loads.Name(self._load_names[i])
            engine.Loads.kW(float(self._load_base[0, i] * cumulative))
            engine.Loads.kvar(float(self._load_base[1, i] * cumulative))

    def reset(self) -> Change:
        """Recompile the deck: the base case exactly as at start-up (a change like any other)."""
        with self._lock:
            self.sequence += 1
            self._compile()
            return Change({"type": "reset", "sequence": self.sequence}, self._snapshot)

    # ------------------------------------------------------------------ reads
    @property
    def snapshot(self) -> Snapshot:
        """The last complete state; no lock needed, the reference is replaced whole."""
        return self._snapshot

    def results(self) -> dict[str, Any]:
        return self._snapshot.results

    def buses(self) -> list[dict[str, Any]]:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators on it."""
        with self._lock:
            on_bus: dict[str, list[str]] = {}
            for generator in self._generators.values():
                if generator.enabled:
                    on_bus.setdefault(generator.bus, []).append(generator.name)
            return [{**info, "generators": on_bus.get(bus, [])} for bus, info in self._bus_info.items()]

    def bus(self, name: str) -> dict[str, Any]:
        """One bus with its node voltages, loads, generators and the lines that touch it."""
        with self._lock:
            bus = self._check_bus(name, "name")
            snapshot = self._snapshot
            rows = [r for r in snapshot.bus_details if r["Bus"] == bus]
            lines = [r for r in snapshot.line_flows if bus in (r["Bus1"], r["Bus2"])]
            load_setpoints = self._load_setpoints()
            loads = [{"name": self._load_names[i], "kW": float(load_setpoints[0, i]),
                      "kVAR": float(load_setpoints[1, i])}
                     for i, load_bus in enumerate(self._load_bus) if load_bus == bus]
            generators = [g for g in self.generators() if g["bus"] == bus]
            return {**self._bus_info[bus], "voltages": rows, "loads": loads, "generators": generators,
                    "lines": lines, "sequence": snapshot.sequence}

    def generators(self) -> list[dict[str, Any]]:
        """Generators added through the API: setpoint and delivered power from the last solve."""
        with self._lock:
            power = self._snapshot.arrays["generator_power"]
            delivered = {name: power[i] for i, name in enumerate(self._generator_order) if i < len(power)}
            return [{**g.describe(), "delivered_kW": float(delivered[g.name].real),
                     "delivered_kVAR": float(delivered[g.name].imag)}
                    for g in self._generators.values() if g.enabled]

    def neighbourhoods(self) -> list[dict[str, Any]]:
        """Each neighbourhood: buses, loads, base and current kW/kvar set-points, cumulative factor."""
        with self._lock:
            rows = []
            for nb, buses in sorted(self._neighbourhood_buses.items()):
                loads = self._neighbourhood_loads[nb]
                base_kw = float(self._load_base[0, loads].sum())
                base_kvar = float(self._load_base[1, loads].sum())
                factor = self._cumulative_factor[nb]
                rows.append({"id": nb, "buses": buses, "loads": [self._load_names[i] for i in loads],
                             "base_kW": base_kw, "base_kVAR": base_kvar, "kW": base_kw * factor,
                             "kVAR": base_kvar * factor, "cumulative_factor": factor})
            return rows

    def transformers(self) -> list[dict[str, Any]]:
        """The regulators and XFM1: where they sit, their rating, loading and regulator tap."""
        with self._lock:
            arrays = self._snapshot.arrays
            taps = dict(zip((t for t, _ in self._regulated_windings), self._regulator_taps()))
            return [{"name": name, "bus1": buses[0], "bus2": buses[1], "kva": kva,
                     "loading_pct": float(loading), "losses_kW": float(losses),
                     "tap": round((taps[name] - 1.0) / TAP_STEP_PU) if name in taps else None}
                    for name, buses, kva, loading, losses in zip(
                        self._transformer_names, self._transformer_buses, self._transformer_kva,
                        arrays["transformer_loading_pct"], arrays["transformer_losses_kw"])]

    def health(self) -> dict[str, Any]:
        snapshot = self._snapshot
        return {"ready": True, "converged": bool(snapshot.section("power_summary")["converged"]),
                "sequence": snapshot.sequence, "buses": len(self._bus_names),
                "generators": sum(g.enabled for g in self._generators.values())}

    def _check_bus(self, bus: Any, field_name: str) -> str:
        if not isinstance(bus, str) or not bus:
            raise SimulationError(f"{field_name}: expected a bus name (string)", field=field_name)
        key = bus.lower()
        if key not in self._bus_info:
            shown = bus if len(bus) <= 40 else bus[:40] + "…"
            close = difflib.get_close_matches(key[:64], self._bus_names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise NotFoundError(f"{field_name}: unknown bus {shown!r}{hint}; GET /buses lists the "
                                f"{len(self._bus_names)} buses", field=field_name)
        return key

    def close(self) -> None:
        with self._lock:
            self._engine.Text.Command("Clear")


def _terminal1_phase_conductors(conductors: np.ndarray, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For two-terminal elements flattened per conductor (terminal 1 then 2, each element in turn): the
    positions of terminal 1's phase conductors, and where each element's run starts among them."""
    element_starts = np.concatenate(([0], np.cumsum(2 * conductors)[:-1]))
    positions = np.concatenate([np.arange(s, s + p) for s, p in zip(element_starts, phases)])
    return positions, np.concatenate(([0], np.cumsum(phases)[:-1]))


def _sum_per_node(conductor_node: np.ndarray, powers: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Add per-conductor powers into their nodes (-1 = ground, dropped): the kW and kvar at each bus node."""
    connected = conductor_node >= 0
    nodes, values = conductor_node[connected], powers[connected]
    return (np.bincount(nodes, weights=values.real, minlength=n_nodes),
            np.bincount(nodes, weights=values.imag, minlength=n_nodes))


def _values(batch_property: Any) -> Any:
    """altdss exposes some batch properties as callables and some as plain lists."""
    return batch_property() if callable(batch_property) else batch_property


def _check_number(value: Any, name: str, low: float, high: float) -> None:
    """Finite numbers within bounds; booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SimulationError(f"{name}: expected a number", field=name)
    if not math.isfinite(value):
        raise SimulationError(f"{name}: expected a finite number, got {value}", field=name)
    if not low <= value <= high:
        raise SimulationError(f"{name}: expected a number from {low:g} to {high:g}, got {value:g}", field=name)
