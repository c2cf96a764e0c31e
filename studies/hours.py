"""The hours of the year a study runs at: named hours found from the study's shapes, and one hour's state prepared
on a circuit for trials to start from.

- `peak_load`: the hour with the highest total load kW (each load's kW set-point x its shape's multiplier);
- `daytime_minimum`: the lowest total load kW among hours whose generator shape is at least 0.5;
on a tie, the earliest hour. The shapes are a time series' (`load_shape`, `neighbourhood_shapes`,
`generator_shape`, by name), with its defaults: on a deck whose loads have shapes of their own, `load_shape` "deck"
ranks the hours by those (`time_series.DeckShapes`), as the hour's state is then prepared.

An hour's state is exactly what a 1-hour time series starting at that hour computes: the same multipliers
(`time_series.chunk_work`, `time_series.multipliers`), loads and existing generators scaled and solved with the
regulators acting from the scenario's taps (`OpenDSSCircuit.hour_state`, the first hour of `run_hours`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Union

import numpy as np

from engine.results import Snapshot
from engine.interface import StudyEngine
from studies import time_series
from studies.time_series import DECK, HOURS_PER_YEAR, DeckShapes, named_shape

NAMED_HOURS = ("peak_load", "daytime_minimum")
MAX_HOURS = 24
DAYTIME_GENERATOR_SHAPE = 0.5
DEFAULT_SHAPES: dict[str, Any] = {"load_shape": "residential", "neighbourhood_shapes": {}, "generator_shape": "pv"}

HourItem = Union[int, str]


class HourError(ValueError):
    """An hour that cannot be studied; `field` names it as the request does (`hours[3]`)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def yearly_load_kw(shapes: dict[str, Any], load_kw: list[float], load_neighbourhoods: list[int | None],
                   deck: DeckShapes | None = None) -> np.ndarray:
    """Total load kW set-point of every hour of the year: each load x its shape (its neighbourhood's own when it
    has one; with `load_shape` "deck", its own of `deck`), as a series would set them."""
    own = [int(nb) for nb in shapes["neighbourhood_shapes"]]
    on_deck = shapes["load_shape"] == DECK and deck is not None
    by_key: dict[str, float] = {}
    for key, kw in zip(time_series.load_shape_keys(load_neighbourhoods, own, deck.loads if on_deck else None),
                       load_kw):
        by_key[key] = by_key.get(key, 0.0) + kw
    total = np.zeros(HOURS_PER_YEAR)
    for key, kw in by_key.items():
        if key == "load":
            year = named_shape(shapes["load_shape"])
        elif key[0] == "n":
            year = named_shape(shapes["neighbourhood_shapes"][key[1:]])
        else:  # a deck's key: only when on the deck
            year = deck.years[key] if deck is not None else np.ones(HOURS_PER_YEAR)
        total += kw * year
    return total


def resolve_hours(items: list[HourItem], shapes: dict[str, Any], load_kw: list[float],
                  load_neighbourhoods: list[int | None],
                  deck: DeckShapes | None = None) -> list[dict[str, Any]]:
    """Each item as the hour it names: `name` (null for a number), `hour_of_year`, `load_kW` (the total load
    set-point then, the figure named hours are ranked by). Raises HourError naming the item."""
    if not 1 <= len(items) <= MAX_HOURS:
        raise HourError(f"hours: expected 1 to {MAX_HOURS} hours, got {len(items)}; omit it for the scenario's "
                        f"own state", "hours")
    yearly = yearly_load_kw(shapes, load_kw, load_neighbourhoods, deck)
    resolved = []
    for position, item in enumerate(items):
        field = f"hours[{position}]"
        if item == "peak_load":
            hour = int(np.argmax(yearly))  # the first of equal maxima: the earliest hour
        elif item == "daytime_minimum":
            daytime = np.flatnonzero(named_shape(shapes["generator_shape"]) >= DAYTIME_GENERATOR_SHAPE)
            if not daytime.size:
                raise HourError(f"{field}: no hour has a generator_shape multiplier of {DAYTIME_GENERATOR_SHAPE} or "
                                f"more", field)
            hour = int(daytime[np.argmin(yearly[daytime])])
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < HOURS_PER_YEAR:
            hour = item
        else:
            raise HourError(f"{field}: expected an hour of the year (0 to {HOURS_PER_YEAR - 1}) or one of "
                            f"{', '.join(NAMED_HOURS)}, got {item!r}"[:200], field)
        resolved.append({"name": item if isinstance(item, str) else None, "hour_of_year": hour,
                         "load_kW": float(yearly[hour])})
    return resolved


def hour_work(shapes: dict[str, Any], hour_of_year: int, deck: DeckShapes | None = None) -> dict[str, Any]:
    """What a task needs to prepare one hour: the multipliers of a 1-hour series starting then (`deck`: the
    deck's shapes, when `load_shape` is "deck")."""
    spec = {**shapes, "start_hour": hour_of_year, "hours": 1}
    return {**time_series.chunk_work(spec, 0, 1, deck), "hour_of_year": hour_of_year}


def scenario_reading(snapshot: Snapshot) -> dict[str, Any]:
    """The scenario's own state in the shape of a lean reading (`engine.index.read_limits`)."""
    return {**snapshot.arrays, "source_kw": snapshot.section("power_summary")["total_circuit_power_kW"]}


@contextlib.contextmanager
def starting_reading(circuit: StudyEngine, work: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The circuit in the state trials start from, and its lean reading: the scenario's own (work None), or the
    hour `hour_work` describes, held until the block ends and then undone."""
    if work is None:
        yield scenario_reading(circuit.snapshot)
        return
    load_multipliers, generator_multipliers = time_series.multipliers(circuit, work)
    with circuit.hour_state(load_multipliers[0], float(generator_multipliers[0]),
                            f"hour {work['hour_of_year']} of the year") as reading:
        yield reading
