"""The graph of one compiled feeder, read once per compile: buses, the elements joining them, loads, the deck's
coordinates, galvanic islands and which of them have a ground reference.

Read with the engine's batch calls (`altdss`), so the cost is linear in the feeder's size; the only per-element loop
is over power-delivery elements' open terminals, which OpenDSS exposes only element by element (about 20 ms on the
8,500-node feeder) and coordinates' "defined" flag, which has no batch getter (about 5 ms there; the batch JSON export
that carries it costs 45 ms).

Decisions (issue 28):
- An edge is *closed* when its element is enabled and no terminal has all its phase conductors open (`Open` commands,
  SwtControls, fuses). A disabled line (ckt5's normally open ties are `enabled=False`) or an open switch is kept in
  `edges` but joins nothing electrically: islands and neighbourhoods use closed edges only; coordinates use every
  edge, since a tie's far side still sits next to it.
- Islands are the parts joined galvanically by closed lines, series reactors and capacitors and autotransformers, not
  through transformers. An island has a ground reference when it holds a Vsource's bus, a transformer winding with a
  conductor on node 0 (a wye winding's neutral defaults to node 0: OpenDSS fills every conductor beyond the phases with
  0 unless the bus spec says otherwise; a corner-grounded delta or a split-phase centre tap, `x.1.0`/`x.0.2`, too), a
  wye winding with `Rneut >= 0` (grounded through its neutral impedance; a negative `Rneut`, the default, adds no
  neutral impedance: "the neutral is assumed to be open, or floating" unless its conductor is on node 0), a grounded
  wye shunt reactor, or a line conductor on node 0. Loads, capacitors and generators are not ground references: a
  wye load on an ungrounded system does not make it grounded.
- The source bus is Vsource.source's bus (the circuit's own source): the engine's first bus on every deck we tried.
- Coordinates: what the deck gave, except a bus at exactly (0, 0) outside the span of the others (see
  `deck_coordinates`). Loads: enabled ones, with their base kW.
- Energised (`energised_buses`, on a solved engine): a bus with a node above 1e-3 pu.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

#: A bus is energised when one of its nodes is above this (per unit, or volts where a bus has no voltage base).
ENERGISED_PU = 1e-3
WYE, DELTA = 0, 1  # OpenDSS's connection codes (altdss `Conns`, `Conn`)
#: km per unit of OpenDSS's length-unit codes (none, mi, kft, km, m, ft, in, cm, mm), as its ConvertLineUnits converts
#: them when an energy meter sums a zone's distances; "none" (0) counts as km, as there.
KM_PER_UNIT = {0: 1.0, 1: 1.609344, 2: 0.3048, 3: 1.0, 4: 1e-3, 5: 3.048e-4, 6: 2.54e-5, 7: 1e-5, 8: 1e-6}


@dataclass(frozen=True)
class Edge:
    """One power-delivery element between buses (distinct buses, terminal order; a 3-winding transformer has 3)."""

    kind: str  # "line", "transformer", "autotrans", "reactor" or "capacitor" (series ones only)
    name: str  # lower case, without the class
    buses: tuple[str, ...]
    switch: bool  # a line with switch=yes
    enabled: bool
    closed: bool  # enabled and every terminal has a closed conductor: it joins its buses
    galvanic: bool  # conductors joined (not through a transformer's windings)
    length_km: float = 0.0  # a line's length in km (its units converted as OpenDSS converts them); 0 for the rest


@dataclass(frozen=True)
class Topology:
    """A frozen description of one compiled feeder's graph (bus names lower case, in the engine's order)."""

    buses: tuple[str, ...]
    source_bus: str
    edges: tuple[Edge, ...]
    load_names: tuple[str, ...]
    load_buses: tuple[str, ...]
    load_kw: tuple[float, ...]
    coordinates: Mapping[str, tuple[float, float]]  # what the deck gave (see `deck_coordinates`)
    islands: tuple[tuple[str, ...], ...]  # galvanic islands, each in bus order, ordered by their first bus
    island_grounds: tuple[tuple[str, ...], ...]  # per island, what grounds it ("vsource.source", ...): empty if none
    bus_index: Mapping[str, int] = field(repr=False)

    @property
    def ungrounded_buses(self) -> frozenset[str]:
        """Buses in an island with no ground reference (energised or not)."""
        return frozenset(b for island, grounds in zip(self.islands, self.island_grounds) if not grounds for b in island)

    def bus_kw(self) -> dict[str, float]:
        """Total base kW of the loads at each bus that has loads (a 0 kW load still marks its bus)."""
        out: dict[str, float] = {}
        for bus, kw in zip(self.load_buses, self.load_kw):
            out[bus] = out.get(bus, 0.0) + kw
        return out

    def adjacency(self) -> tuple[list[list[int]], list[list[int]]]:
        """Neighbours of each bus by index, sorted: (through closed edges, through open or disabled ones only). A
        transformer joins its first winding's bus to each other winding's. One sort of all pairs: n log n."""
        n = len(self.buses)
        index = self.bus_index
        pairs: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
        for edge in self.edges:
            first = index[edge.buses[0]]
            pairs[edge.closed] += [(first, index[bus]) for bus in edge.buses[1:]]
        keys = {}
        for closed, found in pairs.items():
            a = np.array([p for pair in found for p in pair], dtype=np.int64).reshape(-1, 2)
            keys[closed] = np.unique(np.concatenate((a[:, 0] * n + a[:, 1], a[:, 1] * n + a[:, 0])))
        keys[False] = np.setdiff1d(keys[False], keys[True], assume_unique=True)
        out = []
        for closed in (True, False):
            start = np.searchsorted(keys[closed] // n, np.arange(n + 1)).tolist()
            neighbours = (keys[closed] % n).tolist()
            out.append([neighbours[start[i]:start[i + 1]] for i in range(n)])
        return out[0], out[1]


def read_topology(engine: Any, batch: Any) -> Topology:
    """Read a compiled feeder's graph (a solve is not needed; open terminals are read as they are now)."""
    buses = tuple(engine.Circuit.AllBusNames())
    index = {b: i for i, b in enumerate(buses)}
    opened = _open_elements(engine)
    edges: list[Edge] = []
    grounds: list[tuple[str, str]] = []  # (bus, what grounds it)

    line_names = [n.lower() for n in batch.Line.Name]
    line_specs = list(zip(batch.Line.Bus1, batch.Line.Bus2))
    line_enabled = _values(batch.Line.Enabled)
    line_conductors = _values(batch.Line.NumConductors)
    line_km = _values(batch.Line.Length) * [KM_PER_UNIT.get(int(u), 1.0) for u in _values(batch.Line.Units)]
    for name, specs, enabled, switch, phases, conductors, km in zip(
            line_names, line_specs, line_enabled, _values(batch.Line.Switch), _values(batch.Line.Phases),
            line_conductors, line_km):
        closed = bool(enabled) and f"line.{name}" not in opened
        edge = _edge("line", name, [_bus(s) for s in specs], bool(switch), bool(enabled), closed, True, index,
                     float(km))
        if edge:
            edges.append(edge)
        if closed:
            grounds += [(_bus(s), f"line.{name}") for s in specs if (conductors > phases or ".0" in s)
                        and _bus(s) in index and 0 in _nodes(s, int(phases), int(conductors))]

    for cls, kind, galvanic in ((batch.Transformer, "transformer", False), (batch.AutoTrans, "autotrans", True)):
        if not len(cls.Name):
            continue
        for name, specs, conns, rneut, phases, enabled in zip(
                cls.Name, _values(cls.Buses), _values(cls.Conns), _values(cls.RNeut), _values(cls.Phases),
                _values(cls.Enabled)):
            name = name.lower()
            closed = bool(enabled) and f"{kind}.{name}" not in opened
            edge = _edge(kind, name, [_bus(s) for s in specs], False, bool(enabled), closed, galvanic, index)
            if edge:
                edges.append(edge)
            if closed:
                grounds += [(_bus(s), f"{kind}.{name}") for s, conn, rn in zip(specs, conns, rneut)
                            if _bus(s) in index and _winding_grounded(s, int(conn), float(rn), int(phases))]

    for cls, kind in ((batch.Reactor, "reactor"), (batch.Capacitor, "capacitor")):
        if not len(cls.Name):
            continue
        for name, bus1, bus2, shunt, enabled, conn in zip(cls.Name, cls.Bus1, cls.Bus2, _values(cls.IsShunt),
                                                           _values(cls.Enabled), _values(cls.Conn)):
            name = name.lower()
            closed = bool(enabled) and f"{kind}.{name}" not in opened
            if not shunt:
                edge = _edge(kind, name, [_bus(bus1), _bus(bus2)], False, bool(enabled), closed, True, index)
                if edge:
                    edges.append(edge)
            elif kind == "reactor" and closed and int(conn) == WYE and _bus(bus1) in index:
                grounds.append((_bus(bus1), f"reactor.{name}"))  # a grounding reactor or bank

    source_bus = _source_bus(batch, buses)
    for name, bus1, enabled in zip(batch.Vsource.Name, batch.Vsource.Bus1, _values(batch.Vsource.Enabled)):
        if enabled and _bus(bus1) in index:
            grounds.append((_bus(bus1), f"vsource.{name.lower()}"))

    load_enabled = _values(batch.Load.Enabled)
    loads = [(n.lower(), _bus(b), float(kw)) for n, b, kw, on in zip(
        batch.Load.Name, batch.Load.Bus1, _values(batch.Load.kW), load_enabled) if on and _bus(b) in index]
    islands, island_grounds = _islands(buses, index, edges, grounds)
    return Topology(
        buses=buses, source_bus=source_bus, edges=tuple(edges),
        load_names=tuple(n for n, _, _ in loads), load_buses=tuple(b for _, b, _ in loads),
        load_kw=tuple(k for _, _, k in loads), coordinates=MappingProxyType(deck_coordinates(engine, batch, buses)),
        islands=islands, island_grounds=island_grounds, bus_index=MappingProxyType(index))


