"""Map coordinates for every bus of any feeder: the deck's where it gave them, placed from the graph elsewhere.

- The deck's coordinates are kept as given ("deck"; see `engine.topology.deck_coordinates` for (0, 0)).
- A bus without them that lies on the way between a positioned bus and a deck-placed bus below it is spaced evenly
  on the straight segment between them, by hops, as OpenDSS's `Interpolate` command does (EnergyMeter.pas
  `InterpolateCoordinates`/`CalcBusCoordinates`: walk up from a zone end to a bus with coordinates, count the
  segments to the next one up, and space the buses between evenly; a bus so placed is then known to later runs).
  Below a bus with several branches, each branch heads for its own nearest deck-placed bus.
- A dangling branch (no deck-placed bus below) continues beyond its positioned parent, one step per hop, where the
  step is the median length of the deck's edges with both ends placed: the first dangling child goes straight on
  along the parent's own incoming direction, the next ones fan out at +-45, +-90, ... degrees; beside a branch that
  goes on, they fan at +-60, +-30, +-90 degrees instead. OpenDSS leaves such buses without coordinates.
- A tree whose root has no coordinates but something below does: the root is put beyond its nearest deck-placed bus,
  away from the centre of the deck's coordinates, and the buses between are interpolated.
- A feeder (or a part joined to nothing placed) with no coordinates at all gets a layered layout from its root:
  depth along x, a tidy tree order along -y (leaves in depth-first order one step apart, each parent at the middle
  of its children); further unplaced parts go to the right of everything placed.

The graph is a spanning forest: breadth first from the source over closed edges, then across open switches and
disabled lines only for buses closed edges do not reach (a tie's far side sits next to the tie); neighbours in the
engine's bus order, so a deck always gives the same map. Linear in the number of buses.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from engine.topology import Topology

FAN_ALONE = (0.0, 45.0, -45.0, 90.0, -90.0, 22.5, -22.5, 67.5, -67.5)  # degrees off the parent's direction
FAN_BESIDE = (60.0, -60.0, 30.0, -30.0, 90.0, -90.0, 75.0, -75.0, 45.0, -45.0)


@dataclass(frozen=True)
class Placement:
    """Every bus's (x, y, "deck" | "placed"), and for each interpolated bus the two positioned buses it lies
    between (the run's upper end, deck-placed or placed earlier, and the deck-placed bus below)."""

    coordinates: dict[str, tuple[float, float, str]]
    between: dict[str, tuple[str, str]]


def place_coordinates(topology: Topology) -> dict[str, tuple[float, float, str]]:
    """x, y and "deck" or "placed" for every bus."""
    return placement(topology).coordinates


def placement(topology: Topology) -> Placement:
    """The coordinates with how each interpolated bus was placed (for checks and explanations)."""
    buses = topology.buses
    n = len(buses)
    index = topology.bus_index
    pos: list[tuple[float, float] | None] = [None] * n
    deck = [False] * n
    for bus, xy in topology.coordinates.items():
        pos[index[bus]] = xy
        deck[index[bus]] = True
    closed, other = topology.adjacency()
    order, parent, children, roots = _forest(closed, other, index[topology.source_bus], deck)
    step = _step(order, parent, pos)
    down = _nearest_deck_below(order, parent, deck)
    between: dict[str, tuple[str, str]] = {}
    anchor = list(range(n))  # the upper end of the run each positioned bus belongs to
    centre = _centre([p for p in pos if p is not None])
    unplaced_roots = []
    for root in roots:
        below = down[root]
        if pos[root] is None and below is None:
            unplaced_roots.append(root)
        elif pos[root] is None and below is not None:
            hops, target = below
            tx, ty = _at(pos, target)
            dx, dy = _unit(tx - centre[0], ty - centre[1], (1.0, 0.0))
            pos[root] = (tx + dx * hops * step, ty + dy * hops * step)
    for v in order:
        below = down[v]
        if pos[v] is not None or parent[v] < 0 or below is None:
            continue  # placed, a root, or dangling (placed below)
        p = parent[v]
        (px, py), (hops, target) = _at(pos, p), below
        tx, ty = _at(pos, target)
        pos[v] = (px + (tx - px) / (hops + 1), py + (ty - py) / (hops + 1))
        above = down[p]
        same_run = above is not None and above[1] == target and not deck[p]
        anchor[v] = anchor[p] if same_run else p
        between[buses[v]] = (buses[anchor[v]], buses[target])
    _place_dangling(order, parent, children, pos, down, step)
    _lay_out_unplaced(unplaced_roots, children, pos, step)
    coordinates = {}
    for i, bus in enumerate(buses):
        x, y = _at(pos, i)
        coordinates[bus] = (float(x), float(y), "deck" if deck[i] else "placed")
    return Placement(coordinates, between)


def _forest(closed: list[list[int]], other: list[list[int]], source: int, deck: list[bool]
            ) -> tuple[list[int], list[int], list[list[int]], list[int]]:
    """Breadth-first spanning forest: closed edges first, open ones only to reach what they cannot. Trees start at
    the source, then at each remaining part's first deck-placed bus (else its first bus)."""
    n = len(closed)
    parent = [-1] * n
    seen = [False] * n
    order: list[int] = []
    roots: list[int] = []
    starts = [source] + [i for i in range(n) if deck[i]] + list(range(n))
    for root in starts:
        if seen[root]:
            continue
        roots.append(root)
        seen[root] = True
        level = [root]
        while level:  # a breadth-first sweep over closed edges, then one step across open ones
            queue = deque(level)
            reached = []
            while queue:
                u = queue.popleft()
                reached.append(u)
                for v in closed[u]:
                    if not seen[v]:
                        seen[v], parent[v] = True, u
                        queue.append(v)
            order += reached
            level = []
            for u in reached:
                for v in other[u]:
                    if not seen[v]:
                        seen[v], parent[v] = True, u
                        level.append(v)
    children: list[list[int]] = [[] for _ in range(n)]
    for v in order:
        if parent[v] >= 0:
            children[parent[v]].append(v)
    return order, parent, children, roots


def _nearest_deck_below(order: list[int], parent: list[int], deck: list[bool]) -> list[tuple[int, int] | None]:
    """(hops, bus) of the nearest deck-placed bus in each bus's subtree (itself at 0 hops), ties to the lower bus."""
    down: list[tuple[int, int] | None] = [None] * len(parent)
    for v in reversed(order):
        if deck[v]:
            down[v] = (0, v)
        p, mine = parent[v], down[v]
        if p >= 0 and mine is not None:
            candidate, theirs = (mine[0] + 1, mine[1]), down[p]
            if theirs is None or candidate < theirs:
                down[p] = candidate
    return down


def _step(order: list[int], parent: list[int], pos: list[tuple[float, float] | None]) -> float:
    """The median length of the tree's edges with both ends placed by the deck (non-zero ones), else 1."""
    lengths = sorted(x for v in order if parent[v] >= 0 and pos[v] is not None and pos[parent[v]] is not None
                     and (x := math.dist(_at(pos, v), _at(pos, parent[v]))) > 0)
    return lengths[len(lengths) // 2] if lengths else 1.0


def _place_dangling(order: list[int], parent: list[int], children: list[list[int]],
                    pos: list[tuple[float, float] | None], down: list[tuple[int, int] | None], step: float) -> None:
    """Branches with nothing deck-placed below: on beyond their parent, fanning out (see the module docstring)."""
    for u in order:
        if pos[u] is None:
            continue
        dangling = [c for c in children[u] if pos[c] is None and down[c] is None]
        if not dangling:
            continue
        (ux, uy), g = _at(pos, u), parent[u]
        base = (1.0, 0.0)
        if g >= 0 and pos[g] is not None:
            gx, gy = _at(pos, g)
            base = _unit(ux - gx, uy - gy, base)
        fan = FAN_BESIDE if len(dangling) < len(children[u]) else FAN_ALONE
        angle0 = math.atan2(base[1], base[0])
        for j, c in enumerate(dangling):
            angle = angle0 + math.radians(fan[j % len(fan)])
            reach = step * (1 + j // len(fan))
            pos[c] = (ux + reach * math.cos(angle), uy + reach * math.sin(angle))


def _lay_out_unplaced(roots: list[int], children: list[list[int]], pos: list[tuple[float, float] | None],
                      step: float) -> None:
    """Layered layouts for trees with no coordinates at all: the first with its root at the origin if nothing else
    is placed, each further one to the right of everything placed so far, its root level with the top."""
    for root in roots:
        layout = _layered(root, children)
        placed = [p for p in pos if p is not None]
        x0 = max(p[0] for p in placed) + 2 * step if placed else 0.0
        top = max(p[1] for p in placed) if placed else 0.0
        y0 = top + layout[root][1] * step  # the root at (x0, top), its tree below
        for v, (depth, slot) in layout.items():
            pos[v] = (x0 + depth * step, y0 - slot * step)


def _layered(root: int, children: list[list[int]]) -> dict[int, tuple[int, float]]:
    """(depth, slot) per bus of a tree: leaves take slots 0, 1, 2, ... in depth-first order; a parent sits at the
    middle of its first and last child (Wetherell and Shannon's tidy drawing, without the compaction)."""
    depth = {root: 0}
    preorder = []
    stack = [root]
    while stack:
        u = stack.pop()
        preorder.append(u)
        for c in reversed(children[u]):
            depth[c] = depth[u] + 1
            stack.append(c)
    slot: dict[int, float] = {}
    leaves = 0
    for u in preorder:
        if not children[u]:
            slot[u] = float(leaves)
            leaves += 1
    for u in reversed(preorder):
        if children[u]:
            slot[u] = (slot[children[u][0]] + slot[children[u][-1]]) / 2
    return {u: (depth[u], slot[u]) for u in preorder}


def _at(pos: list[tuple[float, float] | None], i: int) -> tuple[float, float]:
    """A bus's position, which the caller knows is set."""
    xy = pos[i]
    assert xy is not None
    return xy


def _unit(dx: float, dy: float, fallback: tuple[float, float]) -> tuple[float, float]:
    length = math.hypot(dx, dy)
    return (dx / length, dy / length) if length > 0 else fallback


def _centre(points: list[tuple[float, float]]) -> tuple[float, float]:
    if not points:
        return (0.0, 0.0)
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
