"""What is derived from any feeder's graph: neighbourhoods (engine.neighbourhoods) and map coordinates
(engine.coordinates). Small graphs built here (against brute force and exact positions), our IEEE 123-node deck, the
public decks in the shared references (the 8,500-node ones slow), and synthetic decks of 2,000 and 20,000 buses to
catch anything worse than linear."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import deque
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from engine.coordinates import place_coordinates, placement
from engine.ieee123 import DEFAULT_MASTER_FILE
from engine.neighbourhoods import DEFAULT_NEIGHBOURHOODS, derive_neighbourhoods
from engine.topology import Edge, Topology, read_topology
from support.paths import SHARED_REFERENCE
from support.synthetic_feeder import PUBLIC_DECKS, compile_deck, write_synthetic_feeder

FEEDERS = SHARED_REFERENCE / "feeders"
DECKS = {"ieee123": DEFAULT_MASTER_FILE, **{name: FEEDERS / path for name, path in PUBLIC_DECKS.items()}}
SLOW = {"ieee8500", "ieee8500u"}


def graph(pairs: list[tuple[str, str]], kw: dict[str, float], coordinates: dict | None = None,
          opened: tuple[str, ...] = ()) -> Topology:
    """A Topology by hand: lines between named buses (the first pair's first bus is the source)."""
    buses = tuple(dict.fromkeys(b for pair in pairs for b in pair))
    edges = tuple(Edge("line", f"l{i}", pair, False, True, f"l{i}" not in opened, True) for i, pair in enumerate(pairs))
    return Topology(buses=buses, source_bus=buses[0], edges=edges, load_names=tuple(f"d_{b}" for b in kw),
                    load_buses=tuple(kw), load_kw=tuple(kw.values()),
                    coordinates=MappingProxyType(coordinates or {}), islands=(buses,), island_grounds=(("x",),),
                    bus_index=MappingProxyType({b: i for i, b in enumerate(buses)}))


def random_tree(rng: random.Random, n: int) -> tuple[list[tuple[str, str]], dict[str, float]]:
    pairs = [(f"b{rng.randrange(i)}", f"b{i}") for i in range(1, n)]
    kw = {f"b{i}": float(rng.choice((0, 1, 2, 5, 10, 30))) for i in range(n) if rng.random() < 0.7}
    return pairs, kw


def check_neighbourhoods(topology: Topology, groups: dict[int, list[str]], count: int) -> float:
    """Connected through closed edges, disjoint, every load's bus exactly once, and the largest part within the
    bound any tree partition meets. Returns the largest part's kW over the smallest's."""
    closed, _ = topology.adjacency()
    index = topology.bus_index
    assert list(groups) == list(range(1, len(groups) + 1))
    seen = [b for buses in groups.values() for b in buses]
    assert len(seen) == len(set(seen)), "a bus in two neighbourhoods"
    assert set(topology.load_buses) <= set(seen), "a load's bus in no neighbourhood"
    for buses in groups.values():
        inside = {index[b] for b in buses}
        reached, queue = {index[buses[0]]}, deque([index[buses[0]]])
        while queue:
            for v in closed[queue.popleft()]:
                if v in inside and v not in reached:
                    reached.add(v)
                    queue.append(v)
        assert reached == inside, f"neighbourhood of {buses[0]} is not connected"
        assert set(buses) & set(topology.load_buses), f"neighbourhood of {buses[0]} has no load"
    bus_kw = topology.bus_kw()
    kw = [sum(bus_kw.get(b, 0.0) for b in buses) for buses in groups.values()]
    total, heaviest = sum(bus_kw.values()), max(bus_kw.values())
    # A tree partition can always keep parts within heaviest + widest * total / count: cut off, again and again, a
    # deepest subtree of >= total / count (its children's are each below that). The min-max partition meets it too.
    widest = max(len(set(n)) for n in closed)  # a bound on the spanning tree's children per bus
    assert max(kw) <= (heaviest + widest * total / len(groups)) * (1 + 1e-6)
    assert max(kw) >= max(total / len(groups), heaviest) * (1 - 1e-9)
    assert len(groups) == min(count, len(set(topology.load_buses)))
    return max(kw) / min(kw) if min(kw) > 0 else math.inf


def brute_force_min_max(pairs: list[tuple[str, str]], kw: dict[str, float], count: int) -> float:
    """The least largest part over every way to cut a tree into `count` connected parts each holding a load."""
    buses = list(dict.fromkeys(b for pair in pairs for b in pair))
    best = math.inf
    for cut in itertools.combinations(range(len(pairs)), count - 1):
        parent = {b: b for b in buses}

        def find(b: str) -> str:
            while parent[b] != b:
                b = parent[b]
            return b

        for i, (a, b) in enumerate(pairs):
            if i not in cut:
                parent[find(b)] = find(a)
        parts: dict[str, list[str]] = {}
        for b in buses:
            parts.setdefault(find(b), []).append(b)
        if all(any(b in kw for b in part) for part in parts.values()):
            best = min(best, max(sum(kw.get(b, 0.0) for b in part) for part in parts.values()))
    return best


def test_neighbourhoods_are_the_min_max_tree_partition() -> None:
    rng = random.Random(28)
    for _ in range(150):
        pairs, kw = random_tree(rng, rng.randint(4, 11))
        if len(kw) < 2:
            continue
        count = rng.randint(2, min(4, len(kw)))
        topology = graph(pairs, kw)
        groups = derive_neighbourhoods(topology, count)
        check_neighbourhoods(topology, groups, count)
        largest = max(sum(kw.get(b, 0.0) for b in buses) for buses in groups.values())
        assert largest <= brute_force_min_max(pairs, kw, count) * (1 + 1e-4) + 1e-12, (pairs, kw, count)


def test_neighbourhood_edge_cases() -> None:
    path = [("s", "a"), ("a", "b"), ("b", "c")]
    assert derive_neighbourhoods(graph(path, {}), 3) == {}
    assert derive_neighbourhoods(graph(path, {"b": 5.0, "c": 5.0}), 14) == {1: ["s", "a", "b"], 2: ["c"]}
    assert derive_neighbourhoods(graph(path, {"b": 0.0, "c": 0.0}), 2) == {1: ["s", "a", "b"], 2: ["c"]}
    with pytest.raises(ValueError):
        derive_neighbourhoods(graph(path, {"c": 1.0}), 0)
    # An open tie leaves a loaded part the source cannot reach: it is its own neighbourhood, even for count=1.
    split = graph([("s", "a"), ("a", "b"), ("b", "c")], {"a": 1.0, "c": 1.0}, opened=("l1",))
    assert derive_neighbourhoods(split, 1) == {1: ["s", "a"], 2: ["b", "c"]}
    # A closed loop: parts stay connected on the breadth-first tree.
    ring = graph([("s", "a"), ("a", "b"), ("b", "c"), ("c", "s")], {"a": 1.0, "b": 1.0, "c": 1.0})
    check_neighbourhoods(ring, derive_neighbourhoods(ring, 2), 2)


def test_interpolated_buses_are_evenly_spaced_and_dangling_ones_go_on() -> None:
    pairs = [("a", "u1"), ("u1", "u2"), ("u2", "u3"), ("u3", "d"), ("d", "e"), ("e", "f"), ("f", "g"), ("e", "h")]
    deck = {"a": (0.0, 0.0), "d": (8.0, 4.0), "e": (10.0, 4.0)}
    found = placement(graph(pairs, {"g": 1.0}, deck))
    c = found.coordinates
    assert {b: c[b][:2] for b in deck} == deck and {b for b in c if c[b][2] == "deck"} == set(deck)
    for k, bus in enumerate(("u1", "u2", "u3"), start=1):
        assert c[bus][:2] == pytest.approx((2.0 * k, 1.0 * k)) and found.between[bus] == ("a", "d")
    step = 2.0  # the median length of the tree's edges placed at both ends: d-e only
    assert c["f"][:2] == pytest.approx((12.0, 4.0))  # straight on from d -> e
    assert c["g"][:2] == pytest.approx((14.0, 4.0))
    assert math.dist(c["h"][:2], c["e"][:2]) == pytest.approx(step) and c["h"][:2] != c["f"][:2]


def test_a_feeder_without_coordinates_is_laid_out_in_layers() -> None:
    pairs = [("s", "a"), ("a", "b"), ("a", "c"), ("c", "d"), ("c", "e"), ("s", "f")]
    c = place_coordinates(graph(pairs, {"b": 1.0}))
    assert c["s"] == (0.0, 0.0, "placed")
    depth = {"s": 0, "a": 1, "b": 2, "c": 2, "d": 3, "e": 3, "f": 1}
    assert all(c[b][0] == d for b, d in depth.items())
    assert [c[b][1] for b in ("b", "d", "e", "f")] == sorted([c[b][1] for b in ("b", "d", "e", "f")], reverse=True)
    assert c["c"][1] == (c["d"][1] + c["e"][1]) / 2 and c["a"][1] == (c["b"][1] + c["c"][1]) / 2
    assert place_coordinates(graph(pairs, {"b": 1.0})) == c


def test_a_root_without_coordinates_is_put_beyond_the_deck() -> None:
    pairs = [("s", "t"), ("t", "a"), ("a", "b"), ("a", "c")]
    deck = {"a": (0.0, 0.0), "b": (10.0, 0.0), "c": (0.0, 10.0)}
    found = placement(graph(pairs, {"b": 1.0}, deck))
    c = found.coordinates
    assert found.between["t"] == ("s", "a")
    assert c["s"][0] < 0 and c["s"][1] < 0  # away from the deck's centre, two steps out
    assert math.dist(c["s"][:2], c["a"][:2]) == pytest.approx(2 * 10.0)
    assert c["t"][:2] == pytest.approx(((c["s"][0]) / 2, c["s"][1] / 2))


def check_coordinates(topology: Topology, found: Any) -> None:
    c = found.coordinates
    assert set(c) == set(topology.buses)
    assert all(math.isfinite(x) and math.isfinite(y) and s in ("deck", "placed") for x, y, s in c.values())
    assert {b: xy[:2] for b, xy in c.items() if xy[2] == "deck"} == dict(topology.coordinates)
    for bus, (upper, lower) in found.between.items():
        x, y, _ = c[bus]
        (ax, ay, _), (dx, dy, source) = c[upper], c[lower]
        assert source == "deck" and c[bus][2] == "placed"
        slack = 1e-9 * (1 + abs(ax) + abs(ay) + abs(dx) + abs(dy))
        assert min(ax, dx) - slack <= x <= max(ax, dx) + slack and min(ay, dy) - slack <= y <= max(ay, dy) + slack


@pytest.fixture(scope="module", params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in DECKS])
def deck(request: pytest.FixtureRequest) -> tuple[str, Topology]:
    engine, batch = compile_deck(DECKS[request.param])
    return request.param, read_topology(engine, batch)


