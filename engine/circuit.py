"""OpenDSSCircuit: one feeder compiled in its own OpenDSS engine, changed and re-solved on request.

The engine is single-threaded and works through an "active element", so every public method takes the
circuit's lock once and does its whole job under it. This module compiles, changes (with rollback and dry
runs) and rebuilds. Its parts, made anew at each compile, own their state: the index maps (`engine.index`, which
reads a solved state into an `engine.results.Snapshot` with batch calls), the generator slots with their inverter
definitions (`engine.generators`, `engine.inverters`), the loads (`engine.loads`), the regulators
(`engine.regulators`), the solver (`engine.solver`), the customers' PV trials (`engine.customer_pv`) and the hour
runner of studies (`engine.hours`).

Every change is given as an op (`apply`), the same vocabulary journals, imports and studies use, and a state
is rebuilt by compiling and applying its ops again: each solve starts from the state the ops produced, so a
rebuild equals the original to the last digits (tests hold it to 1e-9 pu).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import opendssdirect

from engine import views
from engine.checks import MAX_CUMULATIVE_FACTOR, MAX_FACTOR, check_bus, check_number, generator_connection
from engine.controls import Controls
from engine.coordinates import place_coordinates
from engine.customer_pv import CUSTOMER_PV_PREFIX, CustomerConnection, CustomerPV
from engine.errors import FeederError, NotConvergedError, NotFoundError, SimulationError
from engine.generators import Generator, GeneratorSlots
from engine.hours import Checkpoint, CheckpointLost, HourRunner
from engine.feeder import Feeder, load_feeder
from engine.feeder_model import FeederModel, known_model, remember_model
from engine.ieee123 import deck_refusals, default_feeder
from engine.index import FeederIndex, read_limits, read_snapshot
from engine.inverter_settings import normalize_inverter, with_kva
from engine.load_shapes import read_load_shapes
from engine.loads import Loads
from engine.neighbourhoods import derive_neighbourhoods
from engine.regulators import Regulators, lock_taps
from engine.results import WORK_TURN, Change, Snapshot
from engine.settings import EngineSettings
from engine.solver import Solver, solve_settings
from engine.sites import read_generator_sites
from engine.topology import distances_km, energised_buses, read_topology
from engine.trial_loads import TrialLoads

#: The changes a scenario's journal, an import or a batch case can hold, by op name.
OPS = ("add_generator", "modify_load_neighbourhood", "remove_generator", "reset")


@dataclass(frozen=True)
class Pending:
    """Stands for the snapshot of a change made during a rebuild, which reads the state only at its end."""

    sequence: int


class OpenDSSCircuit:
    """One feeder in one engine context. Thread-safe: each public method holds the lock throughout."""

    feeder: Feeder  # the feeder this engine compiles (its deck as read when the server started)
    master_file: Path  # the deck's master file where the user keeps it (read once; never compiled from there)
    settings: EngineSettings
    sequence: int  # the number of the state the circuit holds (changes since the compile, or as a rebuild set)

    def __init__(self, master_file: Path | str | None = None, neighbourhood_file: Path | str | None | bool = True,
                 settings: EngineSettings = EngineSettings()) -> None:
        """The feeder is `settings.feeder` (our IEEE 123-bus deck when None), or the deck at `master_file` when one
        is given (read now; `neighbourhood_file`: True looks for `neighbourhoods.json` beside it, None derives
        them). Either way the engine compiles its own copy of the deck, in a scratch folder of its own."""
        self.feeder = load_feeder(master_file, neighbourhood_file=neighbourhood_file) if master_file is not None \
            else settings.feeder or default_feeder()
        self.master_file = Path(self.feeder.deck.root) / self.feeder.deck.master
        self.settings = settings
        self._lock = threading.RLock()
        self._scratch = tempfile.TemporaryDirectory(prefix="opendss-feeder-")
        self._master_copy = self.feeder.deck.write(Path(self._scratch.name))
        self._engine = opendssdirect.NewContext()
        self._engine.Basic.AllowChangeDir(False)
        self._batch = self._engine.to_altdss()
        self._model: FeederModel | None = None  # what the feeder is beyond its deck (`engine.feeder_model`)
        self._index: FeederIndex | None = None  # names and maps of the compiled deck, made at its first compile
        self.sequence = 0
        self._compile_count = 0
        self._replaying = False
        self._load_shapes: dict[str, Any] | None = None  # the deck's, read on first use (`load_shapes`)
        self._buses_json: tuple[Any, bytes] | None = None  # (what the rows depend on, their JSON): `buses_json`
        self._bus_rows: views.BusRowsJson | None = None  # the rows cut around their generators, made on first use
        with self._lock:
            try:
                self._compile()
            except NotConvergedError as error:  # a feeder whose base case does not solve cannot be served
                raise FeederError(f"feeder {self.feeder.name} ({self.master_file}): {error} within "
                                  f"{self._engine.Solution.MaxIterations()} iterations") from error

    # ------------------------------------------------------------------ compile
    def _compile(self) -> None:
        """Compile the deck from scratch, make the parts, solve the base case."""
        with WORK_TURN:  # see results.WORK_TURN
            self._compile_in_turn()

    def _compile_in_turn(self) -> None:
        engine, batch = self._engine, self._batch
        self._compile_count += 1
        engine.Text.Command("Clear")
        try:
            engine.Text.Command(f"Compile [{self._master_copy}]")
        except opendssdirect.DSSException as error:
            raise FeederError(f"feeder {self.feeder.name}: OpenDSS could not compile {self.master_file}: "
                              f"{self._user_paths(str(error))}") from error
        engine.Solution.Mode(0)  # snapshot
        solve_settings(engine, self.feeder.deck)
        if self.settings.locked_taps:
            lock_taps(engine, self.settings.taps)
        model = self._model or known_model(self.feeder)
        topology = read_topology(engine, batch) if model is None else None  # the deck alone
        if model is not None:
            neighbourhoods = model.neighbourhood_buses
        elif self.feeder.neighbourhoods is not None:
            neighbourhoods = self.feeder.neighbourhood_buses() or {}
        else:  # the same deck, the same groups
            neighbourhoods = derive_neighbourhoods(topology, self.feeder.neighbourhood_count)
        distances = model.distances if model is not None else distances_km(topology)
        if self._index is None:
            self._index = FeederIndex(engine, batch, neighbourhoods, distances)
        else:  # the same deck compiled again gives the same index: kept (0.6 s of an undo on the 8500-node feeder)
            engine.Text.Command("MakeBusList")  # what making it did to the engine (FeederIndex)
        index = self._index
        self._regulators = Regulators(engine, index.regulated_windings)
        self._generators = GeneratorSlots(engine, batch, index)
        self._controls = Controls(engine, self._regulators)  # what a solve's controls move: taps, capacitors
        self._solver = Solver(engine, self._controls, self._generators)
        self._loads = Loads(engine, batch, index, neighbourhoods)
        self._hours = HourRunner(engine, batch, index, self._generators, self._loads, self._regulators, self._controls,
                                 self._solver, self.settings.voltage_limits_pu)
        if model is None:  # the deck alone: before any change adds elements
            feeder = self.feeder
            source = ("file" if feeder.neighbourhoods is not None else "derived", len(neighbourhoods))
            # The same deck, the same places: from the graph read above unless FeederIndex's MakeBusList added buses
            # (elements a deck defines after its Calcvoltagebases); reading it again took 0.47 s of a start on the
            # 8500-node feeder and 2 s on a 52,000-bus one.
            placed = topology if tuple(engine.Circuit.AllBusNames()) == topology.buses else read_topology(engine, batch)
            coordinates = place_coordinates(placed)
            facts = views.feeder_facts(engine, index, feeder.name, feeder.master, feeder.sha256, source, coordinates)
        self._snapshot = self._read_snapshot(self._solver.solve("the base case"))
        self._base_snapshot = self._snapshot
        if model is None:  # where generators go is the deck's: read from its base case
            sites = read_generator_sites(batch, topology, energised_buses(engine), deck_refusals(self.feeder))
            model = remember_model(self.feeder, FeederModel(neighbourhoods, coordinates, facts, sites, distances))
        self._model = model
        self._customer_pv = CustomerPV(engine, batch, index, self._generators, self._trial, model.sites)
        self._trial_loads = TrialLoads(engine, index, model.sites, self._trial)
        self._pristine = True  # nothing applied since the compile: a rebuild need not compile again

    def _read_snapshot(self, vmag_pu: np.ndarray | None = None, sequence: int | None = None) -> Snapshot:
        if vmag_pu is None:
            vmag_pu = np.asarray(self._engine.Circuit.AllBusMagPu())
        inverters = self._generators.inverters
        return read_snapshot(self._engine, self._batch, self._index, self._generators.conductor_nodes(),
                             self.sequence if sequence is None else sequence, self.settings.voltage_limits_pu,
                             vmag_pu, inverters.conductor_nodes() if inverters.has_pvsystems else None)

    # ------------------------------------------------------------------ changes with rollback
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
        controls = self._controls.state()
        try:
            change()
            magnitudes = self._solver.solve(what)
        except Exception as error:
            self._solver.roll_back(undo, controls)
            if isinstance(error, SimulationError):
                raise NotConvergedError(f"{error}; the change was rolled back and the grid is unchanged",
                                        field=getattr(error, "field", None)) from error
            raise
        if dry_run:  # `read`: a lean reading instead of the whole snapshot (a study's trial)
            preview = read(magnitudes) if read else self._read_snapshot(magnitudes, sequence=self.sequence + 1)
            self._solver.roll_back(undo, controls)
            return preview
        self.sequence += 1
        if self._replaying:  # a rebuild reads the state once, after its last op
            return Pending(self.sequence)
        self._snapshot = self._read_snapshot(magnitudes)
        return self._snapshot

    def _trial(self, what: str, change: Callable[[], None], undo: Callable[[], None],
               read: Callable[[np.ndarray], Any]) -> Any:
        """A study's trial: the change solved, read with `read`, and taken back (a dry run)."""
        return self._apply(what, change, undo, dry_run=True, read=read)

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

    def rebuild(self, ops: Sequence[Mapping[str, Any]], sequence: int | None = None) -> list[dict[str, Any]]:
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
            bus, nodes, kv, conn, name = generator_connection(self._index, self._model.sites, bus, phases, kw, phase,
                                                              prefix)
            settings = normalize_inverter(inverter, kw)
            existing = self._generators.get(name)
            created = existing is None or not existing.enabled
            change, undo = self._generators.change(bus, phases, nodes, kv, name, kw, settings, conn)
            snapshot = self._apply(f"generator {name} at {kw} kW", change, undo, dry_run)
            if not dry_run:
                self._generators.record(Generator(name, bus, phases, nodes, float(kw), True, kv, settings, conn))
            described = {"inverter": settings} if settings is not None else {}
            return Change({"type": "add_generator", "sequence": snapshot.sequence, "generator": name, "bus": bus,
                           "phases": phases, "nodes": nodes, "kw": float(kw), "kv": kv, "conn": conn, **described,
                           "created": created, "updated": not created, **_dry(dry_run)}, snapshot)

    def remove_generator(self, name: str, dry_run: bool = False) -> Change:
        """Take out a generator added through the API (it stays disabled in the engine)."""
        key = name.lower() if isinstance(name, str) else ""
        with self._lock:
            generators = self._generators
            generator = generators.get(key)
            if generator is None or not generator.enabled:
                known = ", ".join(sorted(g.name for g in generators.enabled())) or "none"
                raise NotFoundError(f"name: no generator {name!r}; present: {known}", field="name")
            active = generators.inverters.active(key)
            snapshot = self._apply(f"removing {key}", lambda: generators.put(key, None, None),
                                   lambda: generators.put(key, generator, active), dry_run)
            if not dry_run:
                generator.enabled = False
            return Change({"type": "remove_generator", "sequence": snapshot.sequence, **generator.describe(),
                           **_dry(dry_run)}, snapshot)

    def scale_neighbourhood_loads(self, neighbourhood: int, factor: float, dry_run: bool = False) -> Change:
        """Multiply kW and kvar of every load in a neighbourhood; successive factors compound."""
        with self._lock:
            loads = self._loads
            if isinstance(neighbourhood, bool) or not isinstance(neighbourhood, int) \
                    or not loads.has_neighbourhood(neighbourhood):
                raise NotFoundError(f"neighbourhood: expected one of {loads.neighbourhood_ids()}, "
                                    f"got {neighbourhood!r}", field="neighbourhood")
            check_number(factor, "factor", 0.0, MAX_FACTOR)
            previous = loads.factor(neighbourhood)
            cumulative = previous * factor
            if cumulative > MAX_CUMULATIVE_FACTOR:
                raise SimulationError(f"factor: the cumulative factor of neighbourhood {neighbourhood} would be "
                                      f"{cumulative:g}, above the limit {MAX_CUMULATIVE_FACTOR:g}", field="factor")
            snapshot = self._apply(f"neighbourhood {neighbourhood} x{factor}",
                                   lambda: loads.scale(neighbourhood, cumulative),
                                   lambda: loads.scale(neighbourhood, previous), dry_run)
            if not dry_run:
                loads.record_factor(neighbourhood, cumulative)
            return Change({"type": "modify_load_neighbourhood", "sequence": snapshot.sequence,
                           "neighbourhood": neighbourhood, "factor": float(factor), "cumulative_factor": cumulative,
                           "loads_changed": [self._index.load_names[i]
                                             for i in self._index.neighbourhood_loads[neighbourhood]],
                           **_dry(dry_run)}, snapshot)

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

    @property
    def transformer_names(self) -> list[str]:
        """The transformers in the engine's order (the order of the snapshot's transformer arrays)."""
        return self._index.transformer_names

    def buses(self) -> list[dict[str, Any]]:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators on it."""
        with self._lock:
            return views.buses(self._index, self._generators.enabled(), self._model.coordinates)

    def buses_json(self) -> bytes:
        """buses() as JSON, kept until the generators on the buses change (nothing else in a row does: the index
        and coordinates are the deck's); then joined again from rows cut once (views.BusRowsJson)."""
        with self._lock:
            generators = self._generators.enabled()
            key = tuple((g.name, g.bus) for g in generators)
            if self._buses_json is None or self._buses_json[0] != key:
                if self._bus_rows is None:
                    self._bus_rows = views.BusRowsJson(self._index, self._model.coordinates)
                self._buses_json = (key, self._bus_rows.render(generators))
            return self._buses_json[1]

    def bus(self, name: str) -> dict[str, Any]:
        """One bus with its node voltages, loads, generators and the lines that touch it."""
        with self._lock:
            bus = check_bus(self._index, name, "name")
            return views.bus(self._index, self._snapshot, bus, self._loads.on_bus(bus), self.generators(),
                             self._model.coordinates)

    def generators(self) -> list[dict[str, Any]]:
        """Generators added through the API: set-point and delivered power from the last solve (an inverter
        generator's row adds its settings, `mode`, `kva` and `curtailed_kW`)."""
        with self._lock:
            arrays = self._snapshot.arrays
            return self._generators.rows(arrays["generator_power"], arrays["inverter_power"])

    def neighbourhoods(self) -> list[dict[str, Any]]:
        """Each neighbourhood: buses, loads, base and current kW/kvar set-points, cumulative factor."""
        with self._lock:
            return self._loads.neighbourhood_rows()

    def transformers(self) -> list[dict[str, Any]]:
        """The regulators and other transformers: where they sit, their rating, loading and regulator tap."""
        with self._lock:
            return views.transformers(self._index, self._snapshot, self._regulators.steps())

    def feeder_facts(self) -> dict[str, Any]:
        """What the feeder is (`GET /feeders`): counts, voltage bases, source bus, neighbourhoods, warnings."""
        return dict(self._model.facts)

    def health(self) -> dict[str, Any]:
        return views.health(self._index, self._snapshot, len(self._generators.enabled()))

    # ------------------------------------------------------------------ study inputs
    def load_setpoints_kw(self) -> list[float]:
        """Each load's kW set-point in the engine's order (what a series or a study's hours multiply)."""
        with self._lock:
            return self._loads.setpoints()[0].tolist()

    def load_neighbourhoods(self) -> list[int | None]:
        """The neighbourhood of each load, in the engine's load order."""
        return self._loads.load_neighbourhoods()

    def customers(self) -> list[dict[str, Any]]:
        """Each customer: its load, where its PV connects, and the load's kW set-point in this state."""
        with self._lock:
            return self._customer_pv.customers(self._loads.setpoints()[0])

    def load_shapes(self) -> dict[str, Any]:
        """The deck's own load shapes as a yearly series applies them (`engine.load_shapes`): each load's shape name
        (None: it stays at its set-point) and each shape's multiplier for every hour of the year. Read once."""
        with self._lock:
            if self._load_shapes is None:  # the deck's loads are the first (trial loads come after them)
                shapes = read_load_shapes(self._engine, self._batch)
                self._load_shapes = {**shapes, "loads": shapes["loads"][:len(self._index.load_names)]}
            return self._load_shapes

    def regulator_tap_steps(self) -> dict[str, int]:
        """Each regulator's tap position in steps (0 = neutral)."""
        with self._lock:
            return self._regulators.steps()

    def disabled_generators(self) -> int:
        """Generators kept disabled in the engine (removed, refused, or a study's trials): each slows a solve.
        Customer PV generators are not counted: at most one per load, reused by every stochastic trial."""
        with self._lock:
            return self._generators.disabled_count(CUSTOMER_PV_PREFIX)

    def leftover_definitions(self) -> int:
        """Inverter definitions switched off (earlier settings, removed or refused ones, studies' trials)."""
        with self._lock:
            return self._generators.inverters.leftover_definitions()

    # ------------------------------------------------------------------ studies on a warm engine
    def checkpoint(self) -> Checkpoint:
        """This state, to come back to with `restore` (within this compile)."""
        with self._lock:
            return Checkpoint(self._compile_count, self.sequence, self._loads.setpoints(), self._controls.state(),
                              self._generators.keep(), self._loads.factors(), self._snapshot)

    def restore(self, kept: Checkpoint) -> None:
        """Put back the set-points, generators, taps and capacitors of `kept` and solve: the state it was taken in."""
        with self._lock:
            if kept.compile_count != self._compile_count:
                raise CheckpointLost("the circuit was recompiled since the checkpoint")
            self._loads.put_setpoints(kept.loads)
            self._generators.put_back(kept.generators)
            self._controls.restore(kept.controls)
            self._engine.Solution.Solve()
            self._loads.put_factors(kept.cumulative_factor)
            self.sequence, self._snapshot = kept.sequence, kept.snapshot

    def preview_generator_limits(self, bus: str, phases: int, kw: float, prefix: str,
                                 inverter: dict[str, Any] | None = None) -> tuple[list[int], dict]:
        """A study's trial: a generator connected as add_generator connects it (with `inverter`, checked
        settings without kVA: the trial's kVA is its kW), solved with the regulators and inverter controls
        acting, read lean (`engine.index.read_limits`), then taken back. Returns its nodes and the reading."""
        with self._lock:
            bus, nodes, kv, conn, name = generator_connection(self._index, self._model.sites, bus, phases, kw, None,
                                                              prefix)
            trial = normalize_inverter(inverter, kw, trial=True)  # checked by the study too: cheap, and safe
            settings = with_kva(trial, kw) if trial is not None else None
            change, undo = self._generators.change(bus, phases, nodes, kv, name, kw, settings, conn)
            generators = self._generators
            reading = self._trial(f"generator {name} at {kw} kW", change, undo,
                                  lambda magnitudes: read_limits(self._engine, self._batch, self._index,
                                                                 generators.any_elements, magnitudes,
                                                                 generators.inverters.has_pvsystems))
            return nodes, reading

    def preview_load_limits(self, loads: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict]:
        """A study's trial: new constant-power loads (`bus`, `kw`, `pf` lagging, and `phases` or `nodes`) connected
        as `engine.trial_loads` connects them, solved with the regulators acting, read lean
        (`engine.index.read_limits`), then taken back. Returns each load as connected and the reading."""
        with self._lock:
            generators = self._generators
            return self._trial_loads.preview_limits(
                loads, lambda magnitudes: read_limits(self._engine, self._batch, self._index, generators.any_elements,
                                                      magnitudes, generators.inverters.has_pvsystems))

    def trial_loads(self) -> int:
        """Studies' trial load elements kept (disabled) in the engine: each slows a solve a little."""
        with self._lock:
            return self._trial_loads.count()

    def generator_refusals(self) -> dict[str, str]:
        """The buses that cannot host a generator, each with the reason (`engine.sites`)."""
        with self._lock:
            return dict(self._model.sites.refused)

    def customer_connections(self) -> list[CustomerConnection]:
        """Each load's PV connection, in the engine's load order (read once per compile)."""
        with self._lock:
            return self._customer_pv.connections()

    def preview_customer_pv_limits(self, systems: list[tuple[int, float]], inverter: dict[str, Any] | None = None
                                   ) -> dict[str, Any]:
        """A stochastic trial: PV at several customers at once, tried and taken back (`engine.customer_pv`)."""
        with self._lock:
            return self._customer_pv.preview_limits(systems, inverter)

    def run_hours(self, load_multipliers: np.ndarray, generator_multipliers: np.ndarray,
                  start: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Solve hour after hour: each load at its set-point x its multiplier of the hour (rows: hours, columns:
        loads), each generator at its set-point x the generator multiplier; the controls act from where the hour
        before left them (`start`, for the first hour: `{"taps": steps by regulator, "banks": capacitor banks}` as
        the last call returned them; default the circuit's own). Returns one row per hour and the controls after the
        last hour (the same shape); the circuit is back in its own state afterwards. An inverter
        generator's irradiance is the multiplier (its kVA stays); with any, each hour adds generation_kVAR and
        curtailed_kW."""
        with self._kept() as kept:
            return self._hours.run(kept, load_multipliers, generator_multipliers, start)

    @contextlib.contextmanager
    def hour_state(self, load_multipliers: np.ndarray, generator_multiplier: float, what: str
                   ) -> Iterator[dict[str, Any]]:
        """The circuit held in one hour's state while the caller works on it (a study's trials start from it):
        exactly the first hour of `run_hours` from the circuit's own taps. Yields the lean reading of that
        state; the circuit is back in its own state afterwards, whatever the caller left."""
        with self._kept() as kept:
            yield self._hours.first_hour(kept, load_multipliers, generator_multiplier, what)

    @contextlib.contextmanager
    def _kept(self) -> Iterator[Checkpoint]:
        """This state kept while the caller works (under the lock), and put back afterwards, whatever it left."""
        with self._lock:
            kept = self.checkpoint()
            try:
                yield kept
            finally:
                self.restore(kept)

    # ------------------------------------------------------------------ checks
    def _user_paths(self, message: str) -> str:
        """OpenDSS's words about our scratch copy, with the user's folder where it names the copy's."""
        return message.replace(self._scratch.name, self.feeder.deck.root)

    def close(self) -> None:
        with self._lock:
            self._engine.Text.Command("Clear")
            self._scratch.cleanup()


def _dry(dry_run: bool) -> dict[str, bool]:
    """The `dry_run` flag of a preview's action (absent from applied changes)."""
    return {"dry_run": True} if dry_run else {}
