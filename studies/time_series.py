"""Time series: a scenario over hours of measured load and sun, hour after hour, regulators carrying their taps.

Our measured load and PV shapes ship with our feeder (`Test_Systems/IEEE_123_Bus-G/shapes/`, see its
PROVENANCE.md). A deck whose loads have shapes of their own (`yearly=`, else `daily=`) is run on them instead
(`load_shape` "deck", the default there: `engine.load_shapes` reads them as OpenDSS's yearly mode applies them);
a load of such a deck without a shape stays at its set-point. A series is split into chunks of hours run one after
the other, each starting from the taps the last one left, so a long series can report progress and be cancelled
between chunks (shorter chunks on a feeder of thousands of nodes: `chunk_hours`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from engine.ieee123 import MODEL_DIR
from engine.interface import StudyEngine

SHAPES_DIR = MODEL_DIR / "shapes"
SHAPE_NAMES = ("residential", "commercial", "pv")
DECK = "deck"  #: load_shape: every load on its own shape from the deck
DEFAULT_LOAD_SHAPE = "residential"  #: ours, where the deck's loads have no shapes
HOURS_PER_YEAR = 8760
CHUNK_HOURS = 168  # a week per chunk, at most
#: A chunk's work grows with the feeder: an hour of the IEEE 8500-node feeder (8,531 nodes) solves and reads in
#: 50-90 ms on one core here (bench/studies_scale.py), so a week's chunk took 8-15 s and progress and a cancel waited
#: that long. Chunks hold about this many node-hours instead (whole days, at least one), about 2 s of work; a feeder
#: under 2,000 nodes keeps a week's chunks (our IEEE 123 deck: its answers and its job's task count as before).
CHUNK_NODE_HOURS = 336_000


def chunk_hours(nodes: int) -> int:
    """Hours per chunk of a series on a feeder of `nodes` nodes: a week, or fewer whole days on a large feeder."""
    fit = CHUNK_NODE_HOURS // max(nodes, 1)
    return CHUNK_HOURS if fit >= CHUNK_HOURS else max(24, fit // 24 * 24)

Shape = Union[str, list[float], np.ndarray]  # a name of ours, an inline list (one per hour studied), a year's array


@functools.cache
def named_shape(name: str) -> np.ndarray:
    """An 8760-hour shape shipped with the feeder."""
    values = np.loadtxt(SHAPES_DIR / f"{name}.csv", dtype=float)
    if values.shape != (HOURS_PER_YEAR,):
        raise ValueError(f"{name}.csv: expected {HOURS_PER_YEAR} values, got {values.shape}")
    return values


def shape_hours(shape: Shape, start_hour: int, hours: int) -> np.ndarray:
    """The multipliers of `hours` hours from `start_hour` (a named shape or a year's array wraps at the end of the
    year; an inline list is already one value per hour of the study)."""
    if isinstance(shape, (str, np.ndarray)):
        year = named_shape(shape) if isinstance(shape, str) else shape
        return year[(start_hour + np.arange(hours)) % HOURS_PER_YEAR]
    return np.asarray(shape, dtype=float)


@dataclass(frozen=True)
class DeckShapes:
    """The deck's own load shapes as a study uses them (`engine.load_shapes`): each load's shape name in the
    engine's order (None: it stays at its set-point), and `years`, a year's multipliers by the key loads follow:
    `deck:<name>`, and `one` for those that stay."""

    loads: list[str | None]
    years: dict[str, np.ndarray]

    @classmethod
    def of(cls, load_shapes: dict[str, Any]) -> "DeckShapes | None":
        """From the engine's `load_shapes()`; None when no load has a shape of its own."""
        if not any(load_shapes["loads"]):
            return None
        return cls(list(load_shapes["loads"]), {"one": np.ones(HOURS_PER_YEAR), **{
            f"deck:{name}": np.asarray(year, dtype=float) for name, year in load_shapes["shapes"].items()}})


def chunk_work(spec: dict[str, Any], first: int, count: int, deck: DeckShapes | None = None) -> dict[str, Any]:
    """What one chunk needs: the multipliers of its hours for each shape in use (never the whole year). With
    `load_shape` "deck", each load follows its own of `deck`."""
    on_deck = spec["load_shape"] == DECK and deck is not None
    every = {**(deck.years if on_deck else {"load": spec["load_shape"]}), "generator": spec["generator_shape"],
             **{f"n{nb}": shape for nb, shape in spec["neighbourhood_shapes"].items()}}
    return {"first_hour": first, "hours": count,
            "shapes": {key: shape_hours(shape, spec["start_hour"], spec["hours"])[first:first + count].tolist()
                       for key, shape in every.items()},
            "neighbourhoods": [int(nb) for nb in spec["neighbourhood_shapes"]], **({"deck": True} if on_deck else {})}