def test_neighbourhoods_of_the_decks(deck: tuple[str, Topology]) -> None:
    name, topology = deck
    started = time.perf_counter()
    groups = derive_neighbourhoods(topology)
    took = time.perf_counter() - started
    ratio = check_neighbourhoods(topology, groups, DEFAULT_NEIGHBOURHOODS)
    bus_kw = topology.bus_kw()
    kw = sorted(round(sum(bus_kw.get(b, 0.0) for b in buses)) for buses in groups.values())
    print(f"\n{name}: {len(groups)} neighbourhoods, kW {kw}, max/min {ratio:.2f}, "
          f"max/mean {max(kw) / (sum(kw) / len(kw)):.2f}, derive_neighbourhoods {took * 1e3:.1f} ms")
    assert derive_neighbourhoods(topology) == groups
    engine, batch = compile_deck(DECKS[name])
    assert derive_neighbourhoods(read_topology(engine, batch)) == groups  # a fresh compile: the same groups


def test_coordinates_of_the_decks(deck: tuple[str, Topology]) -> None:
    name, topology = deck
    started = time.perf_counter()
    found = placement(topology)
    took = time.perf_counter() - started
    check_coordinates(topology, found)
    placed = sum(s == "placed" for *_, s in found.coordinates.values())
    print(f"\n{name}: {len(topology.coordinates)} from the deck, {placed} placed ({len(found.between)} "
          f"interpolated), place_coordinates {took * 1e3:.1f} ms")
    assert placement(topology) == found
    engine, batch = compile_deck(DECKS[name])
    assert placement(read_topology(engine, batch)) == found  # a fresh compile: the same map
    if name == "ieee123":
        assert placed == 2 and found.coordinates["94_open"][2] == "placed"


