"""Tasks: the unit of study work, and the one function that runs a task wherever it runs.

A task is a plain dict (it travels to worker processes and cluster workers):
`{"kind": "hosting_capacity" | "load_hosting_capacity" | "time_series" | "batch" | "stochastic_hosting_capacity"
| "ev_adoption", "engine": EngineSettings,
"ops": [...], "work": {...}}` —
the engine's settings (`engine.settings`), the scenario's state as ops (its exported changes), and the slice of
work. Each worker keeps its compiled engines warm and rebuilds the scenario on one only when a task brings other
ops (or the engine has gathered too many leftover trial generators), so a study never recompiles per trial.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from engine.circuit import OpenDSSCircuit
from engine.interface import StudyEngine
from engine.inverters import MAX_LEFTOVER_DEFINITIONS
from engine.settings import EngineSettings
from studies import batch, ev_adoption, hosting_capacity, load_hosting_capacity, stochastic, time_series

RUNNERS: dict[str, Callable[[StudyEngine, dict[str, Any]], dict[str, Any]]] = {
    "hosting_capacity": hosting_capacity.run,
    "time_series": time_series.run,
    "batch": batch.run,
    "stochastic_hosting_capacity": stochastic.run,
    "load_hosting_capacity": load_hosting_capacity.run,
    "ev_adoption": ev_adoption.run,
}

MAX_LEFTOVER_GENERATORS = 20  # trial generators stay (disabled) in an engine and slow its solves: recompile past this
# (inverter trials leave a definition each, which slow solves far less: engine.inverters.MAX_LEFTOVER_DEFINITIONS)
#: On a feeder of thousands of nodes a recompile costs a second or more (the IEEE 8500-node feeder: 1.0-1.4 s here)
#: and disabled generators cost its solves nothing measurable (one bus's trials: 207 ms with none disabled, 202 ms
#: with 400): recompiling every 20 buses cost about 15 % of a hosting capacity study there. So an engine of a feeder
#: of LARGE_FEEDER_NODES or more keeps up to MAX_LEFTOVER_GENERATORS_LARGE (our IEEE 123 deck keeps 20, as before).
LARGE_FEEDER_NODES = 2_000
MAX_LEFTOVER_GENERATORS_LARGE = 400
#: Trial loads (one per connection tried, disabled between trials) cost a solve nothing measurable: on the IEEE
#: 8500-node feeder a re-solve took 1.2 ms with 1,200 of them disabled and 1.8 ms with none (the same work; noise).
#: So an engine keeps one per connection it ever tried, up to this (memory only): an EV adoption study on a feeder
#: of thousands of customers reuses them sample after sample instead of recompiling per sample.
MAX_LEFTOVER_TRIAL_LOADS = 20_000


@dataclass
class WarmEngine:
    circuit: StudyEngine
    settings: EngineSettings
    ops_key: str | None  # the ops the engine now holds (None: unknown, rebuild before use)


# This process's warm engines not in use. A task takes one (preferring one that already holds its scenario) and
# gives it back, so the engine compiled at worker start serves the first task whatever thread runs it, and a
# worker running several tasks at once gives each its own engine.
_idle: list[WarmEngine] = []
_idle_lock = threading.Lock()


def _key(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _new_engine(settings: EngineSettings) -> WarmEngine:
    return WarmEngine(OpenDSSCircuit(settings=settings), settings, _key([]))


def _take(settings: EngineSettings, ops_key: str) -> WarmEngine:
    with _idle_lock:
        mine = [warm for warm in _idle if warm.settings == settings]
        if mine:
            chosen = next((warm for warm in mine if warm.ops_key == ops_key), mine[0])
            _idle.remove(chosen)
            return chosen
    return _new_engine(settings)


def _give_back(warm: WarmEngine) -> None:
    with _idle_lock:
        _idle.append(warm)


def leftover_generator_limit(circuit: StudyEngine) -> int:
    """Disabled trial generators an engine keeps before it is recompiled: more on a large feeder."""
    nodes = len(circuit.snapshot.layout.node_bus)
    return MAX_LEFTOVER_GENERATORS_LARGE if nodes >= LARGE_FEEDER_NODES else MAX_LEFTOVER_GENERATORS


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task on a warm engine holding its scenario (rebuilt only when it holds other ops, or too many
    leftover trial generators); the engine is back in the scenario's state afterwards."""
    ops_key = _key(task["ops"])
    warm = _take(task["engine"], ops_key)
    try:
        if warm.ops_key != ops_key or warm.circuit.disabled_generators() > leftover_generator_limit(warm.circuit) \
                or warm.circuit.leftover_definitions() > MAX_LEFTOVER_DEFINITIONS \
                or warm.circuit.trial_loads() > MAX_LEFTOVER_TRIAL_LOADS:
            warm.ops_key = None  # if the rebuild fails, the engine holds nothing known
            warm.circuit.rebuild(task["ops"])
            warm.ops_key = ops_key
        return RUNNERS[task["kind"]](warm.circuit, {**task["work"], "ops": task["ops"]})
    except BaseException:
        warm.ops_key = None
        raise
    finally:
        _give_back(warm)


def warm_up(settings: EngineSettings) -> None:
    """Worker start: compile the feeder once, before the first task arrives."""
    _give_back(_new_engine(settings))
