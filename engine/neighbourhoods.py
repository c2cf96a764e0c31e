"""Neighbourhoods of any feeder: a given number of connected groups of buses, balanced by the loads' base kW.

Method: a min-max partition of the feeder's spanning tree into connected parts. Radial feeders are trees; a meshed
one (closed ties) is cut down to its breadth-first spanning tree from the source, so every part is connected through
closed lines and transformers. For a bound k, the greedy of S. Kundu and J. Misra, "A linear tree partitioning
algorithm", SIAM J. Comput. 6(1), 1977, pp. 151-154, gives in one bottom-up pass the fewest connected parts of
weight <= k (at each bus, while the weight it carries up exceeds k, cut off its heaviest child subtree). The fewest
parts never grows as k grows, so a bisection on k finds the smallest bound that needs no more than `count` parts:
the optimal min-max partition, the parametric approach G. N. Frederickson, "Optimal algorithms for tree partitioning",
SODA 1991, refines to linear time. Each pass is linear; the bisection stops at 1e-4 of the bound (about 20 passes).
Parts then split (at the edge that leaves the lighter side heaviest) until there are `count`, which never raises
the largest part, and a local search lifts the lightest (join it to a neighbour, split the part that splits best,
keep the step only if the lightest got heavier and the largest stays within the bound). No partition can do better
than max(total / count, the heaviest load bus) for the largest part, and this one is within 1e-4 of the best
connected one; how far the smallest falls below the mean is the feeder's shape (one heavy bus, or a bus feeding many
laterals, cannot be shared out). Measured: IEEE 123 largest/smallest 1.50, 8,500-node 1.55, ckt5 1.65.

Every bus of a tree that holds a load is in exactly one neighbourhood (buses without loads join so that parts are
connected); buses no closed edge joins to a load are in none. Ties break on the engine's bus order, never on hashes,
so a deck always gives the same groups.
"""

from __future__ import annotations

from collections import deque

from engine.topology import Topology

#: Our IEEE 123-node deck's hand-made map has 14 groups of 6-11 buses, about 250 kW each: a size a user can name
#: and scale on a map. Capped by the number of buses with loads (a neighbourhood needs one).
DEFAULT_NEIGHBOURHOODS = 14
TOLERANCE = 1e-4  # relative precision of the bisection on the largest part's kW


def derive_neighbourhoods(topology: Topology, count: int = DEFAULT_NEIGHBOURHOODS) -> dict[int, list[str]]:
    """Neighbourhood id (1..n) -> its buses in the engine's order; n = min(count, buses with loads), raised to the
    number of separate load-bearing parts of the feeder if it has more (they cannot share a connected group)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    n = len(topology.buses)
    closed, _ = topology.adjacency()
    bus_kw = topology.bus_kw()
    index = topology.bus_index
    is_load = [False] * n
    weight = [0.0] * n
    for bus, kw in bus_kw.items():
        is_load[index[bus]] = True
        weight[index[bus]] = max(kw, 0.0)
    if not any(is_load):
        return {}
    if sum(weight) <= 0:  # no kW anywhere: balance the number of load buses instead
        weight = [1.0 if x else 0.0 for x in is_load]
    order, parent, children = _spanning_forest(closed, index[topology.source_bus], is_load)
    roots = sum(1 for v in order if parent[v] < 0)
    load_buses = sum(1 for v in order if is_load[v])
    wanted = max(min(count, load_buses), roots)

    bound = _min_max_bound(order, parent, children, weight, wanted)
    part = _greedy_parts(order, parent, children, weight, bound)
    position = _position(order)
    _merge_loadless_roots(order, parent, part, is_load, weight, position)
    while len({part[v] for v in order}) < wanted:
        if _split_best(order, parent, part, is_load, weight, position) is None:
            break
    _raise_lightest(order, parent, part, is_load, weight, bound, position)
    tops = sorted({part[v] for v in order}, key=position.__getitem__)
    groups: dict[int, list[str]] = {i + 1: [] for i in range(len(tops))}
    number = {t: i + 1 for i, t in enumerate(tops)}
    for v in sorted(order):
        groups[number[part[v]]].append(topology.buses[v])
    return groups


def _spanning_forest(adjacency: list[list[int]], source: int, is_load: list[bool]
                     ) -> tuple[list[int], list[int], list[list[int]]]:
    """Breadth-first trees over closed edges: the source's, then one per other part holding a load (rooted at its
    lowest bus). Returns the visiting order, each bus's parent (-1 for roots and buses left out) and children."""
    n = len(adjacency)
    parent = [-1] * n
    seen = [False] * n
    order: list[int] = []
    children: list[list[int]] = [[] for _ in range(n)]
    for root in [source] + list(range(n)):
        if seen[root]:
            continue
        tree = [root]
        seen[root] = True
        queue = deque([root])
        while queue:
            u = queue.popleft()
            for v in adjacency[u]:
                if not seen[v]:
                    seen[v] = True
                    parent[v] = u
                    children[u].append(v)
                    tree.append(v)
                    queue.append(v)
        if any(is_load[v] for v in tree):
            order += tree
        else:  # no loads: not part of any neighbourhood
            for v in tree:
                parent[v] = -1
                children[v] = []
    return order, parent, children


def _parts_needed(order: list[int], parent: list[int], children: list[list[int]], weight: list[float],
                  bound: float, top: list[bool] | None = None) -> int:
    """Kundu and Misra's greedy: the fewest connected parts of weight <= bound (each bus weighs <= bound). With
    `top`, marks the buses that head a part."""
    carried = list(weight)
    parts = 0
    for v in reversed(order):
        load = carried[v]
        if load > bound:
            for c in sorted(children[v], key=lambda c: (-carried[c], c)):
                if load <= bound:
                    break
                load -= carried[c]
                parts += 1
                if top is not None:
                    top[c] = True
            carried[v] = load
        p = parent[v]
        if p >= 0:
            carried[p] += carried[v]
        else:
            parts += 1
            if top is not None:
                top[v] = True
    return parts


