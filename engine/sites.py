"""Where a compiled feeder can take a generator, and how it connects there, read from the model once per feeder.

Issue 28 asks for generators "connected as the system is":
- A bus that is not energised in the base case (a node above `topology.ENERGISED_PU`) cannot host one; the deck's
  own facts may add buses with their reasons (our IEEE 123 deck's open-point stubs: `engine.ieee123`).
- A bus on a part of the feeder with no ground reference (`Topology.ungrounded_buses`: a 3-wire system fed
  through delta windings) takes a generator phase to phase only: 3-phase in delta, 1-phase across two phases. A
  grounded wye there would float the system's neutral (IEEE 123's 480 V bus 610 answers 0.27 and 1.51 pu
  line-to-ground for a 78 kW grounded-wye unit, 0.997-1.014 pu for the same unit in delta).
- A split-phase (120/240 V) service bus takes a 1-phase generator across its two hot legs at 240 V, as a customer
  installs one (a residential inverter's output is 240 V across both legs of the service).
  Split-phase buses are the galvanic islands fed by a centre-tapped transformer: a 1-phase transformer with two
  windings on one bus that share one node (the centre tap) and end on two other nodes (the hot legs), as OpenDSS
  models one (`wdg=2 bus=x.1.0`, `wdg=3 bus=x.0.2`: the IEEE 8500-node feeder's 1,177 service transformers). Every
  bus of the island with both legs is a service bus; the legs are antiphase, so the voltage across them is twice
  the bus's line-to-neutral base.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from engine.topology import Topology

WYE, DELTA = "wye", "delta"


@dataclass(frozen=True)
class GeneratorSites:
    """What the model says about generator connections, by bus (lower-case names)."""

    refused: Mapping[str, str]  # bus -> why it cannot host a generator (the reason given to the user)
    ungrounded: frozenset[str]  # buses with no ground reference: phase to phase only
    split_phase: Mapping[str, tuple[int, int]]  # service bus -> its two hot legs' nodes


def read_generator_sites(batch: Any, topology: Topology, energised: frozenset[str],
                         deck_refusals: Mapping[str, str]) -> GeneratorSites:
    """The sites of a compiled feeder whose base case is solved (`energised`: `topology.energised_buses`)."""
    refused = {bus: f"{bus} is not energised in the base case (no node above 0.001 pu): it is cut off from the "
                    f"source" for bus in topology.buses if bus not in energised}
    refused.update({bus: reason for bus, reason in deck_refusals.items() if bus in topology.bus_index})
    island_of = {bus: i for i, island in enumerate(topology.islands) for bus in island}
    legs_by_island: dict[int, tuple[int, int]] = {}
    for bus, legs in centre_tapped_secondaries(batch).items():
        if bus in island_of:
            legs_by_island.setdefault(island_of[bus], legs)
    split_phase = {bus: legs for i, legs in legs_by_island.items() for bus in topology.islands[i]}
    return GeneratorSites(MappingProxyType(refused), topology.ungrounded_buses, MappingProxyType(split_phase))


def centre_tapped_secondaries(batch: Any) -> dict[str, tuple[int, int]]:
    """Buses on which a 1-phase transformer has two windings sharing one node (the centre tap) and ending on two
    distinct other nodes (the hot legs, in ascending order)."""
    found: dict[str, tuple[int, int]] = {}
    transformers = batch.Transformer
    if not len(transformers.Name):
        return found
    for specs, phases in zip(_values(transformers.Buses), _values(transformers.Phases)):
        if int(phases) != 1 or len(specs) < 3:
            continue
        windings = [(_bus(spec), _winding_nodes(spec)) for spec in specs[1:]]
        for i, (bus, (a, b)) in enumerate(windings):
            for other_bus, (c, d) in windings[i + 1:]:
                shared = {a, b} & {c, d}
                legs = sorted(({a, b} | {c, d}) - shared)
                if other_bus == bus and len(shared) == 1 and len(legs) == 2 and 0 not in legs:
                    found.setdefault(bus, (legs[0], legs[1]))
    return found


def _winding_nodes(spec: str) -> tuple[int, int]:
    """A 1-phase winding's two conductors' nodes as OpenDSS fills them: phase 1 then ground, unless given."""
    nodes = [1, 0]
    given = [int(x) for x in spec.split(".")[1:] if x.strip()]
    nodes[:len(given)] = given[:2]
    return nodes[0], nodes[1]


def _bus(spec: str) -> str:
    return spec.split(".", 1)[0].lower()


def _values(batch_property: Any) -> Any:
    return batch_property() if callable(batch_property) else batch_property
