"""Load hosting capacity (issue 30 part 1) against OpenDSS driven directly in this test, on our IEEE 123 deck and
the public IEEE 13 and IEEE 34 decks.

The reference is written from docs/studies.md, not from studies/: a new load typed as a user types it
(`New Load … model=1 pf=0.95 vminpu=0.5 vmaxpu=1.5 status=fixed`, 3-phase on nodes 1-2-3 rated line to line where
asked and present, in delta on an ungrounded bus such as our 610; else 1-phase on the bus's first phase rated line to
neutral), stepped up from one step until a trial violates, solved with the regulators acting and put back after
each trial; judged on phase nodes: a node above the high limit that was not already above, a node below the low
limit, lower than it started and not already below, a line or transformer above its normal rating that was not
already above it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect
import pytest

from api import create_app
from engine.feeder import load_feeder
from engine.settings import EngineSettings
from support.bare_feeder import MASTER_FILE, put_taps, read_taps, shape, terminal1_phases, values, worst
from support.helpers import finished
from support.paths import REPO, SHARED_REFERENCE

FEEDERS = SHARED_REFERENCE / "feeders" / "IEEETestCases"
DECKS = {"ieee123": MASTER_FILE, "ieee13": FEEDERS / "13Bus" / "IEEE13Nodeckt.dss",
         "ieee34": FEEDERS / "34Bus" / "ieee34Mod1.dss"}
HIGH, LOW, THERMAL = 1.05, 0.95, 100.0
LOAD = "model=1 vminpu=0.5 vmaxpu=1.5 status=fixed"
Found = tuple[str, set[str], float]


class Direct:
    """One deck in a plain opendssdirect context (iteration limits 1000/100, tolerance 1e-7 unless the deck sets one,
    as docs/feeder.md says a deck is solved) and the study's judgement written from the docs."""

    def __init__(self, master: Path) -> None:
        dss = self.dss = opendssdirect.NewContext()
        dss.Basic.AllowChangeDir(False)
        dss.Text.Command(f"Compile [{master}]")
        dss.Solution.MaxIterations(max(dss.Solution.MaxIterations(), 1000))
        dss.Solution.MaxControlIterations(max(dss.Solution.MaxControlIterations(), 100))
        if "tolerance" not in master.read_text(errors="replace").lower():
            dss.Solution.Convergence(1e-7)
        dss.Solution.Solve()
        b = self.batch = dss.to_altdss()
        self.node_names = [n.lower() for n in dss.Circuit.AllNodeNames()]
        bases = {}
        for bus in dss.Circuit.AllBusNames():
            dss.Circuit.SetActiveBus(bus)
            bases[bus.lower()] = dss.Bus.kVBase()
        numbers = [int(n.split(".")[1]) for n in self.node_names]
        self.phase = np.array([1 <= k <= 3 and bases[n.split(".")[0]] > 0 for n, k in zip(self.node_names, numbers)])
        self.elements = [f"line.{n}".lower() for n in values(b.Line.Name)] + \
            [f"transformer.{n}".lower() for n in values(b.Transformer.Name)]
        self.line_picks, self.line_starts = terminal1_phases(np.asarray(values(b.Line.NumConductors)),
                                                             np.asarray(values(b.Line.Phases)))
        xf_conductors, xf_terminals = (np.asarray(values(b.Transformer.NumConductors)),
                                       np.asarray(values(b.Transformer.NumTerminals)))
        starts = np.concatenate(([0], np.cumsum(xf_terminals * xf_conductors)[:-1]))
        xf_phases = np.asarray(values(b.Transformer.Phases))
        self.xf_picks = np.concatenate([np.arange(s, s + p) for s, p in zip(starts, xf_phases)])
        self.xf_starts = np.concatenate(([0], np.cumsum(xf_phases)[:-1]))
        self.norm_amps = np.concatenate([np.asarray(values(b.Line.NormAmps), dtype=float),
                                         np.asarray(values(b.Transformer.NormAmps), dtype=float)])
        self.controls = []
        for name in dss.RegControls.AllNames() if dss.RegControls.Count() else []:
            dss.RegControls.Name(name)
            self.controls.append((dss.RegControls.Transformer(), dss.RegControls.Winding()))
        self.start_v, self.start_loading = np.asarray(dss.Circuit.AllBusMagPu()), self.loading()
        self.ungrounded = {"610"} if master == MASTER_FILE else set()  # XFM1's delta 480 V secondary
        self.made: set[str] = set()

    def taps(self) -> list[float]:
        return read_taps(self.dss, self.controls)

    def set_taps(self, taps: list[float]) -> None:
        put_taps(self.dss, self.controls, taps)

    def loading(self) -> np.ndarray:
        line = np.abs(np.asarray(values(self.batch.Line.Currents))[self.line_picks])
        xf = np.abs(np.asarray(values(self.batch.Transformer.Currents))[self.xf_picks])
        current = 100.0 * np.concatenate([np.maximum.reduceat(line, self.line_starts),
                                          np.maximum.reduceat(xf, self.xf_starts)])
        return np.divide(current, self.norm_amps, out=np.zeros_like(current), where=self.norm_amps > 0)

    def preexisting(self) -> set[str]:
        high = (self.start_v > HIGH) & self.phase
        low = (self.start_v < LOW) & self.phase
        return {self.node_names[i] for i in np.flatnonzero(high | low)} | \
            {self.elements[i] for i in np.flatnonzero(self.start_loading > THERMAL)}

    def violates(self) -> Found | None:
        v = np.asarray(self.dss.Circuit.AllBusMagPu())
        if not self.dss.Solution.Converged() or not np.all(np.isfinite(v)) or v.max() > 2.0:
            return "not_converged", set(), math.nan
        high = (v > HIGH) & self.phase & ~(self.start_v > HIGH)
        if high.any():
            return "voltage_high", *worst(self.node_names, v, high, np.max)
        low = (v < LOW) & (v < self.start_v) & self.phase & ~(self.start_v < LOW)
        if low.any():
            return "voltage_low", *worst(self.node_names, v, low, np.min)
        loading = self.loading()
        hot = (loading > THERMAL) & (self.start_loading <= THERMAL)
        if hot.any():
            return "thermal", *worst(self.elements, loading, hot, np.max)
        return None

    def connection(self, bus: str, phases: int) -> tuple[list[int], str]:
        """The documented connection: nodes and OpenDSS words."""
        self.dss.Circuit.SetActiveBus(bus)
        nodes, kv_ln = sorted(self.dss.Bus.Nodes()), self.dss.Bus.kVBase()
        if phases == 3 and {1, 2, 3} <= set(nodes):
            conn = "delta" if bus in self.ungrounded else "wye"
            return [1, 2, 3], f"bus1={bus}.1.2.3 phases=3 conn={conn} kv={kv_ln * math.sqrt(3):.6f}"
        return [nodes[0]], f"bus1={bus}.{nodes[0]} phases=1 conn=wye kv={kv_ln:.6f}"

    def trial(self, name: str, connection: str, kw: float) -> Found | None:
        taps = self.taps()
        if name in self.made:
            self.dss.Text.Command(f"edit Load.{name} kw={kw!r} pf=0.95 enabled=yes")
        else:
            self.dss.Text.Command(f"New Load.{name} {connection} kw={kw!r} pf=0.95 {LOAD}")
            self.made.add(name)
        try:
            self.dss.Solution.Solve()
            found = self.violates()
        except opendssdirect.DSSException:
            found = ("not_converged", set(), math.nan)
        self.dss.Text.Command(f"Disable Load.{name}")
        self.set_taps(taps)
        self.dss.Solution.Solve()
        return found

    def scan(self, bus: str, phases: int, step: float, top: float) -> tuple[list[int], float, Found | None]:
        """Brute force: every step from one up until a trial violates."""
        nodes, connection = self.connection(bus, phases)
        kw = step
        while kw <= top + 1e-9:
            found = self.trial(f"scan_{bus}", connection, kw)
            if found:
                return nodes, kw - step, found
            kw += step
        return nodes, top, None


