"""The Python client against a real server over HTTP: every method, errors, a dropped connection during a
change (retried, applied once), studies as DataFrames."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pandas as pd
import pytest
import requests

from client import Diff, GridApiError, GridClient, Results
from support.paths import REPO


@pytest.fixture(scope="module")
def grid(live_server) -> GridClient:
    return GridClient(live_server)


@pytest.fixture
def pv(grid):
    scenario = grid.new_scenario("pv at 67")
    yield scenario
    scenario.delete()


def test_state_is_the_apis_state_as_frames(grid, live_server):
    raw = requests.get(f"{live_server}/state").json()["results"]
    state = grid.state()
    assert isinstance(state, Results) and state.summary == raw["power_summary"]
    assert state.buses.index.names == ["Bus", "Node"] and len(state.buses) == len(raw["bus_details"])
    first = raw["bus_details"][0]
    assert state.buses.loc[(first["Bus"], first["Node"]), "VMag_pu"] == first["VMag_pu"]
    assert state.lines.loc["l115", "P_kW"] == next(r["P_kW"] for r in raw["line_flows"] if r["Line"] == "l115")
    assert state.violations == raw["violations"] and state.etag.startswith('"default.')


def test_feeders_are_a_frame_by_name(grid, live_server):
    raw = requests.get(f"{live_server}/feeders").json()["feeders"]
    feeders = grid.feeders()
    assert list(feeders.index) == [row["name"] for row in raw] == ["ieee123"]
    assert feeders.loc["ieee123", "buses"] == raw[0]["buses"] == 132 and bool(feeders.loc["ieee123", "default"])
    assert feeders.loc["ieee123", "neighbourhoods"] == {"source": "file", "count": 14}


def test_changes_reads_and_journal_on_a_scenario(grid, pv, live_server):
    after = pv.add_generator("67", phases=3, kw=1500)
    assert after.action["generator"] == "gen_67_123" and after.summary["total_generation_kW"] == pytest.approx(1500,
                                                                                                              rel=1e-3)
    assert pv.scale_neighbourhood(5, 1.2).action["cumulative_factor"] == 1.2
    assert pv.add_generator("16", 1, 100, phase=3).action["nodes"] == [3]
    generators = pv.generators()
    assert list(generators.index) == ["gen_67_123", "gen_16_3"] and generators.loc["gen_16_3", "kw"] == 100
    assert pv.remove_generator("gen_16_3").action["type"] == "remove_generator"
    assert list(pv.changes()["type"]) == ["add_generator", "modify_load_neighbourhood", "add_generator",
                                          "remove_generator"]
    before_undo = requests.get(f"{live_server}/scenarios/{pv.id}/state").json()["results"]
    undone = pv.undo()
    assert undone.action["type"] == "undo" and "gen_16_3" in pv.generators().index
    assert pv.buses().loc["67", "neighbourhood"] == 12 and pv.lines().shape[0] == 126
    assert grid.state().summary["total_generation_kW"] == 0  # default untouched
    assert before_undo != pv.state().summary
    assert pv.export()["changes"][0] == {"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 1500.0}
    assert pv.reset().summary["total_generation_kW"] == 0


def test_dry_run_changes_nothing(pv):
    before = pv.state()
    preview = pv.add_generator("67", 3, 900, dry_run=True)
    assert preview.action["dry_run"] is True and preview.summary["total_generation_kW"] > 800
    assert pv.state().summary == before.summary and pv.changes().empty


def test_if_match_guards_against_a_changed_state(pv):
    tag = pv.state().etag
    pv.add_generator("67", 3, 100)
    with pytest.raises(GridApiError) as refused:
        pv.scale_neighbourhood(5, 1.1, if_match=tag)
    assert refused.value.status == 412 and refused.value.field == "If-Match"
    assert pv.scale_neighbourhood(5, 1.1, if_match=pv.state().etag).action["sequence"] == 2


def test_errors_carry_status_message_and_field(grid):
    with pytest.raises(GridApiError) as unknown:
        grid.add_generator("nowhere", 1, 10)
    assert (unknown.value.status, unknown.value.field) == (404, "bus_name")
    assert "unknown bus" in unknown.value.message
    with pytest.raises(GridApiError) as bad:
        grid.add_generator("16", 2, 10)
    assert (bad.value.status, bad.value.field) == (400, "phases")
    with pytest.raises(GridApiError) as missing:
        grid.scenario("nowhere")
    assert missing.value.status == 404


def test_scenarios_fork_import_and_diff(grid, pv):
    pv.add_generator("67", 3, 2000)
    fork = grid.new_scenario("copy", from_=pv.id)
    assert fork.state().summary == pv.state().summary
    assert grid.scenarios().loc[fork.id, "forked_from"] == pv.id
    copy = grid.import_scenario(pv.export())
    assert copy.state().summary == pytest.approx(pv.state().summary)
    diff = pv.diff("base")
    assert isinstance(diff, Diff) and diff.summary.loc["total_generation_kW", "delta"] == pytest.approx(2000, rel=1e-3)
    assert diff.buses.index.names == ["Bus", "Node"] and abs(diff.buses["delta_pu"]).is_monotonic_decreasing
    assert set(diff.violations) == {"new", "cleared"}
    assert grid.scenario(fork.id).id == fork.id
    for scenario in (fork, copy):
        scenario.delete()


def test_hosting_capacity_over_hours_from_the_client_equals_the_command_line(grid, tmp_path):
    """The same field (`hours`) through the client and `python -m studies`, on the base case: the same rows,
    resolved hours and pre-existing overloads; a bad hour is refused by both, naming it."""
    hours = ["daytime_minimum", "peak_load", 4320]
    frame = grid.hosting_capacity(buses=["85", "94_open"], step_kw=50, hours=hours, progress=False)
    resolved = frame.attrs["hours"]
    assert [h["name"] for h in resolved] == ["daytime_minimum", "peak_load", None]
    assert resolved[2]["hour_of_year"] == 4320
    columns = sorted(c for c in frame.columns if c.startswith("kW_at_hour_"))
    assert columns == sorted(f"kW_at_hour_{h['hour_of_year']}" for h in resolved)
    assert frame.loc["85", "hosting_capacity_kW"] == min(frame.loc["85", columns])
    peak = resolved[1]["hour_of_year"]
    assert set(frame.attrs["preexisting"]["hour_of_year"]) == {peak}  # the overloaded head, at peak only
    out = tmp_path / "hc.csv"
    run = subprocess.run([sys.executable, "-m", "studies", "hosting-capacity", "--buses", "85,94_open", "--step-kw", "50",
                          "--hours", "daytime_minimum,peak_load,4320", "--workers", "1", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert printed["hours"] == resolved
    preexisting = pd.DataFrame(printed["preexisting"])  # solved in other engines: equal to solver tolerance
    assert preexisting[["element", "limit", "hour_of_year"]].equals(frame.attrs["preexisting"][["element", "limit",
                                                                                                "hour_of_year"]])
    assert preexisting["value"].to_numpy() == pytest.approx(frame.attrs["preexisting"]["value"].to_numpy(), abs=1e-6)
    rows = pd.read_csv(out, dtype={"bus": str}).set_index("bus")
    for column in ["hosting_capacity_kW", "binding_hour", "trials", *columns]:
        assert rows.loc["85", column] == frame.loc["85", column], column
    assert rows.loc["94_open", "reason"] == frame.loc["94_open", "reason"]
    bad = subprocess.run([sys.executable, "-m", "studies", "hosting-capacity", "--hours", "4320,noon", "--out",
                          str(tmp_path / "x.csv")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: hours[1]: expected"), bad.stderr
    with pytest.raises(GridApiError) as refused:
        grid.hosting_capacity(buses=["85"], hours=[4320, "noon"], progress=False)
    assert refused.value.field == "hours[1]"


def test_studies_come_back_as_frames(grid, pv):
    pv.add_generator("67", 3, 800)
    capacity = pv.hosting_capacity(buses=["67", "35", "94_open"], step_kw=100, progress=False)
    assert list(capacity.index) == ["67", "35", "94_open"]
    assert capacity.loc["67", "limited_by_kind"] in ("thermal", "voltage_high", "voltage_low")
    assert pd.isna(capacity.loc["94_open", "hosting_capacity_kW"]) and capacity.loc["94_open", "reason"]
    series = pv.time_series(hours=24, progress=False)
    assert list(series.index) == list(range(24)) and series["generation_kW"].max() > 0
    assert series.attrs["totals"]["generation_kWh"] == pytest.approx(series["generation_kW"].sum())
    cases = pv.batch([{"name": "more", "changes": [{"op": "add_generator", "bus_name": "35", "phases": 3,
                                                    "kw": 500}]},
                      {"name": "bad", "changes": [{"op": "add_generator", "bus_name": "16", "phases": 3, "kw": 1}]}],
                     progress=False)
    assert cases.loc["more", "total_generation_kW"] == pytest.approx(1300, rel=1e-3)
    assert "phases" in cases.loc["bad", "error"]


def test_stochastic_hosting_capacity_comes_back_as_frames(pv, live_server):
    """The client's frames hold the API's numbers (the same seed gives the same result)."""
    pv.scale_neighbourhood(12, 0.5)
    study = pv.stochastic_hosting_capacity(start=20, stop=100, step=20, samples=4, seed=3, progress=False)
    body = {"penetration_pct": {"start": 20, "stop": 100, "step": 20}, "samples": 4, "seed": 3}
    raw = requests.post(f"{live_server}/scenarios/{pv.id}/studies/stochastic_hosting_capacity?wait=60",
                        json=body).json()["job"]["result"]
    assert (study.min_hc_pct, study.max_hc_kW) == (raw["min_hc_pct"], raw["max_hc_kW"])
    assert list(study.levels.index) == [20, 40, 60, 80, 100]
    assert list(study.levels["samples_passing"]) == [row["samples_passing"] for row in raw["levels"]]
    assert list(study.levels["failing_voltage_high"]) == [row["samples_failing"]["voltage_high"]
                                                          for row in raw["levels"]]
    assert list(study.samples.index) == [0, 1, 2, 3] and study.spec == raw["spec"]
    for sample in raw["samples"]:
        row = study.samples.loc[sample["sample"]]
        assert row["last_pass_pv"] == (sample["last_pass"]["pv"] if sample["last_pass"] else [])
        if sample["first_failure"]:
            assert row["limited_by_kind"] == sample["first_failure"]["limited_by"]["kind"]
    with pytest.raises(GridApiError) as refused:
        pv.stochastic_hosting_capacity(samples=0, progress=False)
    assert refused.value.field == "samples"
    at_noon = pv.stochastic_hosting_capacity(start=50, stop=50, samples=1, hours=["daytime_minimum", 4320],
                                             progress=False)
    assert [h["name"] for h in at_noon.hours] == ["daytime_minimum", None] and at_noon.hours[1]["hour_of_year"] == 4320
    assert list(at_noon.preexisting.columns) == ["element", "value", "limit", "hour_of_year"]



def test_ev_adoption_comes_back_as_a_frame_of_samples(pv, live_server):
    """The client's frame holds the API's numbers (the same seed gives the same result)."""
    study = pv.ev_adoption(start=50, stop=100, step=25, samples=3, seed=3, progress=False)
    body = {"adoption_pct": {"start": 50, "stop": 100, "step": 25}, "samples": 3, "seed": 3}
    raw = requests.post(f"{live_server}/scenarios/{pv.id}/studies/ev_adoption?wait=60",
                        json=body).json()["job"]["result"]
    assert (study.attrs["min_adoption_pct"], study.attrs["max_adoption_pct"]) == (raw["min_adoption_pct"],
                                                                                 raw["max_adoption_pct"])
    assert list(study.index) == [0, 1, 2] and study.attrs["spec"] == raw["spec"]
    assert list(study.attrs["levels"].index) == [50, 75, 100]
    assert list(study.attrs["levels"]["samples_passing"]) == [row["samples_passing"] for row in raw["levels"]]
    for sample in raw["samples"]:
        row = study.loc[sample["sample"]]
        assert row["last_pass_chargers"] == (sample["last_pass"]["chargers"] if sample["last_pass"] else [])
        if sample["first_failure"]:
            assert row["limited_by_kind"] == sample["first_failure"]["limited_by"]["kind"]
    with pytest.raises(GridApiError) as refused:
        pv.ev_adoption(coincidence=2, progress=False)
    assert refused.value.field == "coincidence"

class DroppingProxy:
    """Forwards to the server, but for the first request of a given path drops the client's connection after
    the server has answered: the change is applied, the client never hears so."""

    def __init__(self, target: str, drop_path: str) -> None:
        self.target_port = int(target.rsplit(":", 1)[1])
        self.drop_path, self.dropped = drop_path.encode(), 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            client.settimeout(10)
            upstream.settimeout(10)
            while True:
                request = self._read_message(client)
                if not request:
                    return
                upstream.sendall(request)
                response = self._read_message(upstream)
                if self.drop_path in request.split(b"\r\n", 1)[0] and self.dropped == 0:
                    self.dropped += 1
                    return  # close without answering
                client.sendall(response)

    @staticmethod
    def _read_message(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += sock.recv(65536)
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self.listener.close()


def test_a_dropped_connection_during_a_change_is_retried_and_applied_once(grid, live_server):
    scenario = grid.new_scenario("flaky network")
    proxy = DroppingProxy(live_server, f"/scenarios/{scenario.id}/add_generator")
    try:
        flaky = GridClient(proxy.url, retries=2, backoff_s=0.05).scenario(scenario.id)
        after = flaky.add_generator("67", 3, 700)
        assert proxy.dropped == 1
        assert after.action["sequence"] == 1 and after.summary["total_generation_kW"] == pytest.approx(700, rel=1e-3)
        journal = scenario.changes()
        assert len(journal) == 1  # the retry was answered from the first request's record
    finally:
        proxy.close()
        scenario.delete()


def test_import_from_a_fresh_checkout_needs_only_the_runtime_requirements():
    import subprocess
    import sys

    from support.paths import REPO

    result = subprocess.run([sys.executable, "-c", "import client; print(client.GridClient.__doc__ is not None)"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr


def test_the_readme_python_example_runs(live_server):
    import re

    from support.paths import REPO

    (example,) = [block for block in re.findall(r"```python\n(.*?)```", (REPO / "docs" / "python.md").read_text(),
                                                flags=re.S) if "GridClient" in block]
    namespace: dict = {}
    exec(example.replace("http://127.0.0.1:5000", live_server), namespace)  # noqa: S102 (our own README)
    assert namespace["after"].summary["total_generation_kW"] == pytest.approx(1500, rel=1e-3)
    assert len(namespace["day"]) == 24
    # The example's capacity frame holds the API's own answer for the same scenario (1,500 kW at 67; 50 kW steps).
    scenario = requests.post(f"{live_server}/scenarios", json={"name": "readme check"}).json()["scenario"]["id"]
    try:
        assert requests.post(f"{live_server}/scenarios/{scenario}/add_generator",
                             json={"bus_name": "67", "phases": 3, "kw": 1500}).status_code == 200
        answer = requests.post(f"{live_server}/scenarios/{scenario}/studies/hosting_capacity?wait=60",
                               json={"buses": ["67"], "phases": 3, "step_kw": 50, "max_kw": 10_000})
        assert answer.status_code == 200, answer.text[:500]
        (row,) = answer.json()["job"]["result"]["buses"]
    finally:
        requests.delete(f"{live_server}/scenarios/{scenario}")
    capacity = namespace["capacity"]
    assert capacity.loc["67", "hosting_capacity_kW"] == row["hosting_capacity_kW"]
    assert capacity.loc["67", "limited_by_kind"] == row["limited_by"]["kind"]
    assert len(capacity) > 100 and capacity["hosting_capacity_kW"].dropna().mod(50).eq(0).all()
    light = namespace["light"]
    assert [h["name"] for h in light.attrs["hours"]] == ["daytime_minimum", "peak_load"]
    assert (light["hosting_capacity_kW"] == light.filter(like="kW_at_hour_").min(axis=1)).all()