def derive_all(master: Path) -> tuple[float, Topology]:
    """The best of three timings of read_topology, derive_neighbourhoods and place_coordinates together."""
    engine, batch = compile_deck(master)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        topology = read_topology(engine, batch)
        derive_neighbourhoods(topology)
        place_coordinates(topology)
        times.append(time.perf_counter() - started)
    return min(times), topology


def test_derivations_stay_linear(tmp_path: Path) -> None:
    small = write_synthetic_feeder(tmp_path / "small", 2_000, coordinates="ends")
    large = write_synthetic_feeder(tmp_path / "large", 20_000, coordinates="ends")
    small_s, _ = derive_all(small.master)
    large_s, topology = derive_all(large.master)
    print(f"\nread_topology + derive_neighbourhoods + place_coordinates: 2,000 buses {small_s * 1e3:.0f} ms, "
          f"20,000 buses {large_s * 1e3:.0f} ms ({large_s / small_s:.1f} x)")
    assert len(topology.buses) == 20_000 and len(topology.load_buses) == len(large.load_kw)
    assert large_s < 30 * small_s  # ten times the buses: a quadratic step would take about a hundred times longer
    groups = derive_neighbourhoods(topology)
    check_neighbourhoods(topology, groups, DEFAULT_NEIGHBOURHOODS)
    found = placement(topology)
    check_coordinates(topology, found)
    assert len(found.between) == 20_000 - len(large.coordinates)  # each lateral runs from the main to its leaves


