"""The response of `GET /feeders`: what each feeder the server serves is, read once after it compiled."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from web.schemas import CachedSchemaModel, Envelope


class NeighbourhoodSource(CachedSchemaModel):
    source: str = Field(description="file: from neighbourhoods.json beside the master; derived: from the feeder's "
                                    "graph; none: the feeder has none.")
    count: int


class CoordinateCounts(CachedSchemaModel):
    given: int = Field(description="Buses whose coordinates the deck gives.")
    placed: int = Field(description="Buses the deck gives no coordinates, placed by the server from their connected "
                                    "neighbours (GET /buses: xy_source placed). given + placed = buses.")


class FeederInfo(CachedSchemaModel):
    name: str = Field(description="The feeder's name: --feeder NAME=PATH, or the deck's circuit name.")
    default: bool = Field(description="true for the default scenario's feeder.")
    master: str = Field(description="The master file's name (never its folder).")
    sha256: str = Field(description="One hash of the files the deck compiles, as the server read them at start-up.")
    buses: int
    nodes: int
    lines: int
    transformers: int
    loads: int
    regulators: int
    capacitors: int
    generators: int = Field(description="Generators the deck itself has (not those added through the API).")
    pv_systems: int = Field(description="PV systems the deck itself has.")
    kv_bases: list[float] = Field(description="The deck's voltage bases, kV line to line.")
    source_bus: str
    neighbourhoods: NeighbourhoodSource
    coordinates: CoordinateCounts
    distances: Literal["meter", "derived"] = Field(
        description="Where GET /buses' distance_km comes from. meter: the deck's energy meters' zones (OpenDSS's "
                    "Bus.Distance). derived: the deck has no energy meter (OpenDSS gives 0 everywhere), so each bus's "
                    "distance is summed from the source along the feeder's closed lines, as a meter at the source "
                    "would sum it.")
    warnings: list[str] = Field(description="What rests on a guess: lines rated at OpenDSS's default (GET /lines: "
                                            "rating_source), buses placed for want of coordinates (GET /buses: "
                                            "xy_source).")


class FeedersResponse(Envelope):
    feeders: list[FeederInfo]
