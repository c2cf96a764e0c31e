"""Studies with smart inverters against OpenDSS driven by hand (definitions typed from README, `Reference` of
test_inverters): hosting capacity with a volt-var trial generator equals a brute-force scan, trial by trial from
the scenario's state; a 24-hour series with an inverter generator equals the same engine driven hour by hour. Plus
the command line and the Python client taking the field."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from api import create_app
from simulation_core import MODEL_DIR
from support.direct_feeder import LIMITS as STUDY_LIMITS
from support.direct_feeder import DirectFeeder
from support.helpers import assert_error_shape, finished
from support.inverter_reference import LIGHT, Reference
from support.paths import REPO
LIMITS = {"voltage_high_pu": 1.05, "voltage_low_pu": 0.95, "thermal_pct": 100.0}


@pytest.fixture(scope="module")
def app():
    application = create_app({"TESTING": True, "WORKERS": 2})
    yield application
    application.extensions["jobs"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def light_scenario(client):
    """A scenario at light load (every neighbourhood x 0.25), where the volt-var curve acts."""
    scenario = client.post("/scenarios", json={"name": "light"}).json["scenario"]["id"]
    for neighbourhood in client.get("/neighbourhoods").json["neighbourhoods"]:
        response = client.post(f"/scenarios/{scenario}/modify_load_neighbourhood",
                               json={"neighbourhood": neighbourhood["id"], "factor": LIGHT})
        assert response.status_code == 200
    return scenario


class Scan(Reference):
    """The light-load state in a bare engine, reached by the same changes in the same order (or, with `hour`, the
    base case's loads at that hour of the residential shape, solved from the base case's taps), and its trials."""

    def __init__(self, client, hour: int | None = None) -> None:
        super().__init__()
        if hour is None:
            for neighbourhood in client.get("/neighbourhoods").json["neighbourhoods"]:
                self.scale(neighbourhood["loads"], LIGHT)
        else:
            multiplier = float(np.loadtxt(MODEL_DIR / "shapes" / "residential.csv")[hour])
            self.scale(list(self.base), multiplier)
        self.own = self.measure()
        self.taps = self.read_taps()

    def read_taps(self) -> list[float]:
        taps = []
        for name in self.dss.Transformers.AllNames():
            self.dss.Transformers.Name(name)
            self.dss.Transformers.Wdg(2)
            taps.append(self.dss.Transformers.Tap())
        return taps

    def measure(self) -> dict:
        names = [n.lower() for n in self.dss.Circuit.AllNodeNames()]
        loading = {}
        for name in self.dss.Lines.AllNames():
            self.dss.Circuit.SetActiveElement(f"Line.{name}")
            phases = self.dss.CktElement.NumPhases()
            loading[name] = 100 * max(self.dss.CktElement.CurrentsMagAng()[0:2 * phases:2]) \
                / self.dss.CktElement.NormalAmps()
        return {"v": dict(zip(names, self.dss.Circuit.AllBusMagPu())), "loading": loading}

    def trial(self, bus: str, nodes: list[int], kw: float, inverter: dict) -> tuple[str, str] | None:
        """A fresh definition at kw (kVA = kW) from the scenario's state, judged, then switched off and the taps
        put back: the kind and worst element of the first limit crossed, or None."""
        self.inverter("trial", bus, nodes, kw, {**inverter, "kva": kw})
        now = self.measure()
        self.switch_off("trial")
        for name, tap in zip(self.dss.Transformers.AllNames(), self.taps):
            self.dss.Transformers.Name(name)
            self.dss.Transformers.Wdg(2)
            self.dss.Transformers.Tap(tap)
        self.solve()
        high = {n: v for n, v in now["v"].items() if v > LIMITS["voltage_high_pu"]}
        if high:
            return "voltage_high", max(high, key=high.get)
        low = {n: v for n, v in now["v"].items() if v < LIMITS["voltage_low_pu"] and v < self.own["v"][n]}
        if low:
            return "voltage_low", min(low, key=low.get)
        hot = {e: x for e, x in now["loading"].items() if x > 100 and x > self.own["loading"][e] + 1}
        if hot:
            return "thermal", f"line.{max(hot, key=hot.get)}"
        return None


@pytest.mark.parametrize("bus,phases,step", [("85", 1, 10.0), ("114", 1, 10.0), ("92", 1, 10.0), ("83", 3, 50.0)])
def test_hosting_capacity_with_volt_var_equals_a_brute_force_scan(client, light_scenario, bus, phases, step):
    body = {"buses": [bus], "phases": phases, "step_kw": step, "max_kw": 3000, "inverter": {"mode": "volt_var"}}
    job = finished(client, client.post(f"/scenarios/{light_scenario}/studies/hosting_capacity?wait=60", json=body))
    row = job["result"]["buses"][0]
    assert job["result"]["criteria"]["inverter"]["volt_var"] == {"v": [0.92, 0.98, 1.02, 1.08],
                                                                 "q": [0.44, 0.0, 0.0, -0.44]}
    scan = Scan(client)
    kw, found = step, None
    while kw <= 3000 and found is None:
        found = scan.trial(bus, row["nodes"], kw, {"mode": "volt_var"})
        kw += step
    assert found is not None, "the scan should find a limit below 3000 kW"
    assert row["hosting_capacity_kW"] == pytest.approx(kw - 2 * step)
    assert (row["limited_by"]["kind"], row["limited_by"]["element"].lower()) == found
    plain = finished(client, client.post(f"/scenarios/{light_scenario}/studies/hosting_capacity?wait=60",
                                         json={k: v for k, v in body.items() if k != "inverter"}))
    assert row["hosting_capacity_kW"] > plain["result"]["buses"][0]["hosting_capacity_kW"], \
        "volt-var absorbs vars at high voltage: more fits"


@pytest.mark.parametrize("bus", ["85", "114"])
def test_hosting_capacity_with_volt_var_at_the_daytime_minimum_equals_a_brute_force_scan(client, bus):
    """The headline figures' hour: the base case's loads at the daytime minimum (hour 6803 of the residential
    shape; no scenario generators for the PV shape to scale), trials from that state."""
    body = {"buses": [bus], "step_kw": 10, "max_kw": 1000, "hours": ["daytime_minimum"],
            "inverter": {"mode": "volt_var"}}
    result = finished(client, client.post("/studies/hosting_capacity?wait=60", json=body))["result"]
    row, hour = result["buses"][0], result["hours"][0]["hour_of_year"]
    assert hour == 6803
    scan = Scan(client, hour)
    kw, found = 10.0, None
    while kw <= 1000 and found is None:
        found = scan.trial(bus, row["nodes"], kw, {"mode": "volt_var"})
        kw += 10.0
    assert row["hosting_capacity_kW"] == pytest.approx(kw - 20.0) and row["binding_hour"] == hour
    assert (row["limited_by"]["kind"], row["limited_by"]["element"].lower()) == found


def test_a_day_with_inverter_generators_equals_opendss_hour_by_hour(client):
    """A plain generator, a volt-var inverter (kVA above its kW) and a volt-watt one; each hour the irradiance is
    the PV shape's multiplier (set with `edit PVSystem.… irradiance=`), the loads follow the residential shape."""
    scenario = client.post("/scenarios", json={"name": "smart pv"}).json["scenario"]["id"]
    generators = [("85", [3], 600.0, {"mode": "volt_var", "kva": 700}), ("114", [1], 500.0, {"mode": "volt_watt"})]
    assert client.post(f"/scenarios/{scenario}/add_generator",
                       json={"bus_name": "67", "phases": 3, "kw": 400}).status_code == 200
    for bus, _, kw, inverter in generators:
        response = client.post(f"/scenarios/{scenario}/add_generator",
                               json={"bus_name": bus, "phases": 1, "kw": kw, "inverter": inverter})
        assert response.status_code == 200
    job = finished(client, client.post(f"/scenarios/{scenario}/studies/time_series?wait=60",
                                       json={"hours": 24, "start_hour": 4320}))
    hours, totals = job["result"]["hours"], job["result"]["totals"]

    shapes = {name: np.loadtxt(MODEL_DIR / "shapes" / f"{name}.csv") for name in ("residential", "pv")}
    reference = Reference()
    reference.dss.Text.Command("New Generator.pv bus1=67.1.2.3 phases=3 kv=4.16 kw=400 pf=1 model=1 vminpu=0.5 "
                               "vmaxpu=1.5")
    reference.solve()
    names = [f"gen_{bus}_{nodes[0]}" for bus, nodes, _, _ in generators]
    elements = [reference.inverter(name, bus, nodes, kw, inverter)
                for name, (bus, nodes, kw, inverter) in zip(names, generators)]
    for h, row in enumerate(hours):
        hour, sun = 4320 + h, float(shapes["pv"][4320 + h])
        for load, (kw, kvar) in reference.base.items():
            reference.dss.Loads.Name(load)
            reference.dss.Loads.kW(kw * shapes["residential"][hour])
            reference.dss.Loads.kvar(kvar * shapes["residential"][hour])
        reference.dss.Generators.Name("pv")
        reference.dss.Generators.kW(400 * sun)
        for element in elements:
            reference.dss.Text.Command(f"edit PVSystem.{element} irradiance={sun!r}")
        reference.solve()
        v = np.array(reference.dss.Circuit.AllBusMagPu())
        assert row["max_voltage_pu"] == pytest.approx(v.max(), abs=1e-6), h
        assert row["min_voltage_pu"] == pytest.approx(v.min(), abs=1e-6), h
        outputs = [reference.output(name) for name in names]
        reference.dss.Circuit.SetActiveElement("Generator.pv")
        plain_kw, plain_kvar = (-x for x in reference.dss.CktElement.TotalPowers())
        assert row["generation_kW"] == pytest.approx(plain_kw + sum(kw for kw, _ in outputs), abs=0.01), h
        assert row["generation_kVAR"] == pytest.approx(plain_kvar + sum(kvar for _, kvar in outputs), abs=0.01), h
        available = sum(kw * sun for _, _, kw, _ in generators)
        assert row["curtailed_kW"] == pytest.approx(available - sum(kw for kw, _ in outputs), abs=0.01), h
        assert row["substation_kW"] == pytest.approx(-reference.dss.Circuit.TotalPower()[0], abs=0.01), h
    assert totals["curtailed_kWh"] == pytest.approx(sum(h["curtailed_kW"] for h in hours))
    assert totals["curtailed_kWh"] > 10, "the noon hours curtail: the day exercises volt-watt"
    assert min(h["generation_kVAR"] for h in hours) < -100, "and volt-var absorbs"
    assert hours[0]["generation_kVAR"] < -10 and hours[0]["generation_kW"] == pytest.approx(0, abs=1e-6), \
        "at night the volt-var inverter still absorbs vars (OpenDSS's VarFollowInverter=no)"
    assert client.get(f"/scenarios/{scenario}/state").json["sequence"] == 3  # the study changed nothing


