"""Tasks: the unit of study work, and the one function that runs a task wherever it runs.

A task is a plain dict (it travels to worker processes and, later, cluster workers):
`{"kind": "hosting_capacity" | "time_series" | "batch", "engine": {...}, "ops": [...], "work": {...}}` —
the engine's settings, the scenario's state as ops (its exported changes), and the slice of work. Each worker
keeps one compiled engine per engine setting and rebuilds the scenario on it only when a task brings other
ops, so a study rebuilds its scenario at most once per worker, never per trial.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable

import orjson

from simulation_core import OpenDSSCircuit
from studies import batch, hosting_capacity, time_series

RUNNERS: dict[str, Callable[[OpenDSSCircuit, dict[str, Any]], dict[str, Any]]] = {
    "hosting_capacity": hosting_capacity.run,
    "time_series": time_series.run,
    "batch": batch.run,
}

# Warm engines belong to a thread: a cluster worker may run several tasks at once, each on its own engine.
_local = threading.local()


def _cache() -> tuple[dict[str, OpenDSSCircuit], dict[str, str]]:
    """This thread's warm engines (by engine settings) and the key of the ops each now holds."""
    if not hasattr(_local, "engines"):
        _local.engines, _local.prepared = {}, {}
    return _local.engines, _local.prepared


def engine_settings(locked_taps: dict[str, int] | None, voltage_limits_pu: tuple[float, float]) -> dict[str, Any]:
    return {"locked_taps": locked_taps, "voltage_limits_pu": list(voltage_limits_pu)}


def _key(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def warm_engine(settings: dict[str, Any]) -> OpenDSSCircuit:
    """This worker's engine for these settings, compiled on first use and kept."""
    engines, prepared = _cache()
    key = _key(settings)
    if key not in engines:
        engines[key] = OpenDSSCircuit(locked_taps=settings["locked_taps"],
                                      voltage_limits_pu=tuple(settings["voltage_limits_pu"]))
        prepared[key] = _key([])
    return engines[key]


def engine_for(settings: dict[str, Any], ops: list[dict[str, Any]]) -> OpenDSSCircuit:
    """The warm engine holding the scenario these ops add up to (rebuilt only when the ops differ)."""
    circuit, key, ops_key = warm_engine(settings), _key(settings), _key(ops)
    prepared = _cache()[1]
    if prepared.get(key) != ops_key:
        prepared.pop(key, None)  # if the rebuild fails, the engine holds nothing known
        circuit.rebuild(ops)
        prepared[key] = ops_key
    return circuit


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task on this process's warm engine; the engine is back in the scenario's state afterwards."""
    circuit = engine_for(task["engine"], task["ops"])
    return RUNNERS[task["kind"]](circuit, {**task["work"], "ops": task["ops"]})


def warm_up(settings: dict[str, Any]) -> None:
    """Worker start: compile the feeder once, before the first task arrives."""
    warm_engine(settings)
