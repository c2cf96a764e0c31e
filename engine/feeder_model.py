"""What a compiled feeder is beyond its deck, read once per feeder in a process and shared by all its engines.

The neighbourhoods (derived when the deck has no `neighbourhoods.json`), the placed coordinates, where generators
can connect and the feeder's facts are read from an engine's first compile: the deck alone, its base case solved.
The same deck always gives the same answers, so the first engine of a feeder in a process reads them and every later
one (another scenario's, a study worker's next) takes them as they are. On the IEEE 8500-node feeder that reading is
0.29 s of a 0.83 s engine start (two topology reads: 0.24 s).

A feeder is known by `engine.feeder.Feeder`'s identity: its name, its deck's hash and its neighbourhoods (file or
count), so a changed deck or another count is another feeder. Nothing here is ever changed once remembered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

from engine.views import Coordinates
from engine.feeder import Feeder
from engine.sites import GeneratorSites


@dataclass(frozen=True)
class FeederModel:
    """`neighbourhood_buses`: id -> buses in the engine's order; `coordinates`: bus -> (x, y, "deck"|"placed");
    `facts`: what `GET /feeders` says of the feeder; `sites`: where and how a generator connects; `distances`: bus ->
    km from the source along the feeder, for decks whose energy meters give none."""

    neighbourhood_buses: dict[int, list[str]]
    coordinates: Coordinates
    facts: Mapping[str, Any]
    sites: GeneratorSites
    distances: Mapping[str, float]


_models: dict[Feeder, FeederModel] = {}
_lock = threading.Lock()


def known_model(feeder: Feeder) -> FeederModel | None:
    """The model an engine of this feeder read in this process, or None (this engine reads it)."""
    with _lock:
        return _models.get(feeder)


def remember_model(feeder: Feeder, model: FeederModel) -> FeederModel:
    """Keep the model for the feeder's later engines; two engines reading it at once keep the first."""
    with _lock:
        return _models.setdefault(feeder, model)


def forget_models() -> None:
    """Drop every remembered model, so the next engine of each feeder reads its own (tests use it to check that a
    fresh reading gives the same answers)."""
    with _lock:
        _models.clear()