def distances_km(topology: Topology) -> dict[str, float]:
    """Each bus's distance from the source along the feeder, in km: the shortest path over closed edges, lines
    counting their length and transformers none, as an energy meter at the source sums its zone (OpenDSS's
    `Bus.Distance`); a bus the source does not reach is at 0, as outside every meter's zone. For decks without a
    meter, whose `Bus.Distance` is 0 everywhere. Dijkstra: n log n."""
    index = topology.bus_index
    neighbours: list[list[tuple[int, float]]] = [[] for _ in topology.buses]
    for edge in topology.edges:
        if edge.closed:
            first = index[edge.buses[0]]
            for bus in edge.buses[1:]:
                neighbours[first].append((index[bus], edge.length_km))
                neighbours[index[bus]].append((first, edge.length_km))
    distance = [math.inf] * len(topology.buses)
    start = index[topology.source_bus]
    distance[start] = 0.0
    queue = [(0.0, start)]
    while queue:
        here, bus = heapq.heappop(queue)
        if here > distance[bus]:
            continue
        for other, km in neighbours[bus]:
            if here + km < distance[other]:
                distance[other] = here + km
                heapq.heappush(queue, (here + km, other))
    return {name: d if d < math.inf else 0.0 for name, d in zip(topology.buses, distance)}


