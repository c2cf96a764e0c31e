"""Any OpenDSS deck, read as OpenDSS reads it: the files a deck compiles, each engine compiling its own copy in a
scratch folder (never writing into the user's folder), the deck's own generators and PV systems read as OpenDSS
reads them, solve settings at least as strict as ours, and a deck that does not compile refused with OpenDSS's
own words, file and line. References: OpenDSS driven directly on the same deck."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import opendssdirect
import pytest

from engine.deck import read_deck
from engine.errors import FeederError, SimulationError
from simulation_core import OpenDSSCircuit
from support.paths import SHARED_REFERENCE

FEEDERS = SHARED_REFERENCE / "feeders"
IEEE13 = FEEDERS / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"


def direct(master: Path, tolerance: float = 1e-7) -> opendssdirect.ODD:
    """The deck in a plain engine, solved as our circuit solves it (its iteration limits and tolerance)."""
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    dss.Text.Command(f"Compile [{master}]")
    dss.Solution.MaxIterations(1000)
    dss.Solution.MaxControlIterations(100)
    dss.Solution.Convergence(tolerance)
    dss.Solution.Solve()
    return dss


@pytest.fixture
def ieee13_copy(tmp_path: Path) -> Path:
    """The IEEE 13 deck and the file it redirects to, in a folder of the test's own (tests may edit it)."""
    shutil.copytree(IEEE13.parent, tmp_path / "13Bus")
    shutil.copy(IEEE13.parent.parent / "IEEELineCodes.DSS", tmp_path / "IEEELineCodes.DSS")
    return tmp_path / "13Bus" / IEEE13.name


def test_the_deck_is_the_files_it_compiles_and_one_hash_of_them():
    deck = read_deck(IEEE13)
    names = [name for name, _ in deck.files]
    assert deck.master == "13Bus/IEEE13Nodeckt.dss"
    assert "IEEELineCodes.DSS" in names and "13Bus/IEEELineCodes.DSS" in names  # the redirect to ../ followed
    assert "13Bus/IEEE13Node_BusXY.csv" in names  # BusCoords
    assert len(deck.sha256) == 64 and read_deck(IEEE13).sha256 == deck.sha256


def test_a_changed_file_changes_the_hash_and_a_comment_hides_a_redirect(ieee13_copy: Path):
    before = read_deck(ieee13_copy)
    with ieee13_copy.open("a") as master:
        master.write("\n! Redirect nothere.dss\n// Redirect neither.dss\n/* Redirect nor.dss */\n")
    after = read_deck(ieee13_copy)
    assert after.sha256 != before.sha256 and [n for n, _ in after.files] == [n for n, _ in before.files]


def test_each_engine_compiles_its_own_copy_and_never_writes_into_the_users_folder(ieee13_copy: Path):
    """A regulator with debugtrace=yes writes a trace file as it solves: OpenDSS puts it beside the deck. Two
    engines on such a deck in one process each write into their own scratch folder."""
    text = ieee13_copy.read_text().replace("new regcontrol.Reg1  transformer=Reg1 winding=2",
                                           "new regcontrol.Reg1  transformer=Reg1 winding=2 debugtrace=yes", 1)
    ieee13_copy.write_text(text)
    folder = ieee13_copy.parent.parent
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    first, second = OpenDSSCircuit(ieee13_copy, None), OpenDSSCircuit(ieee13_copy, None)
    first.add_generator("675", 3, 500.0)
    second.add_generator("680", 3, 300.0)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    traces = [circuit._master_copy.parent / "REG_reg1.csv" for circuit in (first, second)]
    assert all(trace.is_file() for trace in traces) and traces[0] != traces[1]  # written, each its own
    assert first.snapshot.section("power_summary")["total_generation_kW"] == pytest.approx(500.0, rel=1e-6)
    first.close()
    second.close()


