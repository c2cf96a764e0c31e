"""Read-only tables of a solved circuit for the table routes: buses, one bus, transformers, health.

Functions of what they show (the index maps, a snapshot, the generators, the loads, the map coordinates), so each
reads in one sitting; `OpenDSSCircuit` calls them under its lock.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import orjson

from engine.generators import Generator
from engine.index import FeederIndex
from engine.ratings import DEFAULT, OPENDSS_DEFAULT_AMPS
from engine.results import NUMBER_SLOT, Snapshot

#: Each bus's (x, y, "deck" | "placed"), from `engine.coordinates.place_coordinates`, fixed for a feeder.
Coordinates = Mapping[str, tuple[float, float, str]]


def buses(index: FeederIndex, generators: list[Generator], coordinates: Coordinates) -> list[dict[str, Any]]:
    """Every bus: nodes, base kV, coordinates (with where they came from), neighbourhood, distance, loads and the
    generators on it."""
    on_bus: dict[str, list[str]] = {}
    for generator in generators:
        on_bus.setdefault(generator.bus, []).append(generator.name)
    return [{**_placed(info, coordinates[bus]), "generators": on_bus.get(bus, [])}
            for bus, info in index.bus_info.items()]


class BusRowsJson:
    """buses()' rows as JSON, cut once around each bus's list of generators (the one part that changes between
    compiles), so a new generator costs a join, not a row per bus in Python (27 ms on the 8500-node feeder)."""

    def __init__(self, index: FeederIndex, coordinates: Coordinates) -> None:
        rows = [{**_placed(info, coordinates[bus]), "generators": NUMBER_SLOT} for bus, info in index.bus_info.items()]
        pieces = orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY).split(orjson.dumps(NUMBER_SLOT))
        self._parts: list[bytes] = [b"[]"] * (2 * len(pieces) - 1)
        self._parts[0::2] = pieces
        self._slot = {bus: 2 * k + 1 for k, bus in enumerate(index.bus_info)}

    def render(self, generators: list[Generator]) -> bytes:
        """The rows with these generators on their buses (the same bytes as orjson of buses())."""
        on_bus: dict[str, list[str]] = {}
        for generator in generators:
            if generator.bus in self._slot:
                on_bus.setdefault(generator.bus, []).append(generator.name)
        parts = self._parts.copy()
        for bus, names in on_bus.items():
            parts[self._slot[bus]] = orjson.dumps(names)
        return b"".join(parts)


def bus(index: FeederIndex, snapshot: Snapshot, name: str, loads: list[dict[str, Any]],
        generator_rows: list[dict[str, Any]], coordinates: Coordinates) -> dict[str, Any]:
    """One bus with its node voltages, loads, generators and the lines that touch it."""
    rows = [r for r in snapshot.bus_details if r["Bus"] == name]
    lines = [r for r in snapshot.line_flows if name in (r["Bus1"], r["Bus2"])]
    generators = [g for g in generator_rows if g["bus"] == name]
    return {**_placed(index.bus_info[name], coordinates[name]), "voltages": rows, "loads": loads,
            "generators": generators, "lines": lines, "sequence": snapshot.sequence}


def _placed(info: dict[str, Any], where: tuple[float, float, str]) -> dict[str, Any]:
    """A bus's row with its map position (`engine.coordinates`: the deck's, or placed) and `xy_source` after y."""
    x, y, source = where
    row: dict[str, Any] = {}
    for key, value in info.items():
        row[key] = x if key == "x" else y if key == "y" else value
        if key == "y":
            row["xy_source"] = source
    return row


def transformers(index: FeederIndex, snapshot: Snapshot, tap_steps: dict[str, int]) -> list[dict[str, Any]]:
    """The transformers: where they sit, their rating, loading, losses and, for a regulator, its tap."""
    arrays = snapshot.arrays
    return [{"name": name, "bus1": buses[0], "bus2": buses[1], "kva": kva,
             "loading_pct": float(loading), "losses_kW": float(losses), "tap": tap_steps.get(name)}
            for name, buses, kva, loading, losses in zip(
                index.transformer_names, index.transformer_buses, index.transformer_kva,
                arrays["transformer_loading_pct"], arrays["transformer_losses_kw"])]


def health(index: FeederIndex, snapshot: Snapshot, generators: int) -> dict[str, Any]:
    return {"ready": True, "converged": bool(snapshot.section("power_summary")["converged"]),
            "sequence": snapshot.sequence, "buses": len(index.bus_names), "generators": generators}


def feeder_facts(engine: Any, index: FeederIndex, name: str, master: str, sha256: str,
                 neighbourhoods: tuple[str, int], coordinates: Coordinates) -> dict[str, Any]:
    """What a feeder is, read once after its first compile (before any change adds elements): counts of what the
    deck holds, its voltage bases and source bus, where its neighbourhoods and coordinates come from, and what rests
    on a guess."""
    engine.Circuit.SetActiveElement("Vsource.source")
    source_bus = engine.CktElement.BusNames()[0].split(".")[0].lower()
    unrated = int(np.count_nonzero(index.line_norm_amps <= 0))
    default_rated = index.line_rating_source.count(DEFAULT) - unrated
    given = sum(source == "deck" for _, _, source in coordinates.values())
    placed = len(coordinates) - given
    warnings = []
    if default_rated:
        warnings.append(f"{default_rated} of {len(index.line_names)} lines are rated at OpenDSS's default "
                        f"({OPENDSS_DEFAULT_AMPS[0]:g} A normal, {OPENDSS_DEFAULT_AMPS[1]:g} A emergency): the deck "
                        f"gives them no rating, so their thermal limits are a guess (GET /lines: rating_source)")
    if unrated:
        warnings.append(f"{unrated} of {len(index.line_names)} lines have no rating at all (0 A: a line geometry whose "
                        f"wires give none): their loading is null and no thermal limit applies to them")
    if placed:
        warnings.append(f"{placed} of {len(coordinates)} buses have no coordinates in the deck: the map places them "
                        f"from their connected neighbours (GET /buses: xy_source)")
    source, count = neighbourhoods
    return {"name": name, "master": master, "sha256": sha256, "buses": len(index.bus_names),
            "nodes": len(index.node_names), "lines": len(index.line_names),
            "transformers": len(index.transformer_names), "loads": len(index.load_names),
            "regulators": int(engine.RegControls.Count()), "capacitors": int(engine.Capacitors.Count()),
            "generators": int(engine.Generators.Count()), "pv_systems": int(engine.PVsystems.Count()),
            "kv_bases": [float(kv) for kv in engine.Settings.VoltageBases()], "source_bus": source_bus,
            "neighbourhoods": {"source": source, "count": count},
            "coordinates": {"given": given, "placed": placed}, "distances": index.distance_source,
            "warnings": warnings}
