"""README's "Smart inverters" section: its script runs verbatim against a real server, its OpenDSS form typed into a
bare engine gives the API's answer, its figures are what the studies measure, and its bound on what a dry run leaves
behind holds."""

from __future__ import annotations

import json
import re
import statistics

import numpy as np
import opendssdirect
import pytest

from api import create_app
from simulation_core import DEFAULT_MASTER_FILE, OpenDSSCircuit
from support.helpers import finished
from support.inverter_reference import LIGHT
from support.paths import REPO
from support.readme import NEEDS_CURL, run_readme_script

SECTION = (REPO / "README.md").read_text().split("## Smart inverters")[1].split("\n## ")[0]


def prose() -> str:
    """The section's text, lines joined (figures may break across lines)."""
    return " ".join(SECTION.split())


@NEEDS_CURL
def test_the_sections_script_works_verbatim(live_server, tmp_path):
    printed = run_readme_script(live_server, tmp_path, '"inverter": {"mode": "volt_var"}')
    capacity = dict(re.findall(r'"bus":"(\d+)".*?"hosting_capacity_kW":([\d.]+)', printed.splitlines()[0]))
    assert capacity == {"85": "170.0", "114": "300.0", "92": "280.0"}
    assert '"mode":"volt_var_volt_watt"' in printed and '"curtailed_kWh"' in printed
    assert "the controls did not settle within 100 control iterations for generator gen_85_3" in printed


def test_the_opendss_form_typed_by_hand_gives_the_apis_answer():
    """The section's three commands in a bare engine equal the API's gen_85_3 (150 kW, volt-var) on the base case."""
    commands = re.search(r"```\n(New PVSystem.*?)```", SECTION, flags=re.S).group(1).strip().splitlines()
    assert len(commands) == 3
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
    """Without inverters a dry run changes nothing (tests/test_scenarios.py); with them, the re-solve after it
    stops within the controls' tolerances of where it was: the section's bound, for its example."""
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


@pytest.fixture(scope="module")
def daytime_minimum():
    """Every bus at the daytime minimum, with and without a volt-var trial generator."""
    app = create_app({"TESTING": True, "WORKERS": 2})
    client = app.test_client()
    try:
        results = {}
        for name, extra in (("plain", {}), ("volt_var", {"inverter": {"mode": "volt_var"}})):
            body = {"buses": ["all"], "hours": ["daytime_minimum"], **extra}
            results[name] = finished(client, client.post("/studies/hosting_capacity", json=body),
                                     timeout_s=600)["result"]
        yield results
    finally:
        app.extensions["jobs"].close()


@pytest.mark.slow
def test_the_measured_gain_is_what_the_studies_give(daytime_minimum):
    plain = {r["bus"]: r for r in daytime_minimum["plain"]["buses"] if r["hosting_capacity_kW"] is not None}
    smart = {r["bus"]: r for r in daytime_minimum["volt_var"]["buses"]}
    assert daytime_minimum["volt_var"]["hours"][0]["hour_of_year"] == 6803 and "hour 6803" in prose()
    gains = {bus: smart[bus]["hosting_capacity_kW"] - row["hosting_capacity_kW"] for bus, row in plain.items()}
    text = prose()
    least, most = min(gains, key=lambda b: (gains[b], b)), max(gains, key=lambda b: (gains[b], b))
    said = re.search(r"over the (\d+) buses that can host a generator the median gain is (-?[\d,]+) kW \((\d+) buses "
                     r"gain, (\d+) are unchanged, (\d+) lose\), the least −([\d,]+) kW \(bus (\w+): ([\d,]+) → ([\d,]+) "
                     r"kW.*?the most \+([\d,]+) kW \(bus (\w+): ([\d,]+) → ([\d,]+) kW", text)
    assert said, "the section's figures sentence"
    number = lambda s: float(s.replace(",", ""))  # noqa: E731
    assert int(said.group(1)) == len(gains)
    assert number(said.group(2)) == statistics.median(gains.values())
    assert [int(said.group(i)) for i in (3, 4, 5)] == [sum(g > 0 for g in gains.values()),
                                                        sum(g == 0 for g in gains.values()),
                                                        sum(g < 0 for g in gains.values())]
    assert (-number(said.group(6)), said.group(7)) == (gains[least], least)
    assert (number(said.group(8)), number(said.group(9))) == (plain[least]["hosting_capacity_kW"],
                                                              smart[least]["hosting_capacity_kW"])
    assert (number(said.group(10)), said.group(11)) == (gains[most], most)
    assert (number(said.group(12)), number(said.group(13))) == (plain[most]["hosting_capacity_kW"],
                                                                smart[most]["hosting_capacity_kW"])
    named = re.findall(r"[Bb]us (\d+)(?: goes)? from (\d+) to (\d+) kW", text)
    assert [bus for bus, _, _ in named] == ["85", "114", "92"]
    for bus, before, after in named:  # each still limited by voltage rise at its own node
        assert (plain[bus]["hosting_capacity_kW"], smart[bus]["hosting_capacity_kW"]) == (float(before), float(after))
        assert (smart[bus]["limited_by"]["kind"], smart[bus]["limited_by"]["element"]) == \
            ("voltage_high", f"{bus}.{smart[bus]['nodes'][0]}")
    assert json.dumps(daytime_minimum["volt_var"]["criteria"]["inverter"]) == json.dumps(
        {"mode": "volt_var", "volt_var": {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.44, 0.0, 0.0, -0.44]}})


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
