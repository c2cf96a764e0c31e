"""Each load's conductors mapped to the engine's nodes by the load's position (engine.index.load_conductor_nodes) are
those found by its name, on every public deck, our IEEE 123 deck and a deck with a disabled load; by position, since
OpenDSS searches for a name (on a 52,000-load synthetic deck that search took 5 s of a server's start)."""

from __future__ import annotations

import pytest

from engine.ieee123 import DEFAULT_MASTER_FILE
from engine.index import conductor_node_index, load_conductor_nodes
from support.paths import SHARED_REFERENCE
from support.synthetic_feeder import PUBLIC_DECKS, compile_deck, write_synthetic_feeder

DECKS = {"ieee123": DEFAULT_MASTER_FILE, **{name: SHARED_REFERENCE / "feeders" / path
                                            for name, path in PUBLIC_DECKS.items() if not name.startswith("ieee8500")}}


def by_name(engine, names: list[str]) -> list[int]:
    node_index = {name: i for i, name in enumerate(engine.Circuit.AllNodeNames())}
    return [i for name in names for i in conductor_node_index(engine, f"Load.{name}", node_index)]


@pytest.mark.parametrize("name", sorted(DECKS))
def test_loads_by_position_are_the_loads_by_name(name):
    engine, batch = compile_deck(DECKS[name])
    engine.Text.Command("MakeBusList")
    names = list(batch.Load.Name)
    node_index = {node: i for i, node in enumerate(engine.Circuit.AllNodeNames())}
    got = load_conductor_nodes(engine, names, node_index)
    assert got == by_name(engine, names) and len(got) >= len(names) and max(got) >= 0


def test_a_disabled_load_keeps_its_place(tmp_path):
    deck = write_synthetic_feeder(tmp_path, 40)
    engine, batch = compile_deck(deck.master)
    names = list(batch.Load.Name)
    engine.Text.Command(f"Load.{names[2]}.enabled=no")
    engine.Text.Command("MakeBusList")
    node_index = {node: i for i, node in enumerate(engine.Circuit.AllNodeNames())}
    assert load_conductor_nodes(engine, names, node_index) == by_name(engine, names)
    assert load_conductor_nodes(engine, names[::-1], node_index) == by_name(engine, names[::-1])  # another order
