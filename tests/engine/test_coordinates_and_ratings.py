"""Issue 28, parts 9 and 10, as the engine serves them: every bus's x and y with where they came from, and every
line's rating with where it came from, on our deck and the public ones, against OpenDSS driven directly.

- Coordinates: every bus of each deck has finite x and y; those OpenDSS holds for the deck (`Bus.Coorddefined`,
  `Bus.X`, `Bus.Y` in a plain engine) are `deck` and equal to the last bit; the others are `placed`; the same deck
  compiled twice gives the same map; `feeder_facts` counts both.
- Ratings: every line's `NormAmps`, `EmergAmps` equal a plain engine's, and `rating_source` is `default` exactly
  where OpenDSS left its 400 A / 600 A (none of these decks sets those values by hand); a small deck written here
  sets ratings every way a deck can (on the line, on its LineCode, through a geometry's wires, by hand at exactly
  the default values) and leaves some at the default.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import opendssdirect
import orjson
import pytest

from engine.feeder_model import forget_models
from engine.ratings import OPENDSS_DEFAULT_AMPS
from simulation_core import OpenDSSCircuit
from support.paths import SHARED_REFERENCE

FEEDERS = SHARED_REFERENCE / "feeders"
IEEE123 = Path(__file__).resolve().parents[2] / "Test_Systems" / "IEEE_123_Bus-G" / "Master.dss"

DECKS = [
    pytest.param(IEEE123, id="ieee123"),
    pytest.param(FEEDERS / "IEEETestCases/13Bus/IEEE13Nodeckt.dss", id="ieee13"),
    pytest.param(FEEDERS / "IEEETestCases/34Bus/ieee34Mod1.dss", id="ieee34"),
    pytest.param(FEEDERS / "EPRITestCircuits/ckt5/Master_ckt5.dss", id="ckt5"),
    pytest.param(FEEDERS / "IEEETestCases/8500-Node/Master.dss", id="ieee8500", marks=pytest.mark.slow),
]

#: What each public deck holds, from FEEDERS/PROVENANCE.md (buses, buses with coordinates) and our deck's files.
EXPECTED_GIVEN = {"IEEE13Nodeckt.dss": (16, 16), "ieee34Mod1.dss": (37, 0), "Master_ckt5.dss": (2998, 969),
                  "Master.dss": None}


def direct(master: Path) -> opendssdirect.OpenDSSDirect:
    """The deck compiled in a plain engine (no code of ours), its bus list made as a solve makes it."""
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    dss.Text.Command(f"Compile [{master}]")
    dss.Text.Command("MakeBusList")
    return dss


@pytest.fixture(scope="module", params=DECKS)
def deck(request: pytest.FixtureRequest) -> Iterator[tuple[Path, OpenDSSCircuit, opendssdirect.OpenDSSDirect]]:
    master = request.param
    circuit = OpenDSSCircuit(master) if master != IEEE123 else OpenDSSCircuit()
    yield master, circuit, direct(master)
    circuit.close()


# ---------------------------------------------------------------------------------------------- coordinates
def test_every_bus_has_coordinates_the_decks_as_opendss_reads_them(deck) -> None:
    master, circuit, dss = deck
    rows = {row["name"]: row for row in circuit.buses()}
    assert list(rows) == [name.lower() for name in dss.Circuit.AllBusNames()]
    given = {}
    for name in dss.Circuit.AllBusNames():
        dss.Circuit.SetActiveBus(name)
        if dss.Bus.Coorddefined():
            given[name.lower()] = (dss.Bus.X(), dss.Bus.Y())
    at_origin = {name for name, xy in given.items() if xy == (0.0, 0.0)}  # maybe "none given": engine.topology
    for name, row in rows.items():
        assert math.isfinite(row["x"]) and math.isfinite(row["y"]), row
        if row["xy_source"] == "deck":
            assert (row["x"], row["y"]) == given[name]  # the very floats OpenDSS holds
        else:
            assert row["xy_source"] == "placed" and (name not in given or name in at_origin), row
    given = {name: xy for name, xy in given.items() if rows[name]["xy_source"] == "deck"}
    facts = circuit.feeder_facts()["coordinates"]
    assert facts == {"given": len(given), "placed": len(rows) - len(given)}
    expected = EXPECTED_GIVEN.get(master.name)
    if expected is not None:
        assert (len(rows), len(given)) == expected
    if master == IEEE123:  # the open-tie stubs are the only buses the deck does not place
        assert {name for name, row in rows.items() if row["xy_source"] == "placed"} == {"94_open", "300_open"}


def test_the_map_is_the_same_for_every_compile_of_a_deck(deck) -> None:
    """A fresh reading of the deck (the process's remembered feeder models forgotten) places every bus where the
    first did; an engine of a feeder already read takes the same map."""
    master, circuit, _ = deck
    forget_models()
    again = OpenDSSCircuit(master) if master != IEEE123 else OpenDSSCircuit()
    try:
        assert again.buses() == circuit.buses()
    finally:
        again.close()
    circuit.reset()  # a recompile keeps the map
    assert [(r["x"], r["y"], r["xy_source"]) for r in circuit.buses()] == \
        [(r["x"], r["y"], r["xy_source"]) for r in again.buses()]


def test_placed_buses_do_not_pile_up(deck) -> None:
    """Placed buses are spread out: no two buses of a deck without coordinates share a place."""
    master, circuit, _ = deck
    rows = circuit.buses()
    placed = [(r["x"], r["y"]) for r in rows if r["xy_source"] == "placed"]
    if placed and master.name == "ieee34Mod1.dss":
        assert len(set(placed)) == len(placed) == len(rows)


def test_one_bus_answers_with_its_coordinates(deck) -> None:
    _, circuit, _ = deck
    rows = circuit.buses()
    for row in (rows[0], rows[-1]):
        one = circuit.bus(row["name"])
        assert (one["x"], one["y"], one["xy_source"]) == (row["x"], row["y"], row["xy_source"])


# ---------------------------------------------------------------------------------------------- ratings
def test_every_lines_rating_and_its_source_as_opendss_holds_them(deck) -> None:
    master, circuit, dss = deck
    rows = circuit.snapshot.line_flows
    assert orjson.loads(circuit.snapshot.line_flows_json) == orjson.loads(orjson.dumps(rows))
    expected = {}
    for name in dss.Lines.AllNames():  # disabled lines too (ckt5's ties, the 8500's open switches): rows have them
        dss.Lines.Name(name)
        norm, emerg = dss.Lines.NormAmps(), dss.Lines.EmergAmps()
        expected[name.lower()] = (norm, emerg, "default" if (norm, emerg) in (OPENDSS_DEFAULT_AMPS, (0, 0)) else "deck")
    assert {r["Line"]: (r["NormAmps"], r["EmergAmps"], r["rating_source"]) for r in rows} == expected
    default = sum(source == "default" for *_, source in expected.values())
    warned = [w for w in circuit.feeder_facts()["warnings"] if "OpenDSS's default" in w]
    assert warned == ([f"{default} of {len(rows)} lines are rated at OpenDSS's default (400 A normal, 600 A "
                       f"emergency): the deck gives them no rating, so their thermal limits are a guess (GET /lines: "
                       f"rating_source)"] if default else [])
    if master == IEEE123:
        assert default == 0
    if master.name in ("IEEE13Nodeckt.dss", "ieee34Mod1.dss"):
        assert default == len(rows)


RATED_DECK = """
Clear
New Circuit.rated basekv=12.47 bus1=src pu=1.0
New LineCode.rated nphases=3 r1=0.3 x1=0.6 units=km normamps=250 emergamps=300
New LineCode.atdefault nphases=3 r1=0.3 x1=0.6 units=km normamps=400 emergamps=600
New LineCode.unrated nphases=3 r1=0.3 x1=0.6 units=km
New WireData.acsr diam=1.0 gmrac=0.4 rac=0.3 runits=km gmrunits=cm radunits=cm normamps=530
New WireData.plain diam=1.0 gmrac=0.4 rac=0.3 runits=km gmrunits=cm radunits=cm
New LineGeometry.ratedwires nconds=3 nphases=3 cond=1 wire=acsr x=-1 h=10 units=m cond=2 wire=acsr x=0 h=10 units=m
~ cond=3 wire=acsr x=1 h=10 units=m
New LineGeometry.plainwires nconds=3 nphases=3 cond=1 wire=plain x=-1 h=10 units=m cond=2 wire=plain x=0 h=10 units=m
~ cond=3 wire=plain x=1 h=10 units=m
New Line.by_code bus1=src bus2=a linecode=rated length=1 units=km
New Line.code_at_default bus1=a bus2=b linecode=atdefault length=1 units=km
New Line.code_unrated bus1=b bus2=c linecode=unrated length=1 units=km
New Line.own bus1=c bus2=d r1=0.3 x1=0.6 length=1 units=km normamps=120 emergamps=150
New Line.own_at_default bus1=d bus2=e r1=0.3 x1=0.6 length=1 units=km normamps=400 emergamps=600
New Line.plain bus1=e bus2=f r1=0.3 x1=0.6 length=1 units=km
New Line.geometry_rated bus1=f bus2=g geometry=ratedwires length=1 units=km
New Line.geometry_unrated bus1=g bus2=h geometry=plainwires length=1 units=km
New Line.switch bus1=h bus2=i switch=yes
New Load.end bus1=i kv=12.47 kw=100 kvar=30
Set VoltageBases=[12.47]
CalcVoltageBases
"""

RATED_SOURCES = {"by_code": "deck", "code_at_default": "deck", "code_unrated": "default", "own": "deck",
                 "own_at_default": "deck", "plain": "default", "geometry_rated": "deck",
                 "geometry_unrated": "default", "switch": "default"}


def test_a_rating_is_the_decks_wherever_the_deck_sets_it(tmp_path: Path) -> None:
    master = tmp_path / "rated.dss"
    master.write_text(RATED_DECK, encoding="utf-8")
    dss = direct(master)
    held = {}
    for name in dss.Lines.AllNames():
        dss.Lines.Name(name)
        held[name] = (dss.Lines.NormAmps(), dss.Lines.EmergAmps())
    # What OpenDSS makes of the deck: the values alone cannot tell a rating the deck set from its default.
    assert held["code_at_default"] == held["own_at_default"] == held["plain"] == OPENDSS_DEFAULT_AMPS
    assert held["by_code"] == (250.0, 300.0) and held["own"] == (120.0, 150.0)
    assert held["geometry_rated"][0] == 530.0
    assert held["geometry_unrated"] == (0.0, 0.0)  # no rating at all: OpenDSS's 400 A does not apply here
    circuit = OpenDSSCircuit(master, neighbourhood_file=None)
    try:
        rows = {r["Line"]: r for r in circuit.snapshot.line_flows}
        assert {name: (r["NormAmps"], r["EmergAmps"]) for name, r in rows.items()} == held
        assert {name: r["rating_source"] for name, r in rows.items()} == RATED_SOURCES
        warnings = circuit.feeder_facts()["warnings"]
        assert f"3 of {len(rows)} lines are rated at OpenDSS's default" in warnings[0]
        assert f"1 of {len(rows)} lines have no rating at all" in warnings[1]
        # a line rated 0 A has no loading (null in the answer) and no thermal limit, not an infinite overload
        assert math.isnan(rows["geometry_unrated"]["Loading_pct"])
        assert all(r["Loading_pct"] > 0 for n, r in rows.items() if n != "geometry_unrated")
        answered = {r["Line"]: r for r in orjson.loads(circuit.snapshot.results_json)["line_flows"]}
        assert answered["geometry_unrated"]["Loading_pct"] is None and answered["plain"]["Loading_pct"] > 0
        assert not [v for v in circuit.snapshot.section("violations")["thermal"] if "geometry_unrated" in str(v)]
    finally:
        circuit.close()
