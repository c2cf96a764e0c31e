"""Engine-side part of the stochastic hosting capacity: the loads as customers, and one trial of PV at many of
them at once.

A customer's PV connects where its load does (EPRI 1026640 places customer PV at customer locations):
- a 3-phase load: a 3-phase generator on nodes 1, 2, 3, rated line to line, as `add_generator` makes one (a
  3-phase delta load would get the same: the generator's own connection does not change the power it injects);
- a 1-phase load between a phase and neutral: a 1-phase generator on that node, rated line to neutral;
- a 1-phase load between two phases (a delta load, `bus1=35.1.2 conn=delta`; a 2-phase load likewise): a
  1-phase generator across the same two nodes, rated line to line;
- on a split-phase 120/240 V service (`engine.sites`), any load: a 1-phase generator across both hot legs at 240 V
  (the 8500-node feeder's customers are 2-phase loads `bus1=sx….1.2 kv=0.208`: 240 V across, not 208);
- on a part of the feeder with no ground reference, a 1-phase load to neutral: a 1-phase generator phase to phase
  from its node, as `add_generator` connects one there; a 3-phase one in delta.

Each is a plain constant-kW, unity-power-factor generator with `add_generator`'s parameters, made through the
same helper. One generator per customer (`cpv_<load index>`) is made the first time a trial needs it and reused
by every later trial and sample (disabled between trials), so an engine holds at most one per load however many
samples it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import opendssdirect

from engine.generators import GeneratorSlots
from engine.checks import phase_pair
from engine.index import FeederIndex, loadings, values
from engine.inverter_settings import normalize_inverter, with_kva
from engine.sites import DELTA, WYE, GeneratorSites

CUSTOMER_PV_PREFIX = "cpv_"


@dataclass(frozen=True)
class CustomerConnection:
    load: str
    bus: str
    phases: int
    nodes: tuple[int, ...]
    kv: float
    generator: str
    conn: str = WYE

    def describe(self) -> dict[str, Any]:
        return {"load": self.load, "bus": self.bus, "phases": self.phases, "nodes": list(self.nodes),
                "conn": self.conn}


def customer_connection(position: int, load: str, bus1: str, phases: int, bus_nodes: list[int], kv_base_ln: float,
                        sites: GeneratorSites) -> CustomerConnection:
    """Where a load's PV connects, from the load's own bus1 (`35.1.2`, or `47` for all the bus's phases) and the
    system there (`sites`: split-phase services, parts with no ground reference)."""
    bus, *given = bus1.lower().split(".")
    nodes = [int(n) for n in given if n != "0"] or bus_nodes[:max(phases, 1)]
    name = f"{CUSTOMER_PV_PREFIX}{position}"
    legs = sites.split_phase.get(bus)
    if legs is not None and set(legs) <= set(bus_nodes):  # a 240 V inverter across both hot legs
        return CustomerConnection(load, bus, 1, legs, 2 * kv_base_ln, name, DELTA)
    ungrounded = bus in sites.ungrounded
    if phases >= 3:
        return CustomerConnection(load, bus, 3, (1, 2, 3), kv_base_ln * math.sqrt(3), name,
                                  DELTA if ungrounded else WYE)
    if len(nodes) >= 2:  # line to line: a 1-phase delta load, or a 2-phase load
        return CustomerConnection(load, bus, 1, (nodes[0], nodes[1]), kv_base_ln * math.sqrt(3), name, DELTA)
    if ungrounded:
        return CustomerConnection(load, bus, 1, tuple(phase_pair(bus, bus_nodes, nodes[0])),
                                  kv_base_ln * math.sqrt(3), name, DELTA)
    return CustomerConnection(load, bus, 1, (nodes[0],), kv_base_ln, name)


#: How a trial is tried: (what, change, undo, read) -> the reading, the change taken back (the circuit's dry run).
Trial = Callable[[str, Callable[[], None], Callable[[], None], Callable[[np.ndarray], Any]], Any]


class CustomerPV:
    """The customers (loads) of one compiled feeder and trials of PV at several of them at once (callers hold
    the circuit's lock). Uses the circuit's generator slots, and its dry run to try a trial."""

    def __init__(self, engine: Any, batch: Any, index: FeederIndex, generators: GeneratorSlots, trial: Trial,
                 sites: GeneratorSites) -> None:
        self._engine, self._batch, self._index, self._sites = engine, batch, index, sites
        self._generators, self._trial = generators, trial
        self._connections: list[CustomerConnection] | None = None

    def connections(self) -> list[CustomerConnection]:
        """Each load's PV connection, in the engine's load order (read once per compile)."""
        if self._connections is None:
            batch, index = self._batch, self._index
            self._connections = [
                customer_connection(i, load, bus1, int(phases), index.bus_info[bus]["nodes"],
                                    index.bus_info[bus]["kv_base_ln"], self._sites)
                for i, (load, bus1, phases, bus) in enumerate(zip(
                    index.load_names, batch.Load.Bus1, values(batch.Load.Phases), index.load_bus))]
        return self._connections

    def customers(self, load_kw: np.ndarray) -> list[dict[str, Any]]:
        """Each customer: its load, where its PV connects, and the load's kW set-point (`load_kw`)."""
        return [{**connection.describe(), "kW": float(k)} for connection, k in zip(self.connections(), load_kw)]

    def preview_limits(self, systems: list[tuple[int, float]], inverter: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        """A stochastic trial: PV at several customers at once (`(customer index, kW)` pairs), solved with the
        regulators acting, read for judging (`judged_reading`), then taken back. With `inverter` (checked
        settings without kVA), each system is a smart inverter rated at its own kW: a new definition each
        (`engine.inverters`), so a trial answers the same wherever it runs."""
        connections = self.connections()
        chosen = [(connections[i], float(kw)) for i, kw in systems]
        what = f"PV at {len(chosen)} customers"
        if inverter is not None:
            change, undo = self._inverters(chosen, inverter)
            return self._trial(what, self._from_scratch(change), undo, self._judged_reading)
        generators = self._generators

        def change() -> None:  # (a customer may have had only inverter definitions: no Generator element yet)
            for connection, kw in chosen:
                if generators.has_element(connection.generator):
                    generators.set_plain(connection.generator, kw, True)
                else:
                    self._make_generator(connection, kw)

        def undo() -> None:
            for connection, _ in chosen:
                if generators.has_element(connection.generator):
                    generators.set_plain(connection.generator, 0.0, False)

        return self._trial(what, self._from_scratch(change), undo, self._judged_reading)

    def _from_scratch(self, change: Callable[[], None]) -> Callable[[], None]:
        """The change, and the trial's solve made to start from node voltages computed from scratch (a direct
        solve of the changed circuit, loads and generators as admittances) instead of from whatever the engine's
        last solve left. Those differ in the last digits with the trials an engine ran before (a rolled-back trial
        is solved again only to the power flow's tolerance, 1e-7 pu), and a trial solved from them differed by an
        ulp or so (IEEE 13: a sample bound at 1.0635720257634929 pu on one worker, ...492 on another): now a
        trial's answer is a function of the trial alone, on any engine, in any order."""
        def started() -> None:
            change()
            try:
                self._engine.Solution.SolveDirect()
            except opendssdirect.DSSException:  # no starting point from scratch: the solve starts where it is
                pass

        return started

    def _inverters(self, chosen: list[tuple[CustomerConnection, float]], inverter: dict[str, Any]
                   ) -> tuple[Callable[[], None], Callable[[], None]]:
        """The change that puts a new inverter definition at each chosen customer, connected where its load is
        (a line-to-line one across its two nodes), and the undo that switches them off again."""
        trial = normalize_inverter(inverter, 1.0, trial=True)  # checked by the study too: cheap, and safe

        def change() -> None:
            for connection, kw in chosen:
                create, _ = self._generators.change(connection.bus, connection.phases, list(connection.nodes),
                                                    connection.kv, connection.generator, kw, with_kva(trial, kw),
                                                    connection.conn)
                create()

        def undo() -> None:
            for connection, _ in chosen:
                self._generators.put(connection.generator, None, None)

        return change, undo

    def _judged_reading(self, vmag_pu: Any) -> dict[str, Any]:
        """What a trial is judged by (`studies.limits.first_violation`) and no more: node voltages, line and
        transformer loadings, substation power. Leaner than `engine.index.read_limits`, whose load, generation
        and loss totals a trial does not use (about a tenth of a trial's time)."""
        _, line_loading, xf_loading = loadings(self._batch, self._index)
        source_kw, source_kvar = (-x for x in self._engine.Circuit.TotalPower())
        return {"vmag_pu": vmag_pu, "line_loading_pct": line_loading, "transformer_loading_pct": xf_loading,
                "source_kw": source_kw, "source_kvar": source_kvar}

    def _make_generator(self, connection: CustomerConnection, kw: float) -> None:
        """Create the customer's generator at `kw` with add_generator's helper (kept disabled in our registry, as a
        trial's generator is)."""
        create, _ = self._generators.change(connection.bus, connection.phases, list(connection.nodes),
                                            connection.kv, connection.generator, kw, conn=connection.conn)
        create()