def energised_buses(engine: Any) -> frozenset[str]:
    """Buses with a node above ENERGISED_PU after a solve (the engine must hold a solved state). Nodes come bus by bus
    in the engine's bus order, so each bus's maximum is one `reduceat`."""
    node_bus = np.array([n.split(".", 1)[0] for n in engine.Circuit.AllNodeNames()])
    if not len(node_bus):
        return frozenset()
    magnitudes = np.nan_to_num(np.asarray(engine.Circuit.AllBusMagPu(), dtype=float))
    starts = np.flatnonzero(np.concatenate(([True], node_bus[1:] != node_bus[:-1])))
    peaks = np.maximum.reduceat(magnitudes, starts)
    return frozenset(node_bus[starts[peaks > ENERGISED_PU]].tolist())


def deck_coordinates(engine: Any, batch: Any, names: Iterable[str] | None = None) -> dict[str, tuple[float, float]]:
    """The coordinates the deck gave, by bus. X and Y come in batch; whether a bus has any comes bus by bus (there is
    no batch getter). A bus at exactly (0, 0) is taken as "none given" (exported decks write it for unknown
    positions) unless (0, 0) lies within the span of the deck's other coordinates widened by that span on every
    side (a local frame's origin, the source at a corner, say)."""
    names = list(engine.Circuit.AllBusNames() if names is None else names)
    xy = np.column_stack((np.asarray(batch.Bus.X(), dtype=float), np.asarray(batch.Bus.Y(), dtype=float)))
    keep = np.array([bus.CoordDefined for bus in batch.Bus], dtype=bool) & np.isfinite(xy).all(axis=1)
    origin = keep & (xy == 0).all(axis=1)
    if origin.any() and (keep & ~origin).any():
        others = xy[keep & ~origin]
        low, high = others.min(axis=0), others.max(axis=0)
        margin = (high - low).max()
        if not ((low - margin <= 0).all() and (high + margin >= 0).all()):
            keep &= ~origin
    return {names[i]: (float(xy[i, 0]), float(xy[i, 1])) for i in np.flatnonzero(keep)}


