"""Distances from the substation (`GET /buses`: distance_km) on decks with and without an energy meter.

OpenDSS gives `Bus.Distance` only inside an energy meter's zone, so a deck without a meter (IEEE 13, the IEEE
8500-node feeder's Master.dss) has every bus at 0 and its voltage profile collapses onto one line. The server then
sums distances itself. The reference is OpenDSS driven directly: the same deck with an energy meter put on the
source's first element, solved, `Bus.Distance` of every bus. A deck with its own meter (our IEEE 123) keeps OpenDSS's
figures as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.circuit import OpenDSSCircuit
from engine.ieee123 import DEFAULT_MASTER_FILE
from support.paths import SHARED_REFERENCE
from support.synthetic_feeder import PUBLIC_DECKS, compile_deck

FEEDERS = SHARED_REFERENCE / "feeders"


def opendss_distances(master: Path, meter_at_source: bool) -> dict[str, float]:
    """`Bus.Distance` of every bus, OpenDSS alone, after (optionally) a meter on the source bus's first element."""
    engine, _ = compile_deck(master)
    if meter_at_source:
        engine.Circuit.SetActiveElement("Vsource.source")
        source_bus = engine.CktElement.BusNames()[0].split(".")[0].lower()
        first = next(name for name in engine.Circuit.AllElementNames()
                     if not name.lower().startswith(("vsource.", "load.", "capacitor.", "generator.", "pvsystem."))
                     and engine.Circuit.SetActiveElement(name) >= 0
                     and source_bus in [b.split(".")[0].lower() for b in engine.CktElement.BusNames()])
        engine.Text.Command(f"New EnergyMeter.reference element={first} terminal=1")
    engine.Text.Command("Set MaxIterations=100")
    engine.Solution.Solve()
    distances = {}
    for bus in engine.Circuit.AllBusNames():
        engine.Circuit.SetActiveBus(bus)
        distances[bus] = engine.Bus.Distance()
    return distances


def served_distances(master: Path | None) -> tuple[dict[str, float], str]:
    circuit = OpenDSSCircuit() if master is None else OpenDSSCircuit(master, neighbourhood_file=None)
    try:
        return {row["name"]: row["distance_km"] for row in circuit.buses()}, circuit.feeder_facts()["distances"]
    finally:
        circuit.close()


@pytest.mark.parametrize("name", ["ieee13", pytest.param("ieee8500", marks=pytest.mark.slow)])
def test_a_deck_without_a_meter_gets_the_distances_a_meter_at_the_source_would_give(name: str) -> None:
    master = FEEDERS / PUBLIC_DECKS[name]
    assert not any(opendss_distances(master, meter_at_source=False).values())  # the deck alone: 0 everywhere
    reference = opendss_distances(master, meter_at_source=True)
    ours, source = served_distances(master)
    assert source == "derived" and set(ours) == set(reference)
    assert max(ours.values()) > 1  # kilometres of feeder, not a collapsed profile
    for bus, km in reference.items():
        assert ours[bus] == pytest.approx(km, rel=1e-9, abs=1e-9), bus


def test_a_deck_with_a_meter_keeps_opendss_distances() -> None:
    reference = opendss_distances(DEFAULT_MASTER_FILE, meter_at_source=False)
    ours, source = served_distances(None)
    assert source == "meter" and any(reference.values())
    assert ours == pytest.approx(reference, rel=0, abs=0)
