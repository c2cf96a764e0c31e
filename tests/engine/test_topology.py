"""engine.topology on any OpenDSS deck: our IEEE 123-node deck, the public decks in the shared references (the
8,500-node ones marked slow) and small decks written here. What is checked against the engine itself: the nodes each
conductor lands on (the grounding rules read them from bus specs), which buses are energised, the open terminals."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.ieee123 import DEFAULT_MASTER_FILE
from engine.topology import (Topology, _nodes, _values, _winding_grounded, deck_coordinates, energised_buses,
                             read_topology)
from support.paths import SHARED_REFERENCE
from support.synthetic_feeder import PUBLIC_DECKS, compile_deck

FEEDERS = SHARED_REFERENCE / "feeders"
SLOW = {"ieee8500", "ieee8500u"}
#: What the public decks hold (OpenDSS's own counts, PROVENANCE.md) and what we found: galvanic islands and buses
#: without a ground reference (every service secondary of the 8500-node feeder is grounded at its centre tap).
EXPECTED = {"ieee13": (16, 4, 0), "ieee34": (37, 5, 0), "ieee8500": (4876, 1183, 0), "ieee8500u": (4876, 1183, 0),
            "ckt5": (2998, 586, 0)}  # buses, islands, ungrounded buses


def public(name: str) -> Any:
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


@pytest.fixture(scope="module")
def ieee123() -> tuple[Any, Topology]:
    engine, batch = compile_deck(DEFAULT_MASTER_FILE, solve=True)
    return engine, read_topology(engine, batch)


def test_nodes_are_filled_as_opendss_fills_them() -> None:
    assert _nodes("x", 3, 4) == [1, 2, 3, 0]  # a wye winding's neutral: ground unless the spec says otherwise
    assert _nodes("x.1.2.3.4", 3, 4) == [1, 2, 3, 4]
    assert _nodes("x.1.0", 1, 2) == [1, 0] and _nodes("x.0.2", 1, 2) == [0, 2]  # a centre tap's two halves
    assert _nodes("x.3", 1, 1) == [3] and _nodes("x.2.3", 3, 3) == [2, 3, 3]


@pytest.mark.parametrize(("spec", "conn", "rneut", "grounded"), [
    ("x", 0, -1.0, True),  # wye, neutral on node 0 by default
    ("x.1.2.3.4", 0, -1.0, False),  # neutral on node 4, no neutral impedance: floating
    ("x.1.2.3.4", 0, 5.0, True),  # grounded through Rneut
    ("x", 1, -1.0, False),  # delta
    ("x.1.2.0", 1, -1.0, True),  # corner-grounded delta
])
def test_which_windings_ground_their_bus(spec: str, conn: int, rneut: float, grounded: bool) -> None:
    assert _winding_grounded(spec, conn, rneut, 3) is grounded


@pytest.mark.parametrize("name", ["ieee123", *[public(n) for n in PUBLIC_DECKS if n != "ieee8500u"]])
def test_parsed_nodes_match_the_engine(name: str) -> None:
    engine, batch = compile_deck(DEFAULT_MASTER_FILE if name == "ieee123" else FEEDERS / PUBLIC_DECKS[name])
    checked = 0
    for cls, prefix in ((batch.Transformer, "transformer"), (batch.Line, "line")):
        for element, phases, enabled in zip(cls.Name, _values(cls.Phases), _values(cls.Enabled)):
            if not enabled:
                continue  # a disabled element has no nodes
            engine.Circuit.SetActiveElement(f"{prefix}.{element}")
            conductors = engine.CktElement.NumConductors()
            parsed = [n for spec in engine.CktElement.BusNames() for n in _nodes(spec, int(phases), conductors)]
            assert parsed == list(engine.CktElement.NodeOrder()), (prefix, element)
            checked += 1
    assert checked > 10


def test_ieee123_only_610_is_ungrounded(ieee123: tuple[Any, Topology]) -> None:
    engine, topology = ieee123
    assert topology.ungrounded_buses == {"610"}  # the 480 V delta secondary of XFM1
    energised = energised_buses(engine)
    assert energised - topology.ungrounded_buses == set(topology.buses) - {"610"}
    (island,) = [i for i, island in enumerate(topology.islands) if "610" in island]
    assert topology.islands[island] == ("610",) and topology.island_grounds[island] == ()
    source_island = next(g for i, g in zip(topology.islands, topology.island_grounds) if "150" in i)
    assert "vsource.source" in source_island
    assert topology.source_bus == "150" == engine.Circuit.AllBusNames()[0]


def test_ieee123_open_tie_stubs_follow_their_switches(ieee123: tuple[Any, Topology]) -> None:
    """Sw7 and Sw8 are the normally open ties (docs/feeder.md): the stubs beyond them are energised exactly when the
    engine holds the switch closed. Our deck leaves both closed in OpenDSS (the stubs read 0.98-1.02 pu); opened, as
    the IEEE case has them, the stubs are dead, in no neighbourhood, and still placed on the map."""
    engine, topology = ieee123
    switches = {e.name: e for e in topology.edges if e.switch}
    energised = energised_buses(engine)
    for stub, switch in (("94_open", "sw8"), ("300_open", "sw7")):
        assert switches[switch].buses[1] == stub
        assert (stub in energised) is switches[switch].closed

    engine, batch = compile_deck(DEFAULT_MASTER_FILE)
    engine.Text.Command("Open Line.sw7 2")
    engine.Text.Command("Open Line.sw8 2")
    engine.Text.Command("Line.sw6.enabled=no")  # and a disabled line: 61s, XFM1 and 610 go dead with it
    engine.Solution.Solve()
    opened = read_topology(engine, batch)
    state = {e.name: (e.enabled, e.closed) for e in opened.edges if e.switch}
    assert state["sw7"] == state["sw8"] == (True, False) and state["sw6"] == (False, False)
    assert state["sw1"] == (True, True)
    assert set(opened.buses) - energised_buses(engine) == {"94_open", "300_open", "61s", "610"}
    assert {"94_open", "300_open", "610"} <= opened.ungrounded_buses  # dead islands have no ground either


@pytest.mark.parametrize("name", [public(n) for n in PUBLIC_DECKS])
def test_public_decks(name: str) -> None:
    engine, batch = compile_deck(FEEDERS / PUBLIC_DECKS[name], solve=True)
    started = time.perf_counter()
    topology = read_topology(engine, batch)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    energised = energised_buses(engine)
    energised_s = time.perf_counter() - started
    buses, islands, ungrounded = EXPECTED[name]
    print(f"\n{name}: {len(topology.buses)} buses, {len(topology.edges)} edges "
          f"({sum(not e.closed for e in topology.edges)} open or disabled), {len(topology.islands)} islands, "
          f"{len(topology.ungrounded_buses)} ungrounded buses, {len(energised)} energised, "
          f"{len(topology.coordinates)} with coordinates; read_topology {read_s * 1e3:.1f} ms, "
          f"energised_buses {energised_s * 1e3:.1f} ms")
    assert list(topology.buses) == [b.lower() for b in engine.Circuit.AllBusNames()]
    assert (len(topology.buses), len(topology.islands), len(topology.ungrounded_buses)) == (buses, islands, ungrounded)
    assert topology.source_bus == topology.buses[0] == batch.Vsource.Bus1[0].split(".")[0].lower()
    assert energised == set(topology.buses)  # every public deck's ties leave nothing dead
    assert sorted(b for island in topology.islands for b in island) == sorted(topology.buses)
    assert len(topology.load_names) == len(batch.Load.Name) and all(b in topology.bus_index for b in topology.load_buses)
    named = {b.lower() for b in engine.Circuit.AllBusNames()}
    for edge in topology.edges:
        assert len(edge.buses) >= 2 and set(edge.buses) <= named
        assert edge.closed <= edge.enabled
    disabled = {n.lower() for n, on in zip(batch.Line.Name, _values(batch.Line.Enabled)) if not on}
    assert {e.name for e in topology.edges if e.kind == "line" and not e.enabled} <= disabled
    if name.startswith("ieee8500"):
        three = [e for e in topology.edges if e.kind == "transformer" and len(e.buses) == 2]
        secondaries = {e.buses[1] for e in three}
        grounds = {b: g for island, g in zip(topology.islands, topology.island_grounds) for b in island}
        assert all(any(r.startswith("transformer.") for r in grounds[b]) for b in secondaries)


def test_the_nodes_of_each_bus_come_together_in_bus_order() -> None:
    """energised_buses reduces node voltages bus by bus: the engine lists nodes grouped by bus, in bus order."""
    for master in (DEFAULT_MASTER_FILE, FEEDERS / PUBLIC_DECKS["ckt5"]):
        engine, _ = compile_deck(master)
        node_bus = [n.split(".")[0] for n in engine.Circuit.AllNodeNames()]
        firsts = [b for i, b in enumerate(node_bus) if i == 0 or node_bus[i - 1] != b]
        assert firsts == list(engine.Circuit.AllBusNames())


@pytest.mark.parametrize(("coords", "kept"), [
    ({"a": (0, 0), "b": (2_235_997.5, 293_857.8), "c": (2_236_214.1, 293_970.8)}, {"b", "c"}),  # a placeholder
    ({"a": (0, 0), "b": (100, 0), "c": (200, 50)}, {"a", "b", "c"}),  # a local frame's origin
])
def test_a_bus_at_the_origin_counts_only_inside_the_decks_frame(tmp_path: Path, coords: dict, kept: set) -> None:
    (tmp_path / "xy.csv").write_text("".join(f"{b},{x},{y}\n" for b, (x, y) in coords.items()), encoding="utf-8")
    (tmp_path / "Master.dss").write_text("\n".join([
        "Clear", "New Circuit.tiny basekv=12.47 bus1=a", "New Line.ab bus1=a bus2=b", "New Line.bc bus1=b bus2=c",
        "New Line.cd bus1=c bus2=d", "New Load.l bus1=d kv=12.47 kw=10", "Set VoltageBases=[12.47]", "CalcVoltageBases",
        "BusCoords xy.csv"]) + "\n", encoding="utf-8")
    engine, batch = compile_deck(tmp_path / "Master.dss")
    found = deck_coordinates(engine, batch)
    assert set(found) == kept and all(found[b] == tuple(map(float, coords[b])) for b in kept)


def test_deck_coordinates_of_the_public_decks() -> None:
    engine, batch = compile_deck(FEEDERS / PUBLIC_DECKS["ckt5"])
    found = deck_coordinates(engine, batch)
    defined = [bus.Name for bus in batch.Bus if bus.CoordDefined]
    assert len(found) == len(defined) == 969 and (0.0, 0.0) not in found.values()
    engine, batch = compile_deck(FEEDERS / PUBLIC_DECKS["ieee34"])
    assert deck_coordinates(engine, batch) == {}  # its coordinates are loaded only by its run script
