"""OpenDSSCircuit: one IEEE 123-bus feeder in its own OpenDSS engine, changed and re-solved on request.

The engine is single-threaded and works through an "active element", so every public method takes the
circuit's lock once and does its whole job under it. This module compiles, changes (with rollback and dry
runs) and rebuilds; `engine.index` reads a solved state into a `engine.results.Snapshot` with batch calls.

Every change is given as an op (`apply`), the same vocabulary journals, imports and studies use, and a state
is rebuilt by compiling and applying its ops again: each solve starts from the state the ops produced, so a
rebuild equals the original to the last digits (tests hold it to 1e-9 pu).
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import opendssdirect

from engine.errors import NotConvergedError, NotFoundError, SimulationError
from engine.inverters import CircuitInverters
from engine.checkpoints import CircuitStudies
from engine.views import CircuitViews
from engine.index import TAP_STEP_PU, FeederIndex, read_limits, read_snapshot, values
from engine.inverter_settings import normalize_inverter, with_kva
from engine.results import SECTION_ORDER, WORK_TURN, Change, Snapshot  # noqa: F401  (SECTION_ORDER: part of this module's API)

MODEL_DIR = Path(__file__).resolve().parent.parent / "Test_Systems" / "IEEE_123_Bus-G"
DEFAULT_MASTER_FILE = MODEL_DIR / "Master.dss"
DEFAULT_NEIGHBOURHOOD_FILE = MODEL_DIR / "neighbourhoods.json"

#: Regulator taps published by the IEEE for the 123-node feeder (one step = 0.00625 pu).
PUBLISHED_REGULATOR_TAPS: dict[str, int] = {
    "reg1a": 7, "reg2a": -1, "reg3a": 0, "reg3c": -1, "reg4a": 8, "reg4b": 1, "reg4c": 5,
}

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


#: The changes a scenario's journal, an import or a batch case can hold, by op name.
OPS = ("add_generator", "modify_load_neighbourhood", "remove_generator", "reset")


@dataclass(frozen=True)
class Pending:
    """Stands for the snapshot of a change made during a rebuild, which reads the state only at its end."""

    sequence: int


__all__ = ["NotConvergedError", "NotFoundError", "SimulationError"]  # raised here, defined in engine.errors


@dataclass
class Generator:
    """A generator added through the API; kept (disabled) after removal so its slot can be reused. `inverter`:
    its smart-inverter settings (`inverter_settings`), None for a plain constant-kW, unity-power-factor one."""

    name: str
    bus: str
    phases: int
    nodes: list[int]
    kw: float
    enabled: bool = True
    kv: float = 0.0
    inverter: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        described = {"name": self.name, "bus": self.bus, "phases": self.phases, "nodes": self.nodes, "kw": self.kw}
        if self.inverter is not None:
            described["inverter"] = self.inverter
        return described


class OpenDSSCircuit(CircuitViews, CircuitStudies, CircuitInverters):
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
        self._compile_count = 0
        self._replaying = False
        with self._lock:
            self._compile()

    # ------------------------------------------------------------------ compile and index maps
    def _compile(self) -> None:
        """Compile the deck from scratch, build the index maps, solve the base case."""
        with WORK_TURN:  # see results.WORK_TURN
            self._compile_in_turn()

    def _compile_in_turn(self) -> None:
        engine = self._engine
        self._compile_count += 1
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
        self._reset_inverters()
        self._build_static_maps()
        self._compiled_taps = self._regulator_taps()  # where a failed solve starts again (_solve_or_raise)
        self._build_generator_map()
        self._load_base = self._load_setpoints()
        self._cumulative_factor = {nb: 1.0 for nb in self._neighbourhood_buses}
        self._snapshot = self._read_snapshot(self._solve_or_raise("the base case"))
        self._base_snapshot = self._snapshot
        self._pristine = True  # nothing applied since the compile: a rebuild need not compile again

    def _build_static_maps(self) -> None:
        self._index = FeederIndex(self._engine, self._batch, self._neighbourhood_buses)

    def _build_generator_map(self) -> None:
        """Map generator conductors to nodes (phases, then the grounded neutral), in the engine's order.

        Built from our own registry, since the engine cannot report a new element's nodes before a solve;
        redone only when a generator is created."""
        self._generator_order = list(self._batch.Generator.Name)
        self._generator_elements = set(self._generator_order)
        conductor_nodes = []
        for name in self._generator_order:
            generator = self._generators[name]
            conductor_nodes += [self._index.node_index[f"{generator.bus}.{n}"] for n in generator.nodes] + [-1]
        self._generator_conductor_node = np.array(conductor_nodes, dtype=int)

    def _load_setpoints(self) -> np.ndarray:
        return np.stack([np.asarray(values(self._batch.Load.kW), dtype=float),
                         np.asarray(values(self._batch.Load.kvar), dtype=float)])

    # ------------------------------------------------------------------ solving and reading
    def _solve_or_raise(self, what: str) -> np.ndarray:
        """Solve; return the node voltage magnitudes (pu) or raise if the result cannot be trusted.

        A solve that fails is tried once more from the base case's starting point (`_settle_from_compiled_taps`):
        taps and voltages left far out by an earlier state (a large generator since turned down) can keep the
        power flow from converging where the same grid converges from the base case. Only if both fail is the
        state refused, so no state reached by accepted changes traps the user (README, "Feeder model")."""
        try:
            return self._solve_once(what)
        except NotConvergedError:
            self._settle_from_compiled_taps()
            return self._solve_once(what)

    def _settle_from_compiled_taps(self) -> None:
        """The regulators back at the taps the deck compiled with, and the feeder solved without its generators'
        output: the state a fresh compile of these loads would settle in, from which the generators' output is
        then solved again. The voltages start from a direct solve (loads as admittances), as a fresh compile's
        do. Inverter generators are switched off meanwhile (their controls would still set vars at no irradiance),
        control first (`engine.inverters`). The result need not converge (nor their controls settle); the solve
        that follows decides."""
        kw = np.asarray(values(self._batch.Generator.kW), dtype=float)
        inverters = list(self._active.values())
        self._restore_regulator_taps(self._compiled_taps)
        if kw.size:
            self._batch.Generator.kW = np.zeros_like(kw)
        for definition in inverters:
            self._switch_definition(definition, False)
        try:
            self._engine.Solution.SolveDirect()  # node voltages from scratch, whatever the failed solve left (NaN)
            self._engine.Solution.Solve()
        except opendssdirect.DSSException:
            pass
        finally:
            if kw.size:
                self._batch.Generator.kW = kw
            for definition in inverters:
                self._switch_definition(definition, True)

    def _solve_once(self, what: str) -> np.ndarray:
        engine = self._engine
        try:
            engine.Solution.Solve()
            converged = engine.Solution.Converged()
        except opendssdirect.DSSException as error:
            if "Max Control Iterations" in str(error):  # OpenDSS #485: regulators or inverter controls
                raise NotConvergedError(f"the controls did not settle within {engine.Solution.MaxControlIterations()}"
                                        f" control iterations for {what}") from error
            raise NotConvergedError(f"the power flow failed for {what}: {error}") from error
        if not converged:
            raise NotConvergedError(f"the power flow did not converge for {what}")
        magnitudes = np.asarray(engine.Circuit.AllBusMagPu())
        if not np.all(np.isfinite(magnitudes)) or magnitudes.max() > 2.0:
            raise NotConvergedError(f"the power flow for {what} gave implausible voltages "
                                    f"(max {magnitudes.max():.3g} pu)")
        return magnitudes

    def _read_snapshot(self, vmag_pu: np.ndarray | None = None, sequence: int | None = None) -> Snapshot:
        if vmag_pu is None:
            vmag_pu = np.asarray(self._engine.Circuit.AllBusMagPu())
        return read_snapshot(self._engine, self._batch, self._index, self._generator_conductor_node,
                             self.sequence if sequence is None else sequence, self.voltage_limits_pu, vmag_pu,
                             self._inverter_conductor_nodes() if self._pv_order else None)

    # ------------------------------------------------------------------ changes with rollback
    def _regulator_taps(self) -> list[float]:
        engine = self._engine
        taps = []
        for transformer, winding in self._index.regulated_windings:
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            taps.append(engine.Transformers.Tap())
        return taps

    def _restore_regulator_taps(self, taps: list[float]) -> None:
        engine = self._engine
        for (transformer, winding), tap in zip(self._index.regulated_windings, taps):
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            engine.Transformers.Tap(tap)

    def _apply(self, what: str, change: Callable[[], None], undo: Callable[[], None], dry_run: bool,
               read: Callable[[np.ndarray], Any] | None = None) -> Any:
        """Apply a change and solve; on any failure undo it, restore the taps and re-solve.

        A dry run is undone the same way after its results are read: the state, the sequence and the snapshot
        are as before, and the next change solves from the same starting point as if it had never happened."""
        with WORK_TURN:  # see results.WORK_TURN
            return self._apply_in_turn(what, change, undo, dry_run, read)

    def _apply_in_turn(self, what: str, change: Callable[[], None], undo: Callable[[], None], dry_run: bool,
                       read: Callable[[np.ndarray], Any] | None) -> Any:
        self._pristine = False
        taps = self._regulator_taps()
        try:
            change()
            magnitudes = self._solve_or_raise(what)
        except Exception as error:
            self._roll_back(undo, taps)
            if isinstance(error, SimulationError):
                raise NotConvergedError(f"{error}; the change was rolled back and the grid is unchanged",
                                        field=getattr(error, "field", None)) from error
            raise
        if dry_run:  # `read`: a lean reading instead of the whole snapshot (a study's trial)
            preview = read(magnitudes) if read else self._read_snapshot(magnitudes, sequence=self.sequence + 1)
            self._roll_back(undo, taps)
            return preview
        self.sequence += 1
        if self._replaying:  # a rebuild reads the state once, after its last op
            return Pending(self.sequence)
        self._snapshot = self._read_snapshot(magnitudes)
        return self._snapshot

    def _roll_back(self, undo: Callable[[], None], taps: list[float]) -> None:
        """Undo the change and solve the state before it again, from its own taps. A failed solve can leave the
        node voltages far out (NaN even), so when the re-solve does not converge it starts again from a direct
        solve: the engine must hold the state it answers with, or the next change would start from garbage.
        Inverter controls can fail to settle from where the refused change left them: that is tried the same
        way, and never raised (the change's own error is the answer)."""
        undo()
        self._restore_regulator_taps(taps)
        engine = self._engine
        try:
            engine.Solution.Solve()
            settled = engine.Solution.Converged() and np.all(np.isfinite(engine.Circuit.AllBusMagPu()))
        except opendssdirect.DSSException:
            settled = False
        if not settled:
            self._restore_regulator_taps(taps)
            try:
                engine.Solution.SolveDirect()
                engine.Solution.Solve()
            except opendssdirect.DSSException:
                pass

    # ------------------------------------------------------------------ public verbs
    def apply(self, op: Mapping[str, Any], dry_run: bool = False) -> Change:
        """Apply one change given as an op (`{"op": "add_generator", "bus_name": "67", ...}`: the change routes'
        bodies plus the op's name). Journals, imports and batch cases are lists of these."""
        kind = op.get("op")
        if kind == "add_generator":
            return self.add_generator(op.get("bus_name"), op.get("phases"), op.get("kw"), op.get("phase"), dry_run,
                                      inverter=op.get("inverter"))
        if kind == "modify_load_neighbourhood":
            return self.scale_neighbourhood_loads(op.get("neighbourhood"), op.get("factor"), dry_run)
        if kind == "remove_generator":
            return self.remove_generator(op.get("name"), dry_run)
        if kind == "reset":
            return self.reset(dry_run)
        raise SimulationError(f"op: expected one of {', '.join(OPS)}, got {kind!r}", field="op")

    def rebuild(self, ops: list[Mapping[str, Any]], sequence: int | None = None) -> list[dict[str, Any]]:
        """Recompile and apply these ops in order: the one way a scenario's state is rebuilt from its journal
        (undo, import, fork, restart, eviction). Equal to the state the ops first produced, since each solve
        starts from the state the ops before it left. Returns each op's action; `sequence` (default: the number
        of ops) numbers the final state. A refused op raises with its index in the field (`changes[3].kw`)."""
        with self._lock:
            self.sequence = 0
            if not self._pristine:
                self._compile()
            actions = []
            self._replaying = True
            try:
                for position, op in enumerate(ops):
                    try:
                        actions.append(dict(self.apply(op)))
                    except SimulationError as error:
                        if error.field:
                            raise type(error)(f"changes[{position}].{error}",
                                              f"changes[{position}].{error.field}") from error
                        raise type(error)(f"changes[{position}]: {error}", f"changes[{position}]") from error
            finally:
                self._replaying = False
            if sequence is not None:
                self.sequence = sequence
            self._snapshot = self._read_snapshot()
            return actions

    def add_generator(self, bus: str, phases: int, kw: float, phase: int | None = None,
                      dry_run: bool = False, prefix: str = "gen", inverter: Any = None) -> Change:
        """Add a generator, or update the one already at this bus and phases: a constant-kW, unity-power-factor
        machine, or with `inverter` a smart inverter (`inverter_settings`; an update may change the mode).

        `prefix` names it (`gen_<bus>_<nodes>`); studies use their own prefix, so a trial generator is added
        beside the scenario's generators instead of updating one of them."""
        with self._lock:  # a reset rebuilds the bus maps: look them up under the lock
            bus, nodes, kv, name = self._generator_connection(bus, phases, kw, phase, prefix)
            settings = normalize_inverter(inverter, kw)
            existing = self._generators.get(name)
            created = existing is None or not existing.enabled
            change, undo = self._generator_change(bus, phases, nodes, kv, name, kw, settings)
            snapshot = self._apply(f"generator {name} at {kw} kW", change, undo, dry_run)
            if not dry_run:
                self._generators[name] = Generator(name, bus, phases, nodes, float(kw), True, kv, settings)
            described = {"inverter": settings} if settings is not None else {}
            return Change({"type": "add_generator", "sequence": snapshot.sequence, "generator": name, "bus": bus,
                           "phases": phases, "nodes": nodes, "kw": float(kw), "kv": kv, **described,
                           "created": created, "updated": not created, **_dry(dry_run)}, snapshot)

    def preview_generator_limits(self, bus: str, phases: int, kw: float, prefix: str,
                                 inverter: dict[str, Any] | None = None) -> tuple[list[int], dict]:
        """A study's trial: a generator connected as add_generator connects it (with `inverter`, checked
        settings without kVA: the trial's kVA is its kW), solved with the regulators and inverter controls
        acting, read lean (`engine.index.read_limits`), then taken back. Returns its nodes and the reading."""
        with self._lock:
            bus, nodes, kv, name = self._generator_connection(bus, phases, kw, None, prefix)
            trial = normalize_inverter(inverter, kw, trial=True)  # checked by the study too: cheap, and safe
            settings = with_kva(trial, kw) if trial is not None else None
            change, undo = self._generator_change(bus, phases, nodes, kv, name, kw, settings)
            reading = self._apply(f"generator {name} at {kw} kW", change, undo, dry_run=True,
                                  read=lambda magnitudes: read_limits(self._engine, self._batch, self._index,
                                                                      bool(self._generator_order), magnitudes,
                                                                      bool(self._pv_order)))
            return nodes, reading

    def _generator_change(self, bus: str, phases: int, nodes: list[int], kv: float, name: str, kw: float,
                          settings: dict[str, Any] | None = None) -> tuple[Callable[[], None], Callable[[], None]]:
        """The change that puts this generator at `kw` (creating its element the first time; with inverter
        `settings`, a new definition: `engine.inverters`) and the undo of it."""
        existing = self._generators.get(name)
        before = copy.copy(existing) if existing else None
        active = self._active.get(name)

        def change() -> None:
            if existing is None:
                self._generators[name] = Generator(name, bus, phases, nodes, 0.0, enabled=False, kv=kv)
            if settings is not None:
                self._put_slot(name, None, None)  # whatever the slot had on goes off first
                self._active[name] = self._define_inverter(name, kw, settings, bus, phases, nodes, kv)
            elif name not in self._generator_elements:
                self._put_slot(name, None, None)
                self._engine.Text.Command(
                    f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                    f"kv={kv:.6f} kw={kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5")
                self._build_generator_map()
            else:
                self._put_slot(name, Generator(name, bus, phases, nodes, kw, True, kv), None)

        def undo() -> None:
            self._put_slot(name, before, active)

        return change, undo

    def _generator_connection(self, bus: Any, phases: int, kw: Any, phase: int | None, prefix: str = "gen"
                              ) -> tuple[str, list[int], float, str]:
        """Check a generator request against the circuit: its bus, nodes, rated kV and name, or an error."""
        bus = self._check_bus(bus, "bus_name")
        if bus in NO_GENERATOR_BUSES:
            raise SimulationError(f"bus_name: {NO_GENERATOR_BUSES[bus]}", field="bus_name")
        _check_number(kw, "kw", 0.0, MAX_GENERATOR_KW)
        available = self._index.bus_info[bus]["nodes"]
        if phases == 3:
            if phase is not None:
                raise SimulationError("phase: only for 1-phase generators; omit it when phases is 3", field="phase")
            if not {1, 2, 3} <= set(available):
                raise SimulationError(f"phases: bus {bus} has phases {available}; a 3-phase generator needs "
                                      f"a bus with phases 1, 2 and 3", field="phases")
            nodes, kv = [1, 2, 3], self._index.bus_info[bus]["kv_base_ln"] * math.sqrt(3)  # rated line-to-line
        elif phases == 1:
            node = available[0] if phase is None else phase
            if node not in available:
                raise SimulationError(f"phase: bus {bus} has phases {available}, not {node}", field="phase")
            nodes, kv = [node], self._index.bus_info[bus]["kv_base_ln"]  # rated line-to-neutral
        else:
            raise SimulationError("phases: expected 1 or 3", field="phases")
        name = f"{prefix}_{bus}_{''.join(map(str, nodes))}"
        if not SAFE_NAME.match(name):  # bus names come from the circuit; this is a second line of defence
            raise SimulationError(f"bus_name: {bus!r} cannot host a generator", field="bus_name")
        return bus, nodes, kv, name

    def _set_generator(self, name: str, kw: float, enabled: bool) -> None:
        """A Generator element's kW and state (a plain generator; `_put_slot` decides)."""
        engine = self._engine
        engine.Generators.Name(name)
        engine.Generators.kW(kw)
        engine.Circuit.SetActiveElement(f"Generator.{name}")
        engine.CktElement.Enabled(enabled)

    def remove_generator(self, name: str, dry_run: bool = False) -> Change:
        """Take out a generator added through the API (it stays disabled in the engine)."""
        key = name.lower() if isinstance(name, str) else ""
        with self._lock:
            generator = self._generators.get(key)
            if generator is None or not generator.enabled:
                known = ", ".join(sorted(g.name for g in self._generators.values() if g.enabled)) or "none"
                raise NotFoundError(f"name: no generator {name!r}; present: {known}", field="name")
            active = self._active.get(key)
            snapshot = self._apply(f"removing {key}", lambda: self._put_slot(key, None, None),
                                   lambda: self._put_slot(key, generator, active), dry_run)
            if not dry_run:
                generator.enabled = False
            return Change({"type": "remove_generator", "sequence": snapshot.sequence, **generator.describe(),
                           **_dry(dry_run)}, snapshot)

    def scale_neighbourhood_loads(self, neighbourhood: int, factor: float, dry_run: bool = False) -> Change:
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
            loads = self._index.neighbourhood_loads[neighbourhood]
            snapshot = self._apply(f"neighbourhood {neighbourhood} x{factor}",
                                   lambda: self._set_load_factor(loads, cumulative),
                                   lambda: self._set_load_factor(loads, previous), dry_run)
            if not dry_run:
                self._cumulative_factor[neighbourhood] = cumulative
            return Change({"type": "modify_load_neighbourhood", "sequence": snapshot.sequence,
                           "neighbourhood": neighbourhood, "factor": float(factor), "cumulative_factor": cumulative,
                           "loads_changed": [self._index.load_names[i] for i in loads], **_dry(dry_run)}, snapshot)

    def _set_load_factor(self, load_indices: list[int], cumulative: float) -> None:
        engine = self._engine
        for i in load_indices:
            engine.Loads.Name(self._index.load_names[i])
            engine.Loads.kW(float(self._load_base[0, i] * cumulative))
            engine.Loads.kvar(float(self._load_base[1, i] * cumulative))

    def reset(self, dry_run: bool = False) -> Change:
        """Recompile the deck: the base case exactly as at start-up (a change like any other)."""
        with self._lock:
            if dry_run:
                return Change({"type": "reset", "sequence": self.sequence + 1, "dry_run": True},
                              self._base_snapshot.with_sequence(self.sequence + 1))
            self.sequence += 1
            self._compile()
            return Change({"type": "reset", "sequence": self.sequence}, self._snapshot)

    # ------------------------------------------------------------------ reads
    @property
    def snapshot(self) -> Snapshot:
        """The last complete state; no lock needed, the reference is replaced whole."""
        return self._snapshot

    @property
    def base_snapshot(self) -> Snapshot:
        """The base case as compiled (what a diff against base compares with)."""
        return self._base_snapshot

    def results(self) -> dict[str, Any]:
        return self._snapshot.results

    def _check_bus(self, bus: Any, field_name: str) -> str:
        if not isinstance(bus, str) or not bus:
            raise SimulationError(f"{field_name}: expected a bus name (string)", field=field_name)
        key = bus.lower()
        if key not in self._index.bus_info:
            shown = bus if len(bus) <= 40 else bus[:40] + "…"
            close = difflib.get_close_matches(key[:64], self._index.bus_names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise NotFoundError(f"{field_name}: unknown bus {shown!r}{hint}; GET /buses lists the "
                                f"{len(self._index.bus_names)} buses", field=field_name)
        return key

    def close(self) -> None:
        with self._lock:
            self._engine.Text.Command("Clear")


def _check_number(value: Any, name: str, low: float, high: float) -> None:
    """Finite numbers within bounds; booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SimulationError(f"{name}: expected a number", field=name)
    if not math.isfinite(value):
        raise SimulationError(f"{name}: expected a finite number, got {value}", field=name)
    if not low <= value <= high:
        raise SimulationError(f"{name}: expected a number from {low:g} to {high:g}, got {value:g}", field=name)


def _dry(dry_run: bool) -> dict[str, bool]:
    """The `dry_run` flag of a preview's action (absent from applied changes)."""
    return {"dry_run": True} if dry_run else {}
