"""Where each line's thermal rating comes from: the deck, or OpenDSS's default because the deck gave none.

A line takes `NormAmps` and `EmergAmps` from its own properties, from its LineCode, or from its LineGeometry (or
`wires=`) and their WireData; when none of them sets a rating, OpenDSS rates it 400 A normal and 600 A emergency
(the defaults of Line, LineCode and LineGeometry: OpenDSS Line.pas, LineCode.pas). Its loading and every thermal
limit on it then rest on a guess. Whether the deck set a rating is read from the engine's JSON export of the objects,
which lists only the properties that were set (DSS C-API `DSSJSONFlags`: without `Full`, properties the user did
not fill are left out); setting a line's LineCode or geometry marks the line's own ratings as set too, so a line
with one is judged by that LineCode, geometry or its wires.

A line on a LineGeometry whose wires give no rating is rated 0 A by OpenDSS (not 400 A): it is "default" too.
Only lines at exactly the default values (or 0 A) are looked at, so a deck that rates every line (ours) costs nothing.
A deck that explicitly gives a line without a LineCode or geometry 400 A and 600 A is "deck"; one whose LineCode
leaves the ratings alone but whose line sets exactly 400 A and 600 A after it cannot be told from the default and is
called "default".
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

#: OpenDSS's line ratings when a deck gives none (Line and LineCode `normamps`, `emergamps`).
OPENDSS_DEFAULT_AMPS = (400.0, 600.0)
RATING_KEYS = ("NormAmps", "EmergAmps", "Ratings")
DECK, DEFAULT = "deck", "default"


def line_rating_sources(batch: Any, norm_amps: np.ndarray, emerg_amps: np.ndarray) -> list[str]:
    """"deck" or "default" for each line, in the engine's line order (`batch`: the engine's altdss view)."""
    at_default = (norm_amps == OPENDSS_DEFAULT_AMPS[0]) & (emerg_amps == OPENDSS_DEFAULT_AMPS[1])
    at_default |= (norm_amps == 0) & (emerg_amps == 0)  # a geometry whose wires have no rating gives 0 A
    sources = [DECK] * len(norm_amps)
    if not at_default.any():
        return sources
    rated_codes = _rated_names(batch.LineCode)
    codes = batch.Line.LineCode_str
    for i in np.flatnonzero(at_default).tolist():
        if codes[i]:
            rated = codes[i].lower() in rated_codes
        else:
            rated = _line_rated(batch, json.loads(batch.Line[i].to_json()))
        sources[i] = DECK if rated else DEFAULT
    return sources


def _line_rated(batch: Any, line: dict[str, Any]) -> bool:
    """A line without a LineCode: rated by its geometry or wires (and their WireData) if it has them, else by its
    own properties."""
    if line.get("Geometry"):
        geometry = json.loads(batch.LineGeometry[line["Geometry"]].to_json())
        return _has_rating(geometry) or any(_wire_rated(batch, w) for w in geometry.get("Conductors", []))
    if line.get("Wires"):
        return any(_wire_rated(batch, w) for w in line["Wires"])
    return _has_rating(line)


def _wire_rated(batch: Any, reference: str) -> bool:
    """A conductor named as the JSON names it (`WireData.busbar`, or a bare name): did the deck rate it?"""
    kind, _, name = reference.rpartition(".")
    collection = {"cndata": batch.CNData, "tsdata": batch.TSData}.get(kind.lower(), batch.WireData)
    try:
        return _has_rating(json.loads(collection[name].to_json()))
    except (KeyError, IndexError, ValueError):
        return False


def _rated_names(collection: Any) -> set[str]:
    """The objects of a class (LineCode) that set a rating, by lower-case name."""
    if not len(collection.Name):
        return set()
    return {item["Name"].lower() for item in json.loads(collection.to_json()) if _has_rating(item)}


def _has_rating(item: dict[str, Any]) -> bool:
    return any(key in item for key in RATING_KEYS)
