"""The engine side of smart-inverter generators: each definition's OpenDSS elements, created and switched in an
order that never crashes the engine, and their output read back.

A generator slot (`gen_67_123`) is either a plain Generator element (today's constant-kW machine) or an inverter
definition: a PVSystem, its XYcurves and, for volt-var and volt-watt, an InvControl (`inverter_settings` has the
form). Updating the generator may change its mode: the slot's Generator element is disabled and a definition
enabled, or the reverse; both kinds may exist side by side in the engine, one of them enabled.

Never crash. DSS C-API 0.14.5 kills the process (segmentation fault) when an InvControl's PVSystemList names a
PVSystem that is disabled, whether the InvControl is defined (`New`, enabled or not) or its list edited; a
PVSystem disabled under an enabled InvControl, or an InvControl enabled or disabled, is safe (tried one by one in
a fresh process, each of these sequences). So:
- each definition's elements are created together, the PVSystem first (enabled: a new element is) and its
  InvControl right after, listing only that PVSystem; nothing of a definition is ever edited afterwards, except
  the PVSystem's irradiance (a time series' hour, a retried solve);
- after that a definition is only switched: on, the PVSystem before its InvControl; off, the InvControl before its
  PVSystem.

Why a new definition for every add_generator, even one that changes only the kW: OpenDSS's inverter controls keep
state from one solve to the next (the last vars and watts they set, the voltage they saw) and stop within their
tolerances, so an element edited in place answers differently, by up to a few kW at a mode change, from the same
settings defined afresh (measured on this feeder at light load). A new definition answers exactly as the same
elements typed into a fresh engine (to 1e-8 pu), which is what the tests and docs/inverters.md's hand reproduction do.
Undo, a refused change or a dry run switch the previous definition back on. Disabled definitions stay in the
engine; a study's warm engine is recompiled past `MAX_LEFTOVER_DEFINITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import opendssdirect

from engine.errors import SimulationError
from engine.index import conductor_node_index, values
from engine.inverter_settings import curve_commands, invcontrol_command, pvsystem_properties

MAX_LEFTOVER_DEFINITIONS = 200  # disabled definitions cost little (300 slow a solve by about a quarter)


def conductor_count(phases: int, conn: str) -> int:
    """A Generator's or PVSystem's conductors in OpenDSS: its phases and a neutral, except a 3-phase delta's."""
    return phases if conn == "delta" and phases == 3 else phases + 1


def conn_property(phases: int, conn: str) -> str:
    """The text a delta element adds to its `New` command. A 3-phase delta says `conn=delta`; a 1-phase element
    across two phase nodes (`bus1=610.1.2`) is already phase to phase (its second conductor is the other phase),
    and is typed as customers' line-to-line PV always was (OpenDSS's `conn=delta` there forms its admittance a
    third as large and converges to the same answer)."""
    return " conn=delta" if conn == "delta" and phases == 3 else ""


@dataclass(eq=False)
class Definition:
    """One definition of an inverter generator: its PVSystem (named `element`, as is its InvControl) at `kw`,
    connected at `bus` on `nodes` (a 1-phase one on two nodes is line to line; a 3-phase `delta` one has no
    neutral)."""

    slot: str
    element: str
    kw: float
    settings: dict[str, Any]
    bus: str
    phases: int
    nodes: list[int]
    controlled: bool = False
    enabled: bool = True
    conn: str = "wye"


