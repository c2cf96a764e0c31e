"""A change's request checked against a compiled feeder: the bus, the numbers and a generator's connection (as
`engine.sites` reads the feeder), each refused with a SimulationError naming its field and what was expected (the
API's 4xx answers)."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from engine.errors import NotFoundError, SimulationError
from engine.index import FeederIndex
from engine.sites import DELTA, WYE, GeneratorSites

MAX_GENERATOR_KW = 100_000.0
MAX_FACTOR = 10.0
MAX_CUMULATIVE_FACTOR = 100.0
#: An element name we make from a bus name: OpenDSS's names of public decks use hyphens (81 buses of the IEEE
#: 8500-node feeder, e.g. 221-312488), which the OpenDSS parser reads as part of the name; nothing that ends a token
#: (spaces, `=`, `.`, quotes, brackets) passes.
SAFE_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")


def check_bus(index: FeederIndex, bus: Any, field_name: str) -> str:
    """The bus's name as the engine has it (lower case), or NotFoundError with the closest names."""
    if not isinstance(bus, str) or not bus:
        raise SimulationError(f"{field_name}: expected a bus name (string)", field=field_name)
    key = bus.lower()
    if key not in index.bus_info:
        shown = bus if len(bus) <= 40 else bus[:40] + "…"
        close = difflib.get_close_matches(key[:64], index.bus_names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise NotFoundError(f"{field_name}: unknown bus {shown!r}{hint}; GET /buses lists the "
                            f"{len(index.bus_names)} buses", field=field_name)
    return key


def check_number(value: Any, name: str, low: float, high: float) -> None:
    """Finite numbers within bounds; booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SimulationError(f"{name}: expected a number", field=name)
    if not math.isfinite(value):
        raise SimulationError(f"{name}: expected a finite number, got {value}", field=name)
    if not low <= value <= high:
        raise SimulationError(f"{name}: expected a number from {low:g} to {high:g}, got {value:g}", field=name)


def generator_connection(index: FeederIndex, sites: GeneratorSites, bus: Any, phases: int, kw: Any,
                         phase: int | None, prefix: str = "gen") -> tuple[str, list[int], float, str, str]:
    """Check a generator request against the feeder: its bus, nodes, rated kV, connection (`wye` or `delta`) and
    name, or an error. How it connects is the system's (`engine.sites`): phase to neutral where the system is
    grounded, phase to phase where it is not, across both hot legs on a split-phase service."""
    bus = check_bus(index, bus, "bus_name")
    if bus in sites.refused:
        raise SimulationError(f"bus_name: {sites.refused[bus]}", field="bus_name")
    check_number(kw, "kw", 0.0, MAX_GENERATOR_KW)
    if phases not in (1, 3):
        raise SimulationError("phases: expected 1 or 3", field="phases")
    available, kv_ln = index.bus_info[bus]["nodes"], index.bus_info[bus]["kv_base_ln"]
    if phases == 3:
        if phase is not None:
            raise SimulationError("phase: only for 1-phase generators; omit it when phases is 3", field="phase")
        if not {1, 2, 3} <= set(available):
            raise SimulationError(f"phases: bus {bus} has phases {available}; a 3-phase generator needs "
                                  f"a bus with phases 1, 2 and 3", field="phases")
        nodes, kv = [1, 2, 3], kv_ln * math.sqrt(3)  # rated line-to-line
        conn = DELTA if bus in sites.ungrounded else WYE
    elif bus in sites.split_phase and set(sites.split_phase[bus]) <= set(available):
        legs = list(sites.split_phase[bus])
        if phase is not None:
            raise SimulationError(f"phase: bus {bus} is a split-phase 120/240 V service; a 1-phase generator there "
                                  f"connects across both hot legs (nodes {legs[0]} and {legs[1]}): omit phase",
                                  field="phase")
        nodes, kv, conn = legs, 2 * kv_ln, DELTA  # the legs are antiphase: twice the leg-to-neutral base
    else:
        node = available[0] if phase is None else phase
        if node not in available:
            raise SimulationError(f"phase: bus {bus} has phases {available}, not {node}", field="phase")
        if bus in sites.ungrounded:
            nodes, kv, conn = phase_pair(bus, available, node), kv_ln * math.sqrt(3), DELTA  # rated line-to-line
        else:
            nodes, kv, conn = [node], kv_ln, WYE  # rated line-to-neutral
    name = f"{prefix}_{bus}_{''.join(map(str, nodes))}"
    if not SAFE_NAME.match(name):  # bus names come from the circuit; this is a second line of defence
        raise SimulationError(f"bus_name: {bus!r} cannot host a generator", field="bus_name")
    return bus, nodes, kv, conn, name


def phase_pair(bus: str, available: list[int], node: int) -> list[int]:
    """A 1-phase generator's two phases on a bus with no ground reference: `node` and the bus's next phase after
    it (1-2, 2-3, 3-1 on a 3-phase bus), in ascending order."""
    phases = [n for n in available if 1 <= n <= 3]
    if node not in phases:
        raise SimulationError(f"phase: bus {bus} has phases {phases}, not {node}", field="phase")
    if len(phases) < 2:
        raise SimulationError(f"bus_name: bus {bus} has no ground reference and one phase ({phases}): a generator "
                              f"there has no second phase to connect across", field="bus_name")
    after = phases[(phases.index(node) + 1) % len(phases)]
    return sorted((node, after))
