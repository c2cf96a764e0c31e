"""The circuit's interfaces, declared once.

`Circuit` is what the scenario registry, the routes and a study's inputs ask of a scenario's circuit, wherever its
engine lives: an `OpenDSSCircuit` in this process, or an `engine.pool.HostedCircuit` answered by an engine host
(`--engine-hosts N`). The proxy subclasses `Circuit` and inherits its reads, whose bodies ask the host by name; the
host's allowed calls are `FORWARDED`, computed from `Circuit`. So a read added here is forwarded and answered with
no other edit, a type checker follows both sides, and `tests/engine/test_interface.py` fails when `OpenDSSCircuit`
or the proxy gains a member the interface does not declare.

`StudyEngine` adds what a study does on a warm engine of its own (a worker's, never a scenario's): checkpoints,
trials, hour-by-hour runs, and the change verbs that `apply` dispatches to.
"""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from engine.customer_pv import CustomerConnection
from engine.feeder import Feeder
from engine.hours import Checkpoint
from engine.results import Change, Snapshot
from engine.settings import EngineSettings


def ask_host(circuit: object, verb: str, *args: Any) -> Any:
    """A read answered by the engine host of a proxy (`engine.pool.HostedCircuit.ask_host`), by its name."""
    return getattr(circuit, "ask_host")(verb, args)


class Circuit(Protocol):
    """One scenario's feeder, solved: its state, its changes and its tables."""

    # ---------------------------------------------------------------- state and changes (each side's own)
    @property
    def snapshot(self) -> Snapshot:
        """The last complete state."""
        ...

    @property
    def base_snapshot(self) -> Snapshot:
        """The base case as compiled (what a diff against base compares with)."""
        ...

    def apply(self, op: Mapping[str, Any], dry_run: bool = False) -> Change:
        """Apply one change given as an op; a dry run answers it and leaves the state as it was."""
        ...

    def rebuild(self, ops: Sequence[Mapping[str, Any]], sequence: int | None = None) -> list[dict[str, Any]]:
        """Recompile and apply these ops in order; returns each op's action."""
        ...

    def results(self) -> dict[str, Any]:
        """The last state's results, every section."""
        ...

    def close(self) -> None:
        """Free the engine."""
        ...

    # ---------------------------------------------------------------- plain-data reads (FORWARDED)
    # Their bodies are what an engine-host proxy inherits: the host answers each by its name. `OpenDSSCircuit`
    # implements every one itself.
    @property
    def transformer_names(self) -> list[str]:
        """The transformers in the engine's order (the order of the snapshot's transformer arrays)."""
        return ask_host(self, "transformer_names")

    def buses(self) -> list[dict[str, Any]]:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators on it."""
        return ask_host(self, "buses")

    def buses_json(self) -> bytes:
        """buses() as JSON (GET /buses' rows), kept between changes that leave them as they are."""
        return ask_host(self, "buses_json")

    def bus(self, name: str) -> dict[str, Any]:
        """One bus with its node voltages, loads, generators and the lines that touch it."""
        return ask_host(self, "bus", name)

    def generators(self) -> list[dict[str, Any]]:
        """Generators added through the API, with what they delivered in the last solve."""
        return ask_host(self, "generators")

    def neighbourhoods(self) -> list[dict[str, Any]]:
        """Each neighbourhood: buses, loads, base and current set-points, cumulative factor."""
        return ask_host(self, "neighbourhoods")

    def transformers(self) -> list[dict[str, Any]]:
        """The transformers: where they sit, rating, loading, losses and regulator tap."""
        return ask_host(self, "transformers")

    def feeder_facts(self) -> dict[str, Any]:
        """What the feeder is: name, master, sha256, counts, voltage bases, source bus, neighbourhoods, warnings."""
        return ask_host(self, "feeder_facts")

    def health(self) -> dict[str, Any]:
        """Ready, converged, sequence, and how many buses and generators."""
        return ask_host(self, "health")

    def load_setpoints_kw(self) -> list[float]:
        """Each load's kW set-point in the engine's order (what a series or a study's hours multiply)."""
        return ask_host(self, "load_setpoints_kw")

    def load_neighbourhoods(self) -> list[int | None]:
        """The neighbourhood of each load, in the engine's load order."""
        return ask_host(self, "load_neighbourhoods")

    def customers(self) -> list[dict[str, Any]]:
        """Each customer (load): where its PV connects, and its kW set-point in this state."""
        return ask_host(self, "customers")

    def generator_refusals(self) -> dict[str, str]:
        """The buses that cannot host a generator, each with the reason (`engine.sites`)."""
        return ask_host(self, "generator_refusals")

    def load_shapes(self) -> dict[str, Any]:
        """The deck's own load shapes: `loads`, each load's shape name (None: none), and `shapes`, each one's
        multiplier for every hour of the year (`engine.load_shapes`)."""
        return ask_host(self, "load_shapes")


#: Members each side implements itself (a state crosses from a host as a snapshot, not as plain data).
OWN_MEMBERS = ("snapshot", "base_snapshot", "apply", "rebuild", "results", "close")


def declared_members(protocol: type) -> list[str]:
    """The public members a protocol class declares itself (methods, properties and annotated attributes)."""
    names = [name for name, value in vars(protocol).items()
             if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))]
    return names + [name for name in vars(protocol).get("__annotations__", {}) if not name.startswith("_")]


#: The reads a host answers by name and the proxy forwards: every member of Circuit not in OWN_MEMBERS.
FORWARDED: tuple[str, ...] = tuple(name for name in declared_members(Circuit) if name not in OWN_MEMBERS)
#: Those of them that are properties (read without a call).
FORWARDED_PROPERTIES: frozenset[str] = frozenset(name for name in FORWARDED
                                                 if isinstance(vars(Circuit)[name], property))


class StudyEngine(Circuit, Protocol):
    """A circuit in this process, as a study's warm engine uses it (and as tests and notebooks drive it)."""

    feeder: Feeder
    master_file: Path
    settings: EngineSettings
    sequence: int

    def add_generator(self, bus: str, phases: int, kw: float, phase: int | None = None, dry_run: bool = False,
                      prefix: str = "gen", inverter: Any = None) -> Change: ...

    def remove_generator(self, name: str, dry_run: bool = False) -> Change: ...

    def scale_neighbourhood_loads(self, neighbourhood: int, factor: float, dry_run: bool = False) -> Change: ...

    def reset(self, dry_run: bool = False) -> Change: ...

    def regulator_tap_steps(self) -> dict[str, int]: ...

    def disabled_generators(self) -> int: ...

    def leftover_definitions(self) -> int: ...

    def checkpoint(self) -> Checkpoint: ...

    def restore(self, kept: Checkpoint) -> None: ...

    def preview_generator_limits(self, bus: str, phases: int, kw: float, prefix: str,
                                 inverter: dict[str, Any] | None = None) -> tuple[list[int], dict]: ...

    def preview_load_limits(self, loads: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict]: ...

    def trial_loads(self) -> int: ...

    def customer_connections(self) -> list[CustomerConnection]: ...

    def preview_customer_pv_limits(self, systems: list[tuple[int, float]], inverter: dict[str, Any] | None = None
                                   ) -> dict[str, Any]: ...

    def run_hours(self, load_multipliers: np.ndarray, generator_multipliers: np.ndarray,
                  start: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]: ...

    def hour_state(self, load_multipliers: np.ndarray, generator_multiplier: float, what: str
                   ) -> contextlib.AbstractContextManager[dict[str, Any]]: ...

