"""A change's request checked against a compiled feeder: the bus, the numbers and a generator's connection, each
refused with a SimulationError naming its field and what was expected (the API's 4xx answers)."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from engine.errors import NotFoundError, SimulationError
from engine.ieee123 import NO_GENERATOR_BUSES
from engine.index import FeederIndex

MAX_GENERATOR_KW = 100_000.0
MAX_FACTOR = 10.0
MAX_CUMULATIVE_FACTOR = 100.0
SAFE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


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


def generator_connection(index: FeederIndex, bus: Any, phases: int, kw: Any, phase: int | None, prefix: str = "gen"
                         ) -> tuple[str, list[int], float, str]:
    """Check a generator request against the feeder: its bus, nodes, rated kV and name, or an error."""
    bus = check_bus(index, bus, "bus_name")
    if bus in NO_GENERATOR_BUSES:
        raise SimulationError(f"bus_name: {NO_GENERATOR_BUSES[bus]}", field="bus_name")
    check_number(kw, "kw", 0.0, MAX_GENERATOR_KW)
    available = index.bus_info[bus]["nodes"]
    if phases == 3:
        if phase is not None:
            raise SimulationError("phase: only for 1-phase generators; omit it when phases is 3", field="phase")
        if not {1, 2, 3} <= set(available):
            raise SimulationError(f"phases: bus {bus} has phases {available}; a 3-phase generator needs "
                                  f"a bus with phases 1, 2 and 3", field="phases")
        nodes, kv = [1, 2, 3], index.bus_info[bus]["kv_base_ln"] * math.sqrt(3)  # rated line-to-line
    elif phases == 1:
        node = available[0] if phase is None else phase
        if node not in available:
            raise SimulationError(f"phase: bus {bus} has phases {available}, not {node}", field="phase")
        nodes, kv = [node], index.bus_info[bus]["kv_base_ln"]  # rated line-to-neutral
    else:
        raise SimulationError("phases: expected 1 or 3", field="phases")
    name = f"{prefix}_{bus}_{''.join(map(str, nodes))}"
    if not SAFE_NAME.match(name):  # bus names come from the circuit; this is a second line of defence
        raise SimulationError(f"bus_name: {bus!r} cannot host a generator", field="bus_name")
    return bus, nodes, kv, name
