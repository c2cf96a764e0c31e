"""Studies' trial loads: new constant-power loads (an EV charger, a heat pump) tried at one or many buses at once.

A trial load is an OpenDSS Load of model 1 (constant P and Q) at a lagging power factor. OpenDSS keeps a model-1
load at constant power only between its `vminpu` and `vmaxpu`: below `vminpu` it draws through an admittance
interpolated down to its `vlowpu` one, above `vmaxpu` through a fixed admittance (DSS C-API `Load.pas`,
`DoConstantPQLoad`). Ours use `vminpu=0.5 vmaxpu=1.5` (as our generators do) with `vlowpu` at its default 0.5, so
a trial load is constant power from 0.5 to 1.5 pu: every state a study judges (limits near 0.95 and 1.05 pu) and
well beyond. `status=fixed` keeps it at its kW and kvar whatever the deck's `LoadMult` or shapes.

It connects as a trial generator does (`engine.checks.generator_connection`, `engine.sites`): 3-phase on nodes 1,
2, 3 where the bus has them (delta on a part with no ground reference), else 1-phase on the bus's first phase (to
neutral; phase to phase where ungrounded; across both hot legs at 240 V on a split-phase service). A caller may
give the nodes instead (a customer's own connection: `engine.customer_pv.customer_connection`).

One Load element per connection (`trial_load_<n>`) is made the first time a trial needs it and kept, disabled
between trials, so a study never recompiles per trial and an engine holds one per connection ever tried. They come
after the deck's loads in the engine's order, so the deck's loads stay the first ones (`engine.loads` and
`engine.index.read_snapshot` read only those).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from engine.checks import check_bus, check_number, generator_connection
from engine.customer_pv import Trial
from engine.errors import SimulationError
from engine.index import FeederIndex
from engine.sites import DELTA, WYE, GeneratorSites

TRIAL_LOAD_PREFIX = "trial_load_"
MAX_TRIAL_LOAD_KW = 100_000.0  # as a generator's bound (`engine.checks.MAX_GENERATOR_KW`)
MIN_PF = 0.5  # lagging; a planner's new loads (chargers, heat pumps) sit near 0.9 to 1.0
MAX_TRIAL_LOADS = 100_000  # loads in one trial
VMIN_PU, VMAX_PU = 0.5, 1.5  # constant power between these (see the module's docstring)


@dataclass(frozen=True)
class LoadConnection:
    """Where a trial load connects: its bus, phases, nodes, rated kV (line to neutral for a 1-phase wye one, line to
    line otherwise) and connection."""

    bus: str
    phases: int
    nodes: tuple[int, ...]
    kv: float
    conn: str

    def describe(self) -> dict[str, Any]:
        return {"bus": self.bus, "phases": self.phases, "nodes": list(self.nodes), "conn": self.conn}


def kvar_of(kw: float, pf: float) -> float:
    """The kvar a load of `kw` draws at lagging power factor `pf`."""
    return kw * math.tan(math.acos(pf))


class TrialLoads:
    """The trial loads of one compiled feeder (callers hold the circuit's lock); trials use the circuit's dry run."""

    def __init__(self, engine: Any, index: FeederIndex, sites: GeneratorSites, trial: Trial) -> None:
        self._engine, self._index, self._sites, self._trial = engine, index, sites, trial
        self._elements: dict[LoadConnection, str] = {}

    def count(self) -> int:
        """Trial load elements in the engine (all disabled between trials; each adds a little to a solve)."""
        return len(self._elements)

    def connection(self, item: Mapping[str, Any], field: str) -> LoadConnection:
        """One requested load's connection: by `phases` (the site rule) or by `nodes` (and `conn`, default wye,
        delta where the bus has no ground reference). Raises SimulationError naming `field`."""
        index, sites = self._index, self._sites
        if item.get("nodes") is None:
            phases = item.get("phases", 1)
            try:
                bus, nodes, kv, conn, _ = generator_connection(index, sites, item.get("bus"), phases, 0.0, None)
            except SimulationError as error:  # named as a trial load's fields are (`bus`, not `bus_name`)
                name = {"bus_name": "bus"}.get(error.field or "", error.field or "")
                message = str(error).split(": ", 1)[-1]
                raise type(error)(f"{field}.{name}: {message}", f"{field}.{name}") from error
            return LoadConnection(bus, phases, tuple(nodes), kv, conn)
        bus = check_bus(index, item.get("bus"), f"{field}.bus")
        if bus in sites.refused:
            raise SimulationError(f"{field}.bus: {sites.refused[bus]}", field=f"{field}.bus")
        nodes, available = item["nodes"], index.bus_info[bus]["nodes"]
        if not isinstance(nodes, (list, tuple)) or not 1 <= len(nodes) <= 3 or len(set(nodes)) < len(nodes) \
                or any(isinstance(n, bool) or n not in available or n == 0 for n in nodes):
            raise SimulationError(f"{field}.nodes: expected 1 to 3 distinct phase nodes of bus {bus} "
                                  f"({available}), got {nodes!r}"[:200], field=f"{field}.nodes")
        conn = item.get("conn") or (DELTA if bus in sites.ungrounded and len(nodes) != 2 else WYE)
        if conn not in (WYE, DELTA):
            raise SimulationError(f"{field}.conn: expected wye or delta, got {conn!r}"[:120], field=f"{field}.conn")
        kv_ln = index.bus_info[bus]["kv_base_ln"]
        if len(nodes) == 1:
            if conn == DELTA:
                raise SimulationError(f"{field}.conn: one node connects to neutral (wye)", field=f"{field}.conn")
            return LoadConnection(bus, 1, tuple(nodes), kv_ln, WYE)
        if len(nodes) == 2:  # phase to phase: across a service's hot legs at twice the leg's base, else line to line
            legs = sites.split_phase.get(bus)
            kv = 2 * kv_ln if legs is not None and set(legs) == set(nodes) else kv_ln * math.sqrt(3)
            return LoadConnection(bus, 1, tuple(sorted(nodes)), kv, DELTA)
        return LoadConnection(bus, 3, tuple(sorted(nodes)), kv_ln * math.sqrt(3), conn)

    def preview_limits(self, loads: Sequence[Mapping[str, Any]], read: Callable[[np.ndarray], Any]
                       ) -> tuple[list[dict[str, Any]], Any]:
        """A trial: each load (`bus`, `kw`, `pf` lagging, and `phases` or `nodes`) connected, solved with the
        regulators acting, read with `read`, then taken back: every trial load disabled again, the state as
        before. Loads on the same connection add up. Returns each load as connected (with `kv`, `kW`, `pf`) and
        the reading."""
        if not isinstance(loads, (list, tuple)) or not 1 <= len(loads) <= MAX_TRIAL_LOADS:
            raise SimulationError(f"loads: expected a list of 1 to {MAX_TRIAL_LOADS} loads", field="loads")
        connected, totals = [], {}
        for position, item in enumerate(loads):
            field = f"loads[{position}]"
            if not isinstance(item, Mapping):
                raise SimulationError(f"{field}: expected an object", field=field)
            connection = self.connection(item, field)
            kw, pf = item.get("kw"), item.get("pf", 1.0)
            check_number(kw, f"{field}.kw", 0.0, MAX_TRIAL_LOAD_KW)
            check_number(pf, f"{field}.pf", MIN_PF, 1.0)
            connected.append({**connection.describe(), "kv": connection.kv, "kW": float(kw), "pf": float(pf)})
            p, q = totals.get(connection, (0.0, 0.0))
            totals[connection] = (p + float(kw), q + kvar_of(float(kw), float(pf)))
        on = [(connection, p, q) for connection, (p, q) in totals.items() if p > 0]

        def change() -> None:
            for connection, p, q in on:
                self._put(connection, p, q, True)

        def undo() -> None:
            for connection, _, _ in on:
                if connection in self._elements:
                    self._put(connection, 0.0, 0.0, False)

        what = f"trial load at {connected[0]['bus']}" if len(connected) == 1 else f"{len(connected)} trial loads"
        return connected, self._trial(what, change, undo, read)

    def _put(self, connection: LoadConnection, kw: float, kvar: float, enabled: bool) -> None:
        """The connection's Load element at `kw` and `kvar`, on or off (made the first time, at this power)."""
        name = self._elements.get(connection)
        engine = self._engine
        if name is None:
            name = self._elements[connection] = f"{TRIAL_LOAD_PREFIX}{len(self._elements)}"
            engine.Text.Command(
                f"New Load.{name} bus1={connection.bus}.{'.'.join(map(str, connection.nodes))} "
                f"phases={connection.phases} conn={connection.conn} kv={connection.kv:.6f} kw={kw!r} kvar={kvar!r} "
                f"model=1 vminpu={VMIN_PU} vmaxpu={VMAX_PU} status=fixed")
        else:
            engine.Loads.Name(name)
            engine.Loads.kW(kw)
            engine.Loads.kvar(kvar)
        engine.Circuit.SetActiveElement(f"Load.{name}")
        engine.CktElement.Enabled(enabled)
