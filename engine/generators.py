"""The generators of a circuit by slot: the API's, studies' trial generators and customers' PV.

A slot (`gen_67_123`) holds a plain Generator element (a constant-kW, unity-power-factor machine), inverter
definitions (`engine.inverters`), or both, one of them on. Removed or refused generators stay in the engine,
disabled, so their slot can be reused without rebuilding the system matrix. This part owns the records, the
Generator elements with their conductor-to-node map, and the inverter bank; the circuit owns one per compile and
holds its lock around every call.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from engine.index import FeederIndex, conductor_node_index, values
from engine.inverters import Definition, InverterBank, conductor_count, conn_property
from engine.sites import WYE


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
    conn: str = WYE  # "wye": phases to neutral; "delta": phase to phase (`engine.sites`)

    def describe(self) -> dict[str, Any]:
        described = {"name": self.name, "bus": self.bus, "phases": self.phases, "nodes": self.nodes,
                     "conn": self.conn, "kw": self.kw}
        if self.inverter is not None:
            described["inverter"] = self.inverter
        return described


@dataclass(frozen=True)
class KeptGenerators:
    """The slots as a checkpoint keeps them: copies of the records, and the definition on in each slot."""

    records: dict[str, Generator]
    definitions: dict[str, Definition]


class GeneratorSlots:
    """Generator records by slot name, their engine elements and the inverter definitions (callers hold the lock)."""

    def __init__(self, engine: Any, batch: Any, index: FeederIndex) -> None:
        self._engine, self._batch, self._index = engine, batch, index
        self._records: dict[str, Generator] = {}
        self._deck_conductors: dict[str, list[int]] = {}
        self.inverters = InverterBank(engine, batch, index.node_index)
        self._build_map()

    # ------------------------------------------------------------------ records
    def get(self, name: str) -> Generator | None:
        return self._records.get(name)

    def record(self, generator: Generator) -> None:
        self._records[generator.name] = generator

    def enabled(self) -> list[Generator]:
        return [g for g in self._records.values() if g.enabled]

    def disabled_count(self, except_prefix: str) -> int:
        """Records kept disabled (each slows a solve), those named with `except_prefix` not counted."""
        return sum(not g.enabled and not g.name.startswith(except_prefix) for g in self._records.values())

    def plain_setpoints(self) -> list[tuple[str, float]]:
        """The plain generators on, with their set-points (inverter generators follow by their irradiance)."""
        return [(name, g.kw) for name, g in self._records.items() if g.enabled and g.inverter is None]

    @property
    def any_elements(self) -> bool:
        """Any Generator element in the engine (a reading then sums their output)."""
        return bool(self._order)

    def has_element(self, name: str) -> bool:
        return name in self._elements

    # ------------------------------------------------------------------ engine elements
    def _build_map(self) -> None:
        """Map generator conductors to nodes (its nodes, then the grounded neutral if it has one), in the engine's
        order.

        Built from our own registry, since the engine cannot report a new element's nodes before a solve;
        redone only when a generator is created."""
        self._order = list(self._batch.Generator.Name)
        self._elements = set(self._order)
        conductor_nodes = []
        for name in self._order:
            generator = self._records.get(name)
            if generator is None:  # the deck's own generator: the engine knows its nodes since the compile
                conductor_nodes += self._deck_conductors.setdefault(
                    name, conductor_node_index(self._engine, f"Generator.{name}", self._index.node_index))
                continue
            conductor_nodes += [self._index.node_index[f"{generator.bus}.{n}"] for n in generator.nodes]
            conductor_nodes += [-1] * (conductor_count(generator.phases, generator.conn) - len(generator.nodes))
        self._conductor_node = np.array(conductor_nodes, dtype=int)

    def conductor_nodes(self) -> np.ndarray:
        return self._conductor_node

    def set_plain(self, name: str, kw: float, enabled: bool) -> None:
        """A Generator element's kW and state (a plain generator; `put` decides)."""
        engine = self._engine
        engine.Generators.Name(name)
        engine.Generators.kW(kw)
        engine.Circuit.SetActiveElement(f"Generator.{name}")
        engine.CktElement.Enabled(enabled)

    def put(self, name: str, record: Generator | None, definition: Definition | None) -> None:
        """The slot's elements as `record` (None: off) with `definition` the one on (None: none), at full
        irradiance: a plain record's Generator element at its kW, every other element of the slot off. A
        definition going off goes off before anything comes on."""
        self.inverters.switch_off_unless(name, definition)
        if name in self._elements:
            plain = record is not None and record.enabled and record.inverter is None
            self.set_plain(name, record.kw if record is not None else 0.0, plain)
        if definition is not None:
            self.inverters.switch_on(name, definition)

    def change(self, bus: str, phases: int, nodes: list[int], kv: float, name: str, kw: float,
               settings: dict[str, Any] | None = None, conn: str = WYE
               ) -> tuple[Callable[[], None], Callable[[], None]]:
        """The change that puts this generator at `kw` (creating its element the first time; with inverter
        `settings`, a new definition: `engine.inverters`) and the undo of it. `nodes`: one per phase to neutral
        (`wye`), or two for a 1-phase one phase to phase, or three for a 3-phase `delta` (`engine.sites`)."""
        existing = self._records.get(name)
        before = copy.copy(existing) if existing else None
        active = self.inverters.active(name)

        def change() -> None:
            if existing is None:
                self._records[name] = Generator(name, bus, phases, nodes, 0.0, enabled=False, kv=kv, conn=conn)
            if settings is not None:
                self.put(name, None, None)  # whatever the slot had on goes off first
                self.inverters.switch_on(name, self.inverters.define(name, kw, settings, bus, phases, nodes, kv,
                                                                     conn))
            elif name not in self._elements:
                self.put(name, None, None)
                self._engine.Text.Command(
                    f"New Generator.{name} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                    f"kv={kv:.6f} kw={kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5{conn_property(phases, conn)}")
                self._build_map()
            else:
                self.put(name, Generator(name, bus, phases, nodes, kw, True, kv, conn=conn), None)

        def undo() -> None:
            self.put(name, before, active)

        return change, undo

    @contextlib.contextmanager
    def without_output(self) -> Iterator[None]:
        """Every generator's output off meanwhile (plain ones at 0 kW, inverter definitions switched off, control
        first), then back as it was: a failed solve starts again from the feeder without them."""
        kw = np.asarray(values(self._batch.Generator.kW), dtype=float)
        inverters = list(self.inverters.active_definitions().values())
        if kw.size:
            self._batch.Generator.kW = np.zeros_like(kw)
        for definition in inverters:
            self.inverters.switch(definition, False)
        try:
            yield
        finally:
            if kw.size:
                self._batch.Generator.kW = kw
            for definition in inverters:
                self.inverters.switch(definition, True)

    # ------------------------------------------------------------------ checkpoints
    def keep(self) -> KeptGenerators:
        return KeptGenerators({name: copy.copy(g) for name, g in self._records.items()},
                              self.inverters.active_definitions())

    def put_back(self, kept: KeptGenerators) -> None:
        """Every slot as `kept` had it (slots made since go off, their records disabled)."""
        for name in self._records:
            self.put(name, kept.records.get(name), kept.definitions.get(name))
        self._records = {name: copy.copy(kept.records.get(name, generator))
                         for name, generator in self._records.items()}
        for generator in self._records.values():
            if generator.name not in kept.records:
                generator.enabled = False

    # ------------------------------------------------------------------ the generators table
    def rows(self, generator_power: np.ndarray, inverter_power: np.ndarray) -> list[dict[str, Any]]:
        """The enabled generators with their set-point and what they delivered in a snapshot. An inverter
        generator's row adds its settings, `mode`, `kva` and `curtailed_kW` (set-point less delivered)."""
        delivered = {name: generator_power[i] for i, name in enumerate(self._order) if i < len(generator_power)}
        rows = []
        for g in self.enabled():
            if g.inverter is None:
                power = delivered[g.name]
                rows.append({**g.describe(), "delivered_kW": float(power.real), "delivered_kVAR": float(power.imag)})
            else:
                power = self.inverters.delivered(g.name, inverter_power)
                rows.append({**g.describe(), "delivered_kW": float(power.real), "delivered_kVAR": float(power.imag),
                             "mode": g.inverter["mode"], "kva": g.inverter["kva"],
                             "curtailed_kW": float(g.kw - power.real)})
        return rows