def test_a_series_without_inverters_has_no_inverter_columns(client):
    hours = finished(client, client.post("/studies/time_series?wait=60", json={"hours": 2}))["result"]
    assert "curtailed_kW" not in hours["hours"][0] and "curtailed_kWh" not in hours["totals"]


def test_a_trial_inverter_is_checked_before_anything_is_queued(client):
    jobs_before = [job["id"] for job in client.get("/jobs").json["jobs"]]
    assert_error_shape(client.post("/studies/hosting_capacity", json={"inverter": {"mode": "volt_var", "kva": 10}}),
                       400, "inverter.kva")
    response = client.post("/studies/hosting_capacity", json={"inverter": {"mode": "constant_pf"}})
    assert assert_error_shape(response, 422, "inverter.pf")["field"] == "inverter.pf"
    response = client.post("/studies/hosting_capacity", json={"inverter": {
        "mode": "volt_watt", "volt_watt": {"v": [1.06, 1.06], "p": [1, 0.2]}}})
    assert_error_shape(response, 422, "inverter.volt_watt.v[1]")
    assert [job["id"] for job in client.get("/jobs").json["jobs"]] == jobs_before


def test_the_command_line_takes_the_inverter(tmp_path):
    out = tmp_path / "hc.csv"
    done = subprocess.run([sys.executable, "-m", "studies", "hosting-capacity", "--buses", "85", "--step-kw", "50",
                           "--workers", "1", "--inverter", "volt_var", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with_inverter = out.read_text().splitlines()[1].split(",")
    plain_out = tmp_path / "plain.csv"
    subprocess.run([sys.executable, "-m", "studies", "hosting-capacity", "--buses", "85", "--step-kw", "50",
                    "--workers", "1", "--out", str(plain_out)], cwd=REPO, check=True, capture_output=True, timeout=300)
    plain = plain_out.read_text().splitlines()[1].split(",")
    assert float(with_inverter[3]) >= float(plain[3])
    bad = subprocess.run([sys.executable, "-m", "studies", "hosting-capacity", "--buses", "85", "--inverter",
                          json.dumps({"mode": "volt_var", "volt_var": {"v": [1, 1, 1, 1], "q": [0, 0, 0, 0]}}),
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "inverter.volt_var.v[1]" in bad.stderr
    levels = tmp_path / "levels.csv"
    done = subprocess.run([sys.executable, "-m", "studies", "stochastic-hosting-capacity", "--samples", "2", "--start",
                           "20", "--stop", "80", "--step", "30", "--workers", "1", "--inverter", "volt_var", "--out",
                           str(levels)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert levels.read_text().splitlines()[0].startswith("penetration_pct,pv_kW,samples_passing")


# ---------------------------------------------------------------------------- stochastic hosting capacity
def add_inverters_by_hand(dss, pv: list[dict]) -> None:
    """A sample's systems as README's volt-var inverters, each rated at its own kW: 3-phase rated line to line;
    1-phase on one node line to neutral; 1-phase across two nodes line to line."""
    for k, system in enumerate(pv):
        dss.Circuit.SetActiveBus(system["bus"])
        line_to_line = system["phases"] == 3 or len(system["nodes"]) == 2
        kv, kw = dss.Bus.kVBase() * (math.sqrt(3) if line_to_line else 1.0), float(system["kW"])
        dss.Text.Command(f"New PVSystem.s{k} bus1={system['bus']}.{'.'.join(map(str, system['nodes']))} "
                         f"phases={system['phases']} kv={kv!r} irradiance=1 Pmpp={kw!r} kVA={kw!r} %cutin=0.1 "
                         f"%cutout=0.1 kvarMax={0.44 * kw!r} kvarMaxAbs={0.44 * kw!r} WattPriority=no pf=1.0")
        dss.Text.Command(f"New XYcurve.s{k}vv npts=6 Xarray=[0 0.92 0.98 1.02 1.08 2] Yarray=[1 1 0 0 -1 -1]")
        dss.Text.Command(f"New InvControl.s{k} PVSystemList=[s{k}] mode=VOLTVAR vvc_curve1=s{k}vv "
                         f"voltage_curvex_ref=rated RefReactivePower=VARMAX")


def test_stochastic_hosting_capacity_with_volt_var_replays_with_opendss_driven_directly(client):
    """Every customer's system a volt-var inverter at its own kW: each sample's first failure fails in a bare
    engine with the kind it names, at its element, and its last pass passes; the answer is not the plain one."""
    body = {"samples": 4, "seed": 5, "penetration_pct": {"start": 20, "stop": 200, "step": 30}}
    smart = finished(client, client.post("/studies/stochastic_hosting_capacity?wait=60",
                                         json={**body, "inverter": {"mode": "volt_var"}}), timeout_s=300)["result"]
    plain = finished(client, client.post("/studies/stochastic_hosting_capacity?wait=60", json=body),
                     timeout_s=300)["result"]
    assert smart["spec"]["inverter"]["mode"] == "volt_var" and "inverter" not in plain["spec"]
    assert [s["first_failure"] for s in smart["samples"]] != [s["first_failure"] for s in plain["samples"]]
    failures = 0
    for sample in smart["samples"]:
        for end, fails in (("first_failure", True), ("last_pass", False)):
            if not sample[end]:
                continue
            feeder = DirectFeeder()
            add_inverters_by_hand(feeder.dss, sample[end]["pv"])
            feeder.dss.Solution.Solve()
            assert feeder.dss.Solution.Converged()
            found = feeder.violates(STUDY_LIMITS)
            if fails:
                failures += 1
                bound = sample[end]["limited_by"]
                assert found is not None and found[0] == bound["kind"], (sample["sample"], found, bound)
                assert bound["element"].lower() in {e.lower() for e in found[1]}
            else:
                assert found is None, (sample["sample"], found)
    assert failures > 0
    one_worker = create_app({"TESTING": True, "WORKERS": 1})
    try:
        again = finished(one_worker.test_client(), one_worker.test_client().post(
            "/studies/stochastic_hosting_capacity?wait=60", json={**body, "inverter": {"mode": "volt_var"}}),
            timeout_s=300)["result"]
    finally:
        one_worker.extensions["jobs"].close()
    assert again["samples"] == smart["samples"] and again["levels"] == smart["levels"], "any number of workers"


def test_an_hour_whose_controls_do_not_settle_fails_the_series_naming_it(client):
    """A curve too steep for the night's voltages (accepted at the scenario's state): the series fails, its error
    naming the hour; the scenario is as it was."""
    scenario = client.post("/scenarios", json={"name": "steep"}).json["scenario"]["id"]
    steep = {"mode": "volt_var", "volt_var": {"v": [1.02, 1.0201, 1.0202, 1.0203], "q": [0.44, 0.44, -0.44, -0.44]}}
    response = client.post(f"/scenarios/{scenario}/add_generator",
                           json={"bus_name": "85", "phases": 1, "kw": 600, "inverter": steep})
    assert response.status_code == 200, response.json
    before = client.get(f"/scenarios/{scenario}/state").data
    job = client.post(f"/scenarios/{scenario}/studies/time_series?wait=60", json={"hours": 24}).json["job"]
    while job["status"] in ("queued", "running"):
        job = client.get(f"/jobs/{job['id']}").json["job"]
    assert job["status"] == "failed"
    assert "the controls did not settle within 100 control iterations for hour 0 of the series" in job["error"]
    assert client.get(f"/scenarios/{scenario}/state").data == before