class InverterBank:
    """The inverter definitions of one compiled feeder, by generator slot, and which one is on in each slot.
    Owns the PVSystems' order and conductor map (read with a snapshot). Callers hold the circuit's lock."""

    def __init__(self, engine: Any, batch: Any, node_index: dict[str, int]) -> None:
        self._engine, self._batch, self._node_index = engine, batch, node_index
        self._definitions: dict[str, list[Definition]] = {}
        self._active: dict[str, Definition] = {}
        self._pv_order: list[str] = []
        self._pv_position: dict[str, int] = {}
        self._pv_definition: dict[str, Definition] = {}
        self._pv_conductors: list[int] = []  # each PVSystem's phase nodes and its neutral (-1), in the engine's order
        self._pv_conductor_node: np.ndarray | None = np.zeros(0, dtype=int)
        for element in batch.PVSystem.Name:  # the deck's own PVSystems: the engine knows their nodes
            self._pv_position[element] = len(self._pv_order)
            self._pv_order.append(element)
            self._pv_conductors += conductor_node_index(engine, f"PVSystem.{element}", node_index)
        self._pv_conductor_node = None if self._pv_order else self._pv_conductor_node

    # ------------------------------------------------------------------ definitions
    def define(self, slot: str, kw: float, settings: dict[str, Any], bus: str, phases: int, nodes: list[int],
               kv: float, conn: str = "wye") -> Definition:
        """New elements for this slot's next definition, enabled: the PVSystem (on the generator's connection),
        then its curves and InvControl (listing only this PVSystem, which is enabled as it is created: see the
        module's docstring)."""
        number = len(self._definitions.get(slot, ())) + 1
        element = f"{slot}_{number}"
        if not element.replace("_", "").replace("-", "").isalnum() or not element.isascii() or len(element) > 80:
            raise SimulationError(f"bus_name: {bus!r} cannot host an inverter", field="bus_name")
        engine = self._engine
        definition = Definition(slot, element, float(kw), settings, bus, phases, list(nodes), conn=conn)
        self._definitions.setdefault(slot, []).append(definition)
        self._pv_definition[element] = definition
        curves = (f"{element}_vv", f"{element}_vw")
        control = invcontrol_command(element, element, settings, *curves)
        try:
            engine.Text.Command(f"New PVSystem.{element} bus1={bus}.{'.'.join(map(str, nodes))} phases={phases} "
                                f"kv={kv:.6f} {pvsystem_properties(kw, settings)}{conn_property(phases, conn)}")
            for command in curve_commands(settings, *curves):
                engine.Text.Command(command)
            if control:
                engine.Circuit.SetActiveElement(f"PVSystem.{element}")
                if not engine.CktElement.Enabled():  # never so: the one sequence that crashes the engine
                    raise RuntimeError(f"PVSystem.{element} is off: an InvControl over it would crash the engine")
                engine.Text.Command(control)
                definition.controlled = True
        except opendssdirect.DSSException as error:  # never so either (checked numbers): leave nothing on
            for kind in ("InvControl", "PVSystem"):
                if engine.Circuit.SetActiveElement(f"{kind}.{element}") >= 0:
                    engine.CktElement.Enabled(False)
            definition.enabled = False
            self._map_pvsystems(list(self._batch.PVSystem.Name))
            raise SimulationError(f"inverter: OpenDSS refused the definition: {error}", field="inverter") from error
        self._map_pvsystems(self._pv_order + [element])  # a new element comes last in its class
        return definition

    def _map_pvsystems(self, order: list[str]) -> None:
        """The engine's PVSystems in its order, and their conductors' nodes (extended, not rebuilt, as they grow)."""
        if order[:len(self._pv_order)] != self._pv_order:  # never so (elements are only ever added)
            raise RuntimeError(f"the engine's PVSystems are not as mapped: {order[:len(self._pv_order)]}")
        for element in order[len(self._pv_order):]:
            d = self._pv_definition[element]  # its nodes, then the neutral if it has one
            ends = [*d.nodes, *[None] * (conductor_count(d.phases, d.conn) - len(d.nodes))]
            self._pv_conductors += [-1 if n is None else self._node_index[f"{d.bus}.{n}"] for n in ends]
            self._pv_position[element] = len(self._pv_position)
        self._pv_order = list(order)
        self._pv_conductor_node = None  # made from the list when a snapshot is read

    def switch(self, definition: Definition, on: bool) -> None:
        """On: the PVSystem, then its InvControl. Off: the InvControl, then its PVSystem."""
        engine = self._engine
        order = [("PVSystem", True), ("InvControl", definition.controlled)]
        for kind, present in (order if on else order[::-1]):
            if present:
                engine.Circuit.SetActiveElement(f"{kind}.{definition.element}")
                engine.CktElement.Enabled(on)
        definition.enabled = on

    def set_irradiance(self, definition: Definition, irradiance: float) -> None:
        self._engine.PVsystems.Name(definition.element)
        self._engine.PVsystems.Irradiance(float(irradiance))

    # ------------------------------------------------------------------ which definition is on in a slot
    def active(self, slot: str) -> Definition | None:
        return self._active.get(slot)

    def switch_off_unless(self, slot: str, definition: Definition | None) -> None:
        """The slot's definition on goes off, unless it is `definition` (first, before anything comes on)."""
        active = self._active.get(slot)
        if active is not None and active is not definition:
            self.switch(active, False)
            del self._active[slot]

    def switch_on(self, slot: str, definition: Definition) -> None:
        """`definition` on in its slot, at full irradiance (the slot's other definition already off)."""
        if self._active.get(slot) is not definition:
            self.switch(definition, True)
            self._active[slot] = definition
        self.set_irradiance(definition, 1.0)

    def active_definitions(self) -> dict[str, Definition]:
        """The definition on in each slot that has one (a checkpoint keeps these)."""
        return dict(self._active)

    def leftover_definitions(self) -> int:
        """Definitions switched off (earlier settings, removed or refused ones, studies' trials)."""
        return sum(not d.enabled for defs in self._definitions.values() for d in defs)

    @property
    def has_pvsystems(self) -> bool:
        """Any PVSystem in the engine (on or off): a snapshot then reads their powers."""
        return bool(self._pv_order)

    # ------------------------------------------------------------------ reading
    def conductor_nodes(self) -> np.ndarray:
        """Map PVSystem conductors to nodes (phases, then the grounded neutral) in the engine's order, from our
        registry (the engine cannot report a new element's nodes before a solve)."""
        if self._pv_conductor_node is None:
            self._pv_conductor_node = np.array(self._pv_conductors, dtype=int)
        return self._pv_conductor_node

    def outputs(self, multiplier: float = 1.0) -> dict[str, float]:
        """The enabled definitions together: delivered kW and kvar (positive injects), and curtailed kW (their
        available power, kW x irradiance, less what they deliver)."""
        totals = -np.asarray(values(self._batch.PVSystem.TotalPowers))
        delivered = [totals[self._pv_position[d.element]] for d in self._active.values()]
        available = sum(d.kw * multiplier for d in self._active.values())
        kw = float(sum(p.real for p in delivered))
        return {"kw": kw, "kvar": float(sum(p.imag for p in delivered)), "curtailed_kw": float(available - kw)}

    def delivered(self, slot: str, power: np.ndarray) -> complex:
        """What the slot's definition on delivered, from a snapshot's PVSystem powers (0 when none is on)."""
        definition = self._active.get(slot)
        position = self._pv_position.get(definition.element, len(power)) if definition else len(power)
        return power[position] if position < len(power) else 0j