def test_the_decks_own_generators_and_pv_systems_are_read_as_opendss_reads_them(ieee13_copy: Path):
    text = ieee13_copy.read_text().replace(
        "Set Voltagebases=[115, 4.16, .48]",
        "New Generator.deckgen bus1=675 phases=3 kv=4.16 kw=300 pf=1\n"
        "New PVSystem.deckpv bus1=680 phases=3 kv=4.16 kva=250 pmpp=200 irradiance=1\n"
        "Set Voltagebases=[115, 4.16, .48]", 1)
    ieee13_copy.write_text(text)
    circuit = OpenDSSCircuit(ieee13_copy, None)
    dss = direct(ieee13_copy)
    ours = circuit.snapshot
    assert list(dss.Circuit.AllNodeNames()) == [f"{b}.{n}" for b, n in zip(ours.layout.node_bus,
                                                                            ours.layout.node_number)]
    assert np.max(np.abs(ours.arrays["vmag_pu"] - np.asarray(dss.Circuit.AllBusMagPu()))) < 1e-6
    delivered = -sum(dss.CktElement.TotalPowers()[0] for _ in [dss.Circuit.SetActiveElement("Generator.deckgen")])
    delivered -= sum(dss.CktElement.TotalPowers()[0] for _ in [dss.Circuit.SetActiveElement("PVSystem.deckpv")])
    assert ours.section("power_summary")["total_generation_kW"] == pytest.approx(delivered, rel=1e-6)
    assert delivered > 400
    assert circuit.generators() == []  # the deck's are not ours to list or remove
    change = circuit.add_generator("634", 3, 100.0)  # ours beside the deck's, on the 480 V bus
    assert change.snapshot.section("power_summary")["total_generation_kW"] == pytest.approx(delivered + 100, rel=1e-4)
    circuit.remove_generator(change["generator"])
    assert circuit.snapshot.section("power_summary")["total_generation_kW"] == pytest.approx(delivered, rel=1e-6)


def test_solve_settings_are_the_decks_with_our_limits_and_tolerance_unless_it_sets_one(ieee13_copy: Path):
    circuit = OpenDSSCircuit(ieee13_copy, None)
    assert circuit._engine.Solution.Convergence() == 1e-7 and circuit._engine.Solution.MaxIterations() >= 1000
    ieee13_copy.write_text(ieee13_copy.read_text().replace("Set Voltagebases=[115, 4.16, .48]",
                                                           "Set tolerance=0.00001\nSet Voltagebases=[115, 4.16, .48]"))
    assert OpenDSSCircuit(ieee13_copy, None)._engine.Solution.Convergence() == pytest.approx(1e-5)


def test_a_deck_that_does_not_compile_is_refused_naming_the_feeder_file_line_and_opendss_words(ieee13_copy: Path):
    lines = ieee13_copy.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.lower().startswith("new transformer.sub"))
    lines.insert(at, "New Transformr.typo phases=3")
    ieee13_copy.write_text("\n".join(lines) + "\n")
    with pytest.raises(FeederError) as refused:
        OpenDSSCircuit(ieee13_copy, None)
    message = str(refused.value)
    assert message.startswith("feeder ieee13nodeckt: OpenDSS could not compile")
    assert f"line: {at + 1}" in message and str(ieee13_copy) in message and "Transformr" in message
    assert "opendss-feeder-" not in message  # the user's paths, not our scratch copy's


def test_a_missing_redirected_file_is_named(ieee13_copy: Path):
    (ieee13_copy.parent.parent / "IEEELineCodes.DSS").unlink()
    with pytest.raises(FeederError, match="IEEELineCodes"):
        OpenDSSCircuit(ieee13_copy, None)


def test_the_scratch_folder_goes_with_the_engine(ieee13_copy: Path):
    circuit = OpenDSSCircuit(ieee13_copy, None)
    scratch = circuit._master_copy.parent
    assert scratch.is_dir()
    circuit.close()
    assert not scratch.exists()


def test_a_deck_without_a_neighbourhood_file_gets_derived_groups_covering_every_load():
    circuit = OpenDSSCircuit(IEEE13, None)
    facts, rows = circuit.feeder_facts(), circuit.neighbourhoods()
    assert facts["neighbourhoods"] == {"source": "derived", "count": len(rows)} and len(rows) >= 2
    loads = [load for row in rows for load in row["loads"]]
    assert sorted(loads) == sorted(circuit._index.load_names)  # every load in exactly one
    assert [row["buses"] for row in rows] == [row["buses"] for row in OpenDSSCircuit(IEEE13, None).neighbourhoods()]
    with pytest.raises(SimulationError, match=rf"neighbourhood: expected one of \[1, .*{len(rows)}\], got 99"):
        circuit.scale_neighbourhood_loads(99, 1.2)
    change = circuit.scale_neighbourhood_loads(rows[0]["id"], 2.0)
    assert sorted(change["loads_changed"]) == sorted(rows[0]["loads"])


def test_our_deck_keeps_its_neighbourhood_file():
    assert OpenDSSCircuit().feeder_facts()["neighbourhoods"] == {"source": "file", "count": 14}