def test_a_feeders_later_engines_take_what_its_first_engine_read() -> None:
    """Neighbourhoods, coordinates, generator sites and facts are read once per feeder in a process
    (`engine.feeder_model`): a second engine of the IEEE 13 deck (derived neighbourhoods) reads no topology, and
    answers as the first; forgotten, the feeder is read afresh to the same answers."""
    from unittest import mock

    import engine.circuit
    from engine.feeder_model import forget_models
    from simulation_core import OpenDSSCircuit

    master = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"
    forget_models()
    with mock.patch.object(engine.circuit, "read_topology", wraps=engine.circuit.read_topology) as reads:
        first = OpenDSSCircuit(master, neighbourhood_file=None)
        assert reads.call_count == 1  # neighbourhoods and the map: the index's bus list is the one read
        second = OpenDSSCircuit(master, neighbourhood_file=None)
        assert reads.call_count == 1
        assert (second.neighbourhoods(), second.buses(), second.feeder_facts(), second.generator_refusals()) == \
            (first.neighbourhoods(), first.buses(), first.feeder_facts(), first.generator_refusals())
        forget_models()
        third = OpenDSSCircuit(master, neighbourhood_file=None)
        assert reads.call_count == 2 and third.neighbourhoods() == first.neighbourhoods()
    for circuit in (first, second, third):
        circuit.close()
