"""A synthetic radial OpenDSS deck of any size, written into a folder: to check that what is derived from a feeder's
graph stays linear in its size (tests, and the bench later), on a shape like a real feeder's.

A 3-phase main of about sqrt(N) buses from the source; single-phase laterals (phases in turn) hang off the main buses
in turn, each a small random tree (mostly a chain, sometimes a branch off an earlier bus of its own lateral); a load
of 2-20 kW at every lateral bus. Coordinates: "all", "ends" (the main and each lateral's leaves: the rest is to be
interpolated), "main" (laterals dangle) or "none". The same arguments always write the same deck.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import opendssdirect

COORDINATES = ("all", "ends", "main", "none")
MAIN_STEP = 100.0  # map units between main buses
LATERAL_STEP = 40.0


@dataclass(frozen=True)
class SyntheticFeeder:
    """What was written: the master file, the buses (source first) and each bus's parent bus (None at the source)."""

    master: Path
    buses: tuple[str, ...]
    parent: dict[str, str | None]
    load_kw: dict[str, float]
    coordinates: dict[str, tuple[float, float]]  # the ones written to the deck


def write_synthetic_feeder(folder: Path, buses: int, coordinates: str = "all", seed: int = 0) -> SyntheticFeeder:
    """Write `Master.dss` (and `BusCoords.csv` unless coordinates="none") for a radial feeder of `buses` buses."""
    if buses < 3:
        raise ValueError("a synthetic feeder needs at least 3 buses")
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {COORDINATES}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    main_count = max(2, round(math.sqrt(buses)))
    main = [f"m{i}" for i in range(main_count)]
    parent: dict[str, str | None] = {main[0]: None}
    xy: dict[str, tuple[float, float]] = {main[0]: (0.0, 0.0)}
    phase: dict[str, int] = {}
    lines = []
    for i in range(1, main_count):
        parent[main[i]] = main[i - 1]
        xy[main[i]] = (i * MAIN_STEP, 0.0)
        lines.append(f"New Line.lm{i} phases=3 bus1={main[i - 1]} bus2={main[i]} linecode=main length=0.05 units=kft")
    leaves: set[str] = set()
    remaining, lateral = buses - main_count, 0
    while remaining > 0:
        lateral += 1
        at = main[1 + (lateral - 1) % (main_count - 1)]
        ph, side = 1 + (lateral - 1) % 3, 1 if lateral % 2 else -1
        size = min(remaining, rng.randint(2, 2 * main_count))
        own: list[str] = []
        depth: dict[str, int] = {}
        for j in range(size):
            bus = f"l{lateral}_{j}"
            up = at if not own else (own[-1] if rng.random() < 0.8 else rng.choice(own))
            depth[bus] = depth.get(up, 0) + 1
            ux, uy = xy[up]
            shift = (lateral - 1) // (main_count - 1) * 7.0 if up == at else sum(parent[b] == up for b in own) * 20.0
            xy[bus] = (ux + shift, uy + side * LATERAL_STEP)
            parent[bus], phase[bus] = up, ph
            own.append(bus)
            lines.append(f"New Line.ll{lateral}_{j} phases=1 bus1={up}.{ph} bus2={bus}.{ph} linecode=lateral "
                         f"length=0.02 units=kft")
        leaves |= {b for b in own if not any(parent[c] == b for c in own)}
        remaining -= size
    names = tuple(parent)
    load_kw = {b: float(rng.choice((2, 5, 10, 20))) for b in names if b in phase}
    loads = [f"New Load.d_{b} phases=1 bus1={b}.{phase[b]} kv=7.2 kw={kw} pf=0.95 model=1" for b, kw in load_kw.items()]
    given = {b: p for b, p in xy.items() if coordinates == "all" or b in main
             or (coordinates == "ends" and b in leaves)} if coordinates != "none" else {}
    deck = ["Clear", "Set DefaultBaseFrequency=60",
            f"New Circuit.synthetic{buses} basekv=12.47 bus1={main[0]} pu=1.0 MVAsc3=200000 MVAsc1=210000",
            "New Linecode.main nphases=3 r1=0.05 x1=0.1 r0=0.15 x0=0.3 c1=0 c0=0 units=kft",
            "New Linecode.lateral nphases=1 r1=0.1 x1=0.1 r0=0.1 x0=0.1 c1=0 c0=0 units=kft",
            *lines, *loads, "Set MaxIterations=100", "Set VoltageBases=[12.47]", "CalcVoltageBases"]
    if given:
        (folder / "BusCoords.csv").write_text("".join(f"{b},{x},{y}\n" for b, (x, y) in given.items()),
                                              encoding="utf-8")
        deck.append("BusCoords BusCoords.csv")
    master = folder / "Master.dss"
    master.write_text("\n".join(deck) + "\n", encoding="utf-8")
    return SyntheticFeeder(master, names, parent, load_kw, given)


#: The public test decks in the shared references (tests may read them; the product never does), by short name.
PUBLIC_DECKS = {
    "ieee13": "IEEETestCases/13Bus/IEEE13Nodeckt.dss",
    "ieee34": "IEEETestCases/34Bus/ieee34Mod1.dss",
    "ieee8500": "IEEETestCases/8500-Node/Master.dss",
    "ieee8500u": "IEEETestCases/8500-Node/Master-unbal.dss",
    "ckt5": "EPRITestCircuits/ckt5/Master_ckt5.dss",
}


def compile_deck(master: Path, solve: bool = False) -> tuple[Any, Any]:
    """A deck compiled in its own opendssdirect context, as the server does: (engine, altdss batch). With `solve`,
    solved in snapshot mode with room to converge (the 8500-node feeder needs more than the default 15 iterations)."""
    engine = opendssdirect.NewContext()
    engine.Basic.AllowChangeDir(False)
    engine.Text.Command(f"Compile [{master}]")
    if solve:
        engine.Text.Command("Set MaxIterations=100")
        engine.Solution.Solve()
        assert engine.Solution.Converged(), master
    return engine, engine.to_altdss()