_apps: dict[str, Any] = {}


@pytest.fixture(scope="module")
def served():
    def client(name: str):
        if name not in _apps:
            feeder = None if name == "ieee123" else load_feeder(DECKS[name], neighbourhood_file=None)
            _apps[name] = create_app({"TESTING": True, "WORKERS": 1, "ENGINE_SETTINGS": EngineSettings(feeder=feeder)})
        return _apps[name].test_client()

    yield client
    for application in _apps.values():
        application.extensions["jobs"].close()
    _apps.clear()


def study(client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/studies/load_hosting_capacity?wait=60", json=body)
    assert response.status_code in (200, 202), response.get_json()
    return finished(client, response, timeout_s=900)["result"]


SAMPLES = [
    pytest.param("ieee123", [("85", 1), ("610", 3), ("67", 3), ("114", 1), ("35", 3)], 20.0, 2000.0, id="ieee123"),
    pytest.param("ieee13", [("675", 3), ("611", 1), ("652", 1), ("634", 3)], 25.0, 3000.0, id="ieee13"),
    pytest.param("ieee34", [("890", 3), ("848", 3), ("822", 1), ("856", 1)], 25.0, 2000.0, id="ieee34"),
]


#: Buses where a new load lifts a node above the high limit over a window of sizes only (the deck's regulators'
#: discrete taps): IEEE 13's 634 (a 3-phase load of 600 to 775 kW lifts 675.2 above 1.05 pu, 800 kW does not). There
#: the search, like generation's, finds a boundary (a passing trial and a failing one a step above) past the window.
WINDOWS = {("ieee13", "634")}


@pytest.mark.parametrize("deck,buses,step,top", SAMPLES)
def test_load_hosting_capacity_equals_a_brute_force_scan(served, deck, buses, step, top):
    """Each sample bus's capacity, binding kind, element and value equal a scan by hand; the starting state's
    violations are listed apart and bind no bus."""
    direct = Direct(DECKS[deck])
    client = served(deck)
    result = study(client, {"buses": [bus for bus, _ in buses], "phases": 3, "step_kw": step, "max_kw": top})
    assert {p["element"].lower() for p in result["preexisting"]} == direct.preexisting()
    assert result["criteria"]["pf"] == 0.95
    for (bus, phases), row in zip(buses, result["buses"]):
        nodes, capacity, found = direct.scan(bus, phases, step, top)
        if (deck, bus) in WINDOWS:  # the search finds a boundary above the window (docs/studies.md says so)
            assert found is not None and found[0] == "voltage_high" and capacity < row["hosting_capacity_kW"]
            connection = direct.connection(bus, phases)[1]
            assert direct.trial("window", connection, row["hosting_capacity_kW"]) is None
            above = direct.trial("window", connection, row["hosting_capacity_kW"] + step)
            assert above is not None and above[0] == row["limited_by"]["kind"]
            continue
        assert (row["bus"], row["nodes"], row["hosting_capacity_kW"]) == (bus, nodes, pytest.approx(capacity)), \
            (bus, row, found)
        if found is None:
            assert row["limited_by"]["kind"] == "max_kw"
            continue
        kind, elements, value = found
        assert row["limited_by"]["kind"] == kind and row["limited_by"]["element"].lower() in elements, (bus, row)
        assert row["limited_by"]["value"] == pytest.approx(value, rel=1e-6)
        assert row["limited_by"]["element"].lower() not in direct.preexisting()


def test_named_hours_and_the_least_over_hours(served):
    """evening_peak is the highest total load among 16:00-21:00 (hour of the year % 24 in 16..20) and peak_load the
    highest of all, from our deck's set-points x the residential shape (computed here); a bus's row is its least
    over the hours, each hour's capacity equal to a study at that hour alone."""
    client = served("ieee123")
    total_kw = sum(row["base_kW"] for row in client.get("/neighbourhoods").get_json()["neighbourhoods"])
    yearly = shape("residential")
    evening = [h for h in range(8760) if h % 24 in range(16, 21)]
    evening_peak = max(evening, key=lambda h: (yearly[h], -h))
    result = study(client, {"buses": ["85", "67"], "step_kw": 20, "max_kw": 2000, "load_shape": "residential",
                            "hours": ["evening_peak", "peak_load", 200]})
    assert [h["name"] for h in result["hours"]] == ["evening_peak", "peak_load", None]
    assert [h["hour_of_year"] for h in result["hours"]] == [evening_peak, int(np.argmax(yearly)), 200]
    assert result["hours"][0]["load_kW"] == pytest.approx(total_kw * yearly[evening_peak], rel=1e-9)
    for row in result["buses"]:
        assert row["hosting_capacity_kW"] == min(row["by_hour"].values())
        assert row["by_hour"][str(row["binding_hour"])] == row["hosting_capacity_kW"]
    alone = study(client, {"buses": ["85", "67"], "step_kw": 20, "max_kw": 2000, "load_shape": "residential",
                           "hours": [200]})
    assert [r["by_hour"]["200"] for r in result["buses"]] == [r["hosting_capacity_kW"] for r in alone["buses"]]


@pytest.mark.parametrize("body,status,field", [
    ({"pf": 0.3}, 422, "pf"),
    ({"pf": 1.01}, 422, "pf"),
    ({"step_kw": 0.5}, 422, "step_kw"),
    ({"max_kw": 200_000}, 422, "max_kw"),
    ({"buses": ["nowhere"]}, 422, "buses[0]"),
    ({"phases": 2}, 400, "phases"),
    ({"hours": ["daytime_minimum"]}, 400, "hours[0]"),
    ({"hours": [9000]}, 400, "hours[0]"),
    ({"pf": "0.9"}, 400, "pf"),
    ({"limits": {"preexisting": "ignore"}}, 400, "limits.preexisting"),
    ({"inverter": {"mode": "volt_var"}}, 400, "inverter"),
])
def test_a_bad_request_names_its_field_and_queues_nothing(served, body, status, field):
    client = served("ieee123")
    before = len(client.get("/jobs").get_json()["jobs"])
    response = client.post("/studies/load_hosting_capacity", json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["field"] == field and response.get_json()["message"].startswith(field)
    assert len(client.get("/jobs").get_json()["jobs"]) == before


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """The docs' base-case figures from a result: least (with its buses and bounds), median and most capacity, and
    how many buses each kind binds."""
    rows = [row for row in result["buses"] if row["hosting_capacity_kW"] is not None]
    kw = sorted(row["hosting_capacity_kW"] for row in rows)
    least = [row for row in rows if row["hosting_capacity_kW"] == kw[0]]
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["limited_by"]["kind"]] = kinds.get(row["limited_by"]["kind"], 0) + 1
    return {"buses": len(rows), "least": kw[0], "median": float(np.median(kw)), "most": kw[-1],
            "least_at": sorted((row["bus"], row["limited_by"]["kind"], row["limited_by"]["element"]) for row in least),
            "kinds": kinds}


def test_the_docs_base_case_figures_are_the_studys_answer(served):
    """docs/studies.md's IEEE 123 base-case figures (every bus, step 10 kW) hold for the study's answer now."""
    result = study(served("ieee123"), {"buses": ["all"], "step_kw": 10})
    found = figures(result)
    text = re.search(r"<!-- figures:load-hosting-capacity -->(.*?)<!-- /figures:load-hosting-capacity -->",
                     (REPO / "docs" / "studies.md").read_text(), flags=re.S).group(1)
    text = " ".join(text.split())
    assert f"of the {found['buses']} buses that can take a load" in text
    for kind, count in found["kinds"].items():
        assert f"{count} by {kind}" in text, (kind, count)
    assert f"least {found['least']:,.0f} kW" in text
    assert f"median {found['median']:,.0f} kW" in text and f"most {found['most']:,.0f} kW" in text
    for bus, kind, element in found["least_at"]:
        assert f"bus {bus}, {kind} at {element}" in text, (bus, kind, element)