def _min_max_bound(order: list[int], parent: list[int], children: list[list[int]], weight: list[float],
                   count: int) -> float:
    """The smallest bound (to TOLERANCE) whose greedy partition needs at most `count` parts."""
    total = sum(weight[v] for v in order)
    heaviest = max(weight[v] for v in order)
    low = max(total / count, heaviest)
    widest = max(len(children[v]) for v in order)
    high = min(total, heaviest + widest * total / count)  # a deepest-heavy-subtree cut shows this much suffices
    if _parts_needed(order, parent, children, weight, high) > count:
        high = total
    if _parts_needed(order, parent, children, weight, low) <= count:
        return low
    while high - low > TOLERANCE * low:
        middle = (low + high) / 2
        if _parts_needed(order, parent, children, weight, middle) <= count:
            high = middle
        else:
            low = middle
    return high


def _greedy_parts(order: list[int], parent: list[int], children: list[list[int]], weight: list[float],
                  bound: float) -> list[int]:
    """Each bus's part in the greedy partition for `bound`, named by the bus heading it (parents come first)."""
    top = [False] * len(parent)
    _parts_needed(order, parent, children, weight, bound, top)
    part = [-1] * len(parent)
    for v in order:
        part[v] = v if top[v] else part[parent[v]]
    return part


def _merge_loadless_roots(order: list[int], parent: list[int], part: list[int], is_load: list[bool],
                          weight: list[float], position: dict[int, int]) -> None:
    """A tree's root part may hold no load bus (the greedy cuts off only subtrees that carry kW, so no other part
    can): it joins its lightest child part."""
    members, kw, loads = _parts(order, part, weight, is_load)
    for t in members:
        if parent[t] >= 0 or loads[t]:
            continue
        below = [c for c in members if parent[c] >= 0 and part[parent[c]] == t]
        into = min(below, key=lambda c: (kw[c], position[c]))
        for v in members[into]:
            part[v] = t


def _parts(order: list[int], part: list[int], weight: list[float], is_load: list[bool]
           ) -> tuple[dict[int, list[int]], dict[int, float], dict[int, int]]:
    """Members (in order), kW and load buses of each part."""
    members: dict[int, list[int]] = {}
    for v in order:
        members.setdefault(part[v], []).append(v)
    return (members, {t: sum(weight[v] for v in vs) for t, vs in members.items()},
            {t: sum(is_load[v] for v in vs) for t, vs in members.items()})


def _split_best(order: list[int], parent: list[int], part: list[int], is_load: list[bool],
                weight: list[float], position: dict[int, int]) -> float | None:
    """Split one part in two at the tree edge that makes the lighter side heaviest (over every part holding two or
    more load buses; each side keeps a load bus): the largest part never grows. Returns the lighter side's kW, or
    None when no part can be split."""
    members, kw, loads = _parts(order, part, weight, is_load)
    best: tuple[float, int, int] | None = None  # (-lighter side, position, bus)
    for t, vs in members.items():
        if loads[t] < 2:
            continue
        sub_kw = {v: weight[v] for v in vs}
        sub_loads = {v: int(is_load[v]) for v in vs}
        for v in reversed(vs):
            if v != t:
                sub_kw[parent[v]] += sub_kw[v]
                sub_loads[parent[v]] += sub_loads[v]
        for v in vs:
            if v != t and 0 < sub_loads[v] < loads[t]:
                key = (-min(sub_kw[v], kw[t] - sub_kw[v]), position[v], v)
                if best is None or key < best:
                    best = key
    if best is None:
        return None
    cut = best[2]
    inside = {cut}
    for v in members[part[cut]]:  # parents first: the subtree of `cut` within its part
        if parent[v] in inside and v != part[cut]:
            inside.add(v)
    for v in inside:
        part[v] = cut
    return -best[0]


def _raise_lightest(order: list[int], parent: list[int], part: list[int], is_load: list[bool],
                    weight: list[float], bound: float, position: dict[int, int]) -> None:
    """Local search for the low end, the largest part staying within `bound`: join the lightest part to a
    neighbour (lightest union first) and split the part that splits best; keep it only if the lightest part got
    heavier. Each kept step raises the minimum, so it ends; at most 4 x parts steps, each linear."""
    steps = 4 * len({part[v] for v in order})
    while steps > 0:
        steps -= 1
        members, kw, _ = _parts(order, part, weight, is_load)
        lightest = min(kw, key=lambda t: (kw[t], position[t]))
        neighbours = {part[parent[lightest]]} if parent[lightest] >= 0 else set()
        neighbours |= {v for v in order if part[v] == v and parent[v] >= 0 and part[parent[v]] == lightest}
        improved = False
        for other in sorted(neighbours, key=lambda t: (kw[t], position[t])):
            if kw[lightest] + kw[other] > bound:
                break
            trial = list(part)
            keep, gone = sorted((lightest, other), key=position.__getitem__)
            for v in members[gone]:
                trial[v] = keep
            lighter = _split_best(order, parent, trial, is_load, weight, position)
            if lighter is not None and min(_parts(order, trial, weight, is_load)[1].values()) > kw[lightest]:
                part[:] = trial
                improved = True
                break
        if not improved:
            return


def _position(order: list[int]) -> dict[int, int]:
    return {v: i for i, v in enumerate(order)}