def load_shape_keys(load_neighbourhoods: list[int | None], own_shapes: list[int],
                    deck_loads: list[str | None] | None = None) -> list[str]:
    """Which shape each load follows: its neighbourhood's own (`n<id>`) when it has one; else, on the deck's
    shapes (`deck_loads`, each load's shape name), its own (`deck:<name>`, or `one`); else `load`."""
    if deck_loads is None:
        return [f"n{nb}" if nb in own_shapes else "load" for nb in load_neighbourhoods]
    return [f"n{nb}" if nb in own_shapes else (f"deck:{name}" if name else "one")
            for nb, name in zip(load_neighbourhoods, deck_loads)]


def multipliers(circuit: StudyEngine, work: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The multipliers of a chunk's hours: per load (rows: hours, columns: loads), and of the generators."""
    shapes = {key: np.asarray(values) for key, values in work["shapes"].items()}
    deck_loads = circuit.load_shapes()["loads"] if work.get("deck") else None
    per_load = load_shape_keys(circuit.load_neighbourhoods(), work["neighbourhoods"], deck_loads)
    return np.column_stack([shapes[key] for key in per_load]), shapes["generator"]


def shapes_followed(load_shape: Shape, neighbourhood_shapes: dict[str, Shape], load_neighbourhoods: list[int | None],
                    deck_loads: list[str | None]) -> dict[str, Any]:
    """What a result says of its load shapes: `source` "deck" (the deck's own) or "ours" (our measured ones, or
    inline), and the `names` the loads follow (an inline shape: "inline"; on the deck's, a load without a shape
    of its own stays at its set-point and adds no name)."""
    own = [int(nb) for nb in neighbourhood_shapes]
    names = set()
    for key in load_shape_keys(load_neighbourhoods, own, deck_loads if load_shape == DECK else None):
        shape = load_shape if key == "load" else neighbourhood_shapes.get(key[1:]) if key[0] == "n" else key
        if key != "one":
            names.add(shape.removeprefix("deck:") if isinstance(shape, str) else "inline")
    return {"source": "deck" if load_shape == DECK else "ours", "names": sorted(names)}


def run(circuit: StudyEngine, work: dict[str, Any]) -> dict[str, Any]:
    """A task: one chunk of hours, from the given taps (None: the scenario's own)."""
    load_multipliers, generator_multipliers = multipliers(circuit, work)
    initial_taps = circuit.regulator_tap_steps()
    rows, final = circuit.run_hours(load_multipliers, generator_multipliers, work.get("start"))
    for offset, row in enumerate(rows):
        row["hour"] = work["first_hour"] + offset
    return {"rows": rows, "final": final, "initial_taps": initial_taps}


def hour_rows_with_year_hour(rows: list[dict[str, Any]], start_hour: int) -> list[dict[str, Any]]:
    """Each hour with its hour of the year, in the order of the result's columns."""
    ordered = []
    for row in rows:
        ordered.append({"hour": row["hour"], "hour_of_year": (start_hour + row["hour"]) % HOURS_PER_YEAR,
                        **{k: v for k, v in row.items() if k != "hour"}})
    return ordered


def totals(rows: list[dict[str, Any]], initial_taps: dict[str, int]) -> dict[str, Any]:
    """Energies over the series (1 h per row), hours with violations, and tap steps moved (from the scenario's
    own taps before the first hour); with inverter generators, the energy they curtailed."""
    substation = np.array([row["substation_kW"] for row in rows])
    moved, before = 0, initial_taps
    for row in rows:
        moved += sum(abs(row["taps"][name] - before[name]) for name in before)
        before = row["taps"]
    curtailed = {"curtailed_kWh": float(sum(row["curtailed_kW"] for row in rows))} \
        if rows and "curtailed_kW" in rows[0] else {}
    return {"energy_imported_kWh": float(substation.clip(min=0).sum()),
            "energy_exported_kWh": float((-substation).clip(min=0).sum()),
            "generation_kWh": float(sum(row["generation_kW"] for row in rows)),
            "losses_kWh": float(sum(row["losses_kW"] for row in rows)),
            "hours_with_voltage_violations": sum(row["voltage_violations"] > 0 for row in rows),
            "hours_with_thermal_violations": sum(row["thermal_violations"] > 0 for row in rows),
            "tap_changes": moved, **curtailed}


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: one column per regulator tap."""
    return {**{k: v for k, v in row.items() if k != "taps"}, **{f"tap_{k}": v for k, v in row["taps"].items()}}