def _open_elements(engine: Any) -> set[str]:
    """'class.name' of enabled power-delivery elements with a terminal whose phase conductors are all open."""
    opened: set[str] = set()
    pd, element = engine.PDElements, engine.CktElement
    more = pd.First()
    while more:
        for terminal in range(1, element.NumTerminals() + 1):
            if element.IsOpen(terminal, 0) and all(
                    element.IsOpen(terminal, phase) for phase in range(1, element.NumPhases() + 1)):
                opened.add(element.Name().lower())
                break
        more = pd.Next()
    return opened


def _edge(kind: str, name: str, buses: list[str], switch: bool, enabled: bool, closed: bool, galvanic: bool,
          index: Mapping[str, int], length_km: float = 0.0) -> Edge | None:
    """An edge over the element's distinct known buses, or None if it touches fewer than two (buses reached only
    through disabled elements are not in the engine's bus list)."""
    distinct = tuple(dict.fromkeys(b for b in buses if b in index))
    if len(distinct) < 2:
        return None
    return Edge(kind, name, distinct, switch, enabled, closed, galvanic, length_km)


def _islands(buses: tuple[str, ...], index: Mapping[str, int], edges: Iterable[Edge],
             grounds: Iterable[tuple[str, str]]) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """Galvanic islands by union-find over closed galvanic edges, and what grounds each (sorted, distinct)."""
    parent = list(range(len(buses)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for edge in edges:
        if edge.closed and edge.galvanic:
            first = find(index[edge.buses[0]])
            for bus in edge.buses[1:]:
                other = find(index[bus])
                if other != first:
                    parent[max(first, other)] = min(first, other)
                    first = min(first, other)
    members: dict[int, list[str]] = {}
    for i, bus in enumerate(buses):
        members.setdefault(find(i), []).append(bus)
    reasons: dict[int, set[str]] = {}
    for bus, what in grounds:
        reasons.setdefault(find(index[bus]), set()).add(what)
    roots = sorted(members)  # each root is its island's lowest index: islands come in bus order
    return (tuple(tuple(members[r]) for r in roots), tuple(tuple(sorted(reasons.get(r, ()))) for r in roots))


def _winding_grounded(spec: str, conn: int, rneut: float, phases: int) -> bool:
    """Whether a transformer winding ties its bus's island to ground (see the module's docstring)."""
    nodes = _nodes(spec, phases, phases + 1)  # every transformer terminal has phases + 1 conductors
    if conn == DELTA:
        return 0 in nodes[:phases]  # the extra conductor of a delta winding is not connected
    return 0 in nodes or rneut >= 0


def _nodes(spec: str, phases: int, conductors: int) -> list[int]:
    """A terminal's node per conductor, as OpenDSS fills it: phases 1..n, every other conductor 0 (ground), then the
    nodes the bus spec names in order."""
    nodes = list(range(1, phases + 1)) + [0] * max(conductors - phases, 0)
    given = [int(x) for x in spec.split(".")[1:] if x.strip()]
    nodes[:len(given)] = given[:conductors]
    return nodes


def _source_bus(batch: Any, buses: tuple[str, ...]) -> str:
    """The bus of Vsource.source (the circuit's own source), else the first Vsource's, else the first bus."""
    names = [n.lower() for n in batch.Vsource.Name]
    if names:
        bus = _bus(batch.Vsource.Bus1[names.index("source") if "source" in names else 0])
        if bus in buses:
            return bus
    return buses[0]


def _bus(spec: str) -> str:
    return spec.split(".", 1)[0].lower()


def _values(batch_property: Any) -> Any:
    """altdss exposes some batch properties as callables and some as plain lists."""
    return batch_property() if callable(batch_property) else batch_property
