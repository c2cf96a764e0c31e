"""The feeder travels with the work (issue 28, part 12): study workers, local or on a real Dask cluster, need no
access to the server's files, and a scenario evicted or rebuilt uses the deck as it was read at start-up.

A copy of a public deck is served from a folder of the test's own, and the folder is deleted once the server has
read it (the tests run as root here, so chmod 000 would not stop a read). The cluster's scheduler and workers are
started in another working folder, with our code on PYTHONPATH and nothing else; each worker is asked whether it
can see the deck's folder before the study. The answers are compared with the local pool's, and with the answers
the same server gave while the files were still there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import distributed
import pytest

from api import create_app
from engine.feeder import Feeder, load_feeder
from engine.settings import EngineSettings
from support.helpers import finished
from support.paths import REPO, SHARED_REFERENCE
from support.server import free_port

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"
STUDIES = [
    ("hosting_capacity", {"buses": ["675", "611", "652", "634"], "step_kw": 50, "max_kw": 3000}),
    ("time_series", {"hours": 30, "start_hour": 4000}),
    ("stochastic_hosting_capacity", {"samples": 4, "seed": 5, "penetration_pct": {"start": 20, "stop": 200,
                                                                                   "step": 30}}),
    ("hosting_capacity", {"buses": ["675"], "step_kw": 100, "max_kw": 3000, "hours": ["daytime_minimum"]}),
]
SCENARIO = [("add_generator", {"bus_name": "680", "phases": 3, "kw": 300})]


def copy_of_ieee13(folder: Path) -> Path:
    """The IEEE 13 deck and the file it redirects to (`../IEEELineCodes.DSS`), in `folder`."""
    shutil.copytree(IEEE13.parent, folder / "13Bus")
    shutil.copy(IEEE13.parent.parent / "IEEELineCodes.DSS", folder / "IEEELineCodes.DSS")
    return folder / "13Bus" / IEEE13.name


def study(client, kind: str, body: dict[str, Any], scenario: str) -> dict[str, Any]:
    response = client.post(f"/scenarios/{scenario}/studies/{kind}?wait=60", json=body)
    result = finished(client, response, timeout_s=300)["result"]
    result.pop("scenario")
    return result


def scenario_with_changes(client) -> str:
    scenario = client.post("/scenarios", json={"name": "pv680"}).json["scenario"]["id"]
    for op, body in SCENARIO:
        assert client.post(f"/scenarios/{scenario}/{op}", json=body).status_code == 200
    return scenario


class Cluster:
    """A Dask scheduler and two workers started in `cwd` (not the checkout) with our code on PYTHONPATH only."""

    def __init__(self, cwd: Path) -> None:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = {**{k: v for k, v in os.environ.items() if k != "IEEE123_DASK_SCHEDULER"}, "PYTHONPATH": str(REPO),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.processes = [
            subprocess.Popen(["bash", "-c", line], cwd=cwd, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for line in (f"dask scheduler --host 127.0.0.1 --port {port}",
                         f"dask worker {self.address} --nworkers 2 --nthreads 1")]
        with self.client() as client:
            client.wait_for_workers(2, timeout=60)

    def client(self) -> distributed.Client:
        return distributed.Client(self.address, timeout=10, set_as_default=False)

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def gone_deck(tmp_path_factory) -> Iterator[tuple[Feeder, Path, dict[str, Any]]]:
    """The feeder read from a copy, the answers a local-pool server gave while its folder existed, and then the
    folder deleted."""
    folder = tmp_path_factory.mktemp("operator") / "feeders"
    feeder = load_feeder(copy_of_ieee13(folder), neighbourhood_file=None)
    app = create_app({"TESTING": True, "WORKERS": 1, "ENGINE_SETTINGS": EngineSettings(feeder=feeder)})
    try:
        client = app.test_client()
        scenario = scenario_with_changes(client)
        before = {i: study(client, kind, body, scenario) for i, (kind, body) in enumerate(STUDIES)}
    finally:
        app.extensions["jobs"].close()
    shutil.rmtree(folder)
    yield feeder, folder, before


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("elsewhere"))
    yield started
    started.stop()


@pytest.mark.slow
def test_a_study_on_a_cluster_whose_workers_cannot_read_the_deck_equals_the_local_pool(gone_deck, cluster):
    feeder, folder, before = gone_deck
    with cluster.client() as client:
        seen = client.run(lambda: (os.getcwd(), os.path.exists(folder), os.path.exists(feeder.deck.root)))
    assert len(seen) == 2 and all(not exists and not root and cwd != str(REPO)
                                  for cwd, exists, root in seen.values()), seen
    answers = {}
    for name, config in (("dask", {"DASK_SCHEDULER": cluster.address}), ("pool", {"WORKERS": 2})):
        app = create_app({"TESTING": True, "ENGINE_SETTINGS": EngineSettings(feeder=feeder), **config})
        try:
            client = app.test_client()
            assert client.get("/health").json["studies"]["executor"] == ("dask" if name == "dask" else "local")
            scenario = scenario_with_changes(client)
            answers[name] = {i: study(client, kind, body, scenario) for i, (kind, body) in enumerate(STUDIES)}
        finally:
            app.extensions["jobs"].close()
    assert answers["dask"] == answers["pool"]
    assert answers["pool"] == before  # and both equal what the server answered while the folder existed
    assert before[0]["buses"][0]["hosting_capacity_kW"] > 0 and before[1]["load_shapes"]["source"] == "ours"


def test_a_rebuild_an_eviction_and_a_study_use_the_deck_as_read_at_start_up(tmp_path: Path):
    """The operator edits the deck after start-up (every load doubled): a scenario evicted and rebuilt, an undo
    (a rebuild) and a study answer as before, from the deck's bytes in the settings; a server started now reads
    the edited deck and answers differently (so the edit matters)."""
    master = copy_of_ieee13(tmp_path / "feeders")
    settings = EngineSettings(feeder=load_feeder(master, neighbourhood_file=None))
    app = create_app({"TESTING": True, "WORKERS": 1, "ENGINE_SETTINGS": settings,
                      "STATE_FILE": str(tmp_path / "state.sqlite"), "MAX_LIVE_SCENARIOS": 1})
    try:
        client = app.test_client()
        scenario = scenario_with_changes(client)
        kept = client.get(f"/scenarios/{scenario}/state").json
        base = client.get("/state").json
        series = study(client, "time_series", {"hours": 3, "start_hour": 100}, scenario)
        text = master.read_text()
        master.write_text(text.replace("kW=1155", "kW=2310").replace("kW=843", "kW=1686"))
        assert read_total_load(master) > 1.2 * read_total_load_of(text, master)
        other = client.post("/scenarios", json={"name": "evicts the first"}).json["scenario"]["id"]
        assert client.get(f"/scenarios/{other}/state").status_code == 200  # the first is evicted now
        assert same_state(client.get(f"/scenarios/{scenario}/state").json, kept)  # rebuilt from the kept deck
        assert study(client, "time_series", {"hours": 3, "start_hour": 100}, scenario) == series
        assert client.post(f"/scenarios/{scenario}/undo", json={}).status_code == 200
        assert same_state(client.get(f"/scenarios/{scenario}/state").json, base)
    finally:
        app.extensions["jobs"].close()
    edited = EngineSettings(feeder=load_feeder(master, neighbourhood_file=None))
    assert edited.feeder.sha256 != settings.feeder.sha256


def read_total_load(master: Path) -> float:
    return read_total_load_of(master.read_text(), master)


def read_total_load_of(text: str, master: Path) -> float:
    """The deck's total load kW as OpenDSS compiles this master text (in a scratch copy beside the master)."""
    import opendssdirect

    scratch = master.with_name("scratch_copy.dss")
    scratch.write_text(text)
    try:
        dss = opendssdirect.NewContext()
        dss.Basic.AllowChangeDir(False)
        dss.Text.Command(f"Compile [{scratch}]")
        total = 0.0
        for name in dss.Loads.AllNames():
            dss.Loads.Name(name)
            total += dss.Loads.kW()
        return total
    finally:
        scratch.unlink()


def same_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two /state answers hold the same power flow (node voltages to 1e-9 pu, the summary to 1e-9 relative)."""
    volts = lambda state: {(r["Bus"], k): v for r in state["results"]["bus_details"] for k, v in r.items()
                           if isinstance(v, float)}
    va, vb = volts(a), volts(b)
    return va.keys() == vb.keys() and all(abs(va[k] - vb[k]) <= 1e-9 for k in va) and \
        a["results"]["power_summary"] == pytest.approx(b["results"]["power_summary"], rel=1e-9)
