"""docs/inverters.md: its script runs verbatim against a real server, its OpenDSS form typed into a bare engine
gives the API's answer, and its bound on what a dry run leaves behind holds. (Its measured figures are checked in
test_study_figures.py, with the hosting-capacity figures of docs/studies.md.)"""

from __future__ import annotations

import json
import re

import numpy as np
import opendssdirect
import pytest

from simulation_core import DEFAULT_MASTER_FILE, OpenDSSCircuit
from support.docs import NEEDS_CURL, blocks, run_script
from support.inverter_reference import LIGHT
from support.paths import REPO

PAGE = "docs/inverters.md"


@NEEDS_CURL
def test_the_pages_script_works_verbatim(live_server, tmp_path):
    printed = run_script(live_server, tmp_path, PAGE, '"inverter": {"mode": "volt_var"}')
    capacity = dict(re.findall(r'"bus":"(\d+)".*?"hosting_capacity_kW":([\d.]+)', printed.splitlines()[0]))
    named = json.loads((REPO / "docs" / "figures" / "inverters.json").read_text())["named"]
    assert capacity == {row["bus"]: f"{row['volt_var_kW']:.1f}" for row in named}  # the page's figures, by bus
    assert '"mode":"volt_var_volt_watt"' in printed and '"curtailed_kWh"' in printed
    assert "the controls did not settle within 100 control iterations for generator gen_85_3" in printed


def test_the_opendss_form_typed_by_hand_gives_the_apis_answer():
    """The page's three commands (its `dss` block) in a bare engine equal the API's gen_85_3 (150 kW, volt-var) on
    the base case."""
    (form,) = blocks("dss", PAGE)
    commands = form.text.strip().splitlines()
    assert len(commands) == 3 and commands[0].startswith("New PVSystem.gen_85_3_1 ")
    engine = opendssdirect.NewContext()
    engine.Text.Command(f"Compile [{DEFAULT_MASTER_FILE}]")
    engine.Solution.Solve()
    for command in commands:
        engine.Text.Command(command)
    engine.Solution.Solve()
    circuit = OpenDSSCircuit()
    circuit.add_generator("85", 1, 150, inverter={"mode": "volt_var"})
    ours = np.asarray(circuit._engine.Circuit.AllBusMagPu())
    assert np.max(np.abs(ours - np.asarray(engine.Circuit.AllBusMagPu()))) < 1e-6
    engine.Circuit.SetActiveElement("PVSystem.gen_85_3_1")
    kw, kvar = (-x for x in engine.CktElement.TotalPowers())
    row = circuit.generators()[0]
    assert row["delivered_kW"] == pytest.approx(kw, abs=0.01) and row["delivered_kVAR"] == pytest.approx(kvar, abs=0.01)


@pytest.mark.parametrize("mode,volts,kw", [("volt_var", 2e-4, 1.0), ("volt_var_volt_watt", 1e-3, 5.0)])
def test_a_dry_run_leaves_inverter_controls_within_the_stated_bound(mode, volts, kw):
    """Without inverters a dry run changes nothing (tests/api/test_scenarios.py); with them, the re-solve after it
    stops within the controls' tolerances of where it was: the page's bound, for its example."""
    circuit = OpenDSSCircuit()
    for neighbourhood in range(1, 15):
        circuit.scale_neighbourhood_loads(neighbourhood, LIGHT)
    circuit.add_generator("85", 1, 400, inverter={"mode": mode})
    before, row = np.asarray(circuit._engine.Circuit.AllBusMagPu()), circuit.generators()[0]
    circuit.add_generator("114", 1, 300, dry_run=True)
    assert circuit.snapshot.section("power_summary")["total_generation_kW"] == row["delivered_kW"]  # as answered
    circuit.scale_neighbourhood_loads(3, 1.0)  # a change that changes nothing: the engine's state read afresh
    after = circuit.generators()[0]
    assert np.max(np.abs(np.asarray(circuit._engine.Circuit.AllBusMagPu()) - before)) < volts
    assert abs(after["delivered_kW"] - row["delivered_kW"]) < kw
    assert abs(after["delivered_kVAR"] - row["delivered_kVAR"]) < kw


def test_the_python_client_takes_the_inverter(live_server):
    from client import GridClient

    grid = GridClient(live_server)
    pv = grid.new_scenario("client smart pv")
    try:
        after = pv.add_generator("85", phases=1, kw=150, inverter={"mode": "volt_var"})
        assert after.action["inverter"]["mode"] == "volt_var"
        rows = pv.generators()
        assert rows.loc["gen_85_3", "mode"] == "volt_var" and rows.loc["gen_85_3", "kva"] == 150
        assert rows.loc["gen_85_3", "curtailed_kW"] == pytest.approx(150 - rows.loc["gen_85_3", "delivered_kW"])
        smart = pv.hosting_capacity(buses=["92"], hours=["daytime_minimum"], inverter={"mode": "volt_var"})
        assert smart.attrs["criteria"]["inverter"]["mode"] == "volt_var" and smart.loc["92", "hosting_capacity_kW"] > 0
        spread = pv.stochastic_hosting_capacity(start=20, stop=80, step=30, samples=2, inverter={"mode": "volt_var"})
        assert spread.spec["inverter"]["mode"] == "volt_var" and len(spread.levels) == 3
    finally:
        pv.delete()
