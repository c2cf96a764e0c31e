"""`python api.py --feeder PATH`: a user's own deck served over real HTTP, its answers equal to OpenDSS driven directly
on the same deck, the deck's folder never written into, `GET /feeders` saying what it is, and a deck that cannot be
served refused at start-up with one line and exit status 2 (never a traceback)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import opendssdirect
import pytest
import requests

from support.bare_feeder import solved_directly
from support.paths import REPO, SHARED_REFERENCE
from support.server import start_server, stop_server

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"
TIMEOUT_S = 60


def copy_ieee13(folder: Path) -> Path:
    shutil.copytree(IEEE13.parent, folder / "13Bus")
    shutil.copy(IEEE13.parent.parent / "IEEELineCodes.DSS", folder / "IEEELineCodes.DSS")
    for path in folder.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return folder / "13Bus" / IEEE13.name


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def direct(master: Path, commands: list[str]) -> opendssdirect.ODD:
    """The deck in a plain engine solved as our server solves it, after these commands typed by hand."""
    return solved_directly(master, commands)


def start_refused(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "api.py"), "--port", "1", "--engine-hosts", "1", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def served_ieee13(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("deck")
    master = copy_ieee13(folder)
    before = files_of(folder)
    process, url = start_server(tmp_path_factory.mktemp("cwd"), "--feeder", f"thirteen={master}",
                                "--engine-hosts", "2", "--workers", "1")
    yield url, master, folder, before
    stop_server(process)


def test_get_feeders_says_what_the_deck_is(served_ieee13):
    url, master, _, _ = served_ieee13
    (feeder,) = requests.get(f"{url}/feeders", timeout=TIMEOUT_S).json()["feeders"]
    dss = direct(master, [])
    assert feeder["name"] == "thirteen" and feeder["default"] is True and feeder["master"] == master.name
    assert (feeder["buses"], feeder["nodes"]) == (dss.Circuit.NumBuses(), dss.Circuit.NumNodes())
    assert (feeder["lines"], feeder["transformers"], feeder["loads"]) == \
        (dss.Lines.Count(), dss.Transformers.Count(), dss.Loads.Count())
    assert (feeder["regulators"], feeder["capacitors"]) == (dss.RegControls.Count(), dss.Capacitors.Count())
    assert feeder["kv_bases"] == [115.0, 4.16, 0.48] and feeder["source_bus"] == "sourcebus"
    assert any("OpenDSS's default" in warning for warning in feeder["warnings"])  # the deck rates no line


def test_a_change_over_http_equals_opendss_driven_directly(served_ieee13):
    url, master, _, _ = served_ieee13
    answer = requests.post(f"{url}/add_generator", json={"bus_name": "675", "phases": 3, "kw": 400},
                           timeout=TIMEOUT_S).json()
    assert answer["status"] == "success" and answer["action"]["kv"] == pytest.approx(4.16)
    dss = direct(master, ["New Generator.by_hand bus1=675.1.2.3 phases=3 kv=4.160000 kw=400.0 pf=1 model=1 "
                          "vminpu=0.5 vmaxpu=1.5"])
    rows = {(r["Bus"], r["Node"]): r["VMag_pu"] for r in answer["results"]["bus_details"]}
    names = dss.Circuit.AllNodeNames()
    expected = {(name.split(".")[0], int(name.split(".")[1])): v
                for name, v in zip(names, dss.Circuit.AllBusMagPu())}
    assert rows.keys() == expected.keys()
    assert max(abs(rows[k] - expected[k]) for k in rows) < 1e-6
    assert answer["results"]["losses"]["total_kW"] == pytest.approx(dss.Circuit.Losses()[0] / 1000, rel=1e-6)
    requests.post(f"{url}/reset", json={}, timeout=TIMEOUT_S)


def test_a_study_runs_on_the_feeder_and_the_users_folder_is_never_written(served_ieee13):
    url, _, folder, before = served_ieee13
    answer = requests.post(f"{url}/studies/hosting_capacity?wait=60", json={"buses": ["680"], "step_kw": 200},
                           timeout=180).json()
    job = answer["job"]
    assert job["status"] == "done" and job["result"]["buses"][0]["bus"] == "680", job
    assert files_of(folder) == before


def test_an_export_names_the_decks_hash(served_ieee13):
    url, master, _, _ = served_ieee13
    feeder = requests.get(f"{url}/feeders", timeout=TIMEOUT_S).json()["feeders"][0]
    assert requests.get(f"{url}/export", timeout=TIMEOUT_S).json()["feeder"]["sha256"] == feeder["sha256"]


def test_a_missing_master_is_refused_in_one_line(tmp_path: Path):
    done = start_refused(tmp_path, "--feeder", str(tmp_path / "nothere.dss"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: --feeder {tmp_path / 'nothere.dss'}: master file "
                                                f"{tmp_path / 'nothere.dss'} does not exist"]


def test_a_deck_with_a_syntax_error_is_refused_naming_file_line_and_opendss_words(tmp_path: Path):
    master = copy_ieee13(tmp_path)
    lines = master.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.lower().startswith("new load.671"))
    lines.insert(at, "New Lod.oops bus1=671")
    master.write_text("\n".join(lines) + "\n")
    done = start_refused(tmp_path, "--feeder", str(master))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: feeder ieee13nodeckt: OpenDSS could not compile")
    assert f'[file: "{master}", line: {at + 1}]' in done.stderr and '"Lod" not found' in done.stderr


def test_a_base_case_that_cannot_converge_is_refused(tmp_path: Path):
    master = copy_ieee13(tmp_path)
    text = master.read_text()
    assert "kW=1155 kvar=660" in text
    master.write_text(text.replace("kW=1155 kvar=660", "kW=900000 kvar=660 vminpu=0.0001 vlowpu=0.00005", 1))
    done = start_refused(tmp_path, "--feeder", f"heavy={master}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: feeder heavy ({master}): the power flow did not converge for the base "
                                   f"case within 1000 iterations")


def test_published_taps_belong_to_our_deck(tmp_path: Path):
    done = start_refused(tmp_path, "--feeder", str(copy_ieee13(tmp_path)), "--published-taps")
    assert done.returncode == 2 and "--published-taps" in done.stderr and "Traceback" not in done.stderr


def test_a_state_file_keeps_its_scenarios_for_their_feeder(tmp_path: Path):
    """Scenarios made on one feeder are kept, and a server on another feeder (or on the same feeder whose deck's
    files changed) refuses the file naming both, rather than rebuilding journals on a deck they were not made on."""
    state, master = tmp_path / "state.db", copy_ieee13(tmp_path)
    process, url = start_server(tmp_path, "--feeder", str(master), "--state", str(state), "--engine-hosts", "1")
    try:
        created = requests.post(f"{url}/scenarios", json={"name": "pv"}, timeout=TIMEOUT_S).json()["scenario"]["id"]
        requests.post(f"{url}/scenarios/{created}/add_generator", json={"bus_name": "675", "phases": 3, "kw": 100},
                      timeout=TIMEOUT_S).raise_for_status()
    finally:
        stop_server(process)
    refused = start_refused(tmp_path, "--state", str(state))  # our IEEE 123 deck
    assert refused.returncode == 2 and "made on feeder ieee13nodeckt" in refused.stderr
    assert "serves feeder ieee123" in refused.stderr and "Traceback" not in refused.stderr
    master.write_text(master.read_text() + "\n! edited\n")
    changed = start_refused(tmp_path, "--feeder", str(master), "--state", str(state))
    assert changed.returncode == 2 and "deck sha256" in changed.stderr
    master.write_text(master.read_text().replace("\n! edited\n", ""))
    process, url = start_server(tmp_path, "--feeder", str(master), "--state", str(state), "--engine-hosts", "1")
    try:
        generators = requests.get(f"{url}/scenarios/{created}/generators", timeout=TIMEOUT_S).json()["generators"]
        assert [(g["bus"], g["kw"]) for g in generators] == [("675", 100.0)]
    finally:
        stop_server(process)


def test_the_docs_feeder_lines_run(tmp_path: Path):
    """docs/feeder.md's three lines, as written, on a deck of the test's own at /path/to/MyFeeder (its circuit
    renamed myfeeder): the server takes the deck's name or the one given, the command line studies it."""
    from support.docs import blocks

    (block,) = [b for b in blocks() if b.page == "docs/feeder.md" and b.language == "bash"]
    folder = tmp_path / "MyFeeder"
    master = copy_ieee13(tmp_path)
    (tmp_path / "13Bus").rename(folder)
    (folder / master.name).rename(folder / "Master.dss")
    text = (folder / "Master.dss").read_text()
    (folder / "Master.dss").write_text(text.replace("new circuit.IEEE13Nodeckt", "new circuit.myfeeder", 1))
    lines = [line.split("#")[0].strip().replace("/path/to/MyFeeder", str(folder)) for line in block.text.splitlines()]
    serve_default, serve_named, study = lines
    for line, name in ((serve_default, "myfeeder"), (serve_named, "north")):
        arguments = line.split()[2:]
        process, url = start_server(tmp_path, *arguments, "--engine-hosts", "1", "--workers", "1")
        try:
            assert requests.get(f"{url}/feeders", timeout=TIMEOUT_S).json()["feeders"][0]["name"] == name
        finally:
            stop_server(process)
    done = subprocess.run([sys.executable, "-m", "studies", *study.split()[3:], "--workers", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "hc.csv").read_text().splitlines()[1:]
    assert sorted(row.split(",")[0] for row in rows) == sorted(direct(folder / "Master.dss", []).Circuit.AllBusNames())


def test_the_docs_several_feeders_lines_run(tmp_path: Path):
    """docs/feeder.md's "several feeders" lines, as written, on two decks of the test's own at /path/to/North and
    /path/to/South (copies of IEEE 13): both are served, the first the default, and the curl line makes a scenario
    on south."""
    from support.docs import blocks

    (block,) = [b for b in blocks() if b.page == "docs/feeder.md" and b.language == "sh"]
    serve, make = block.text.strip().splitlines()
    for name in ("North", "South"):
        serve = serve.replace(f"/path/to/{name}/Master.dss", str(copy_ieee13(tmp_path / name)))
    arguments = serve.split()[2:]
    process, url = start_server(tmp_path, *arguments, "--engine-hosts", "2", "--workers", "1")  # engines of both decks in hosts
    try:
        feeders = requests.get(f"{url}/feeders", timeout=TIMEOUT_S).json()["feeders"]
        assert [(f["name"], f["default"]) for f in feeders] == [("north", True), ("south", False)]
        done = subprocess.run(["bash", "-c", make.replace("localhost:5000", url.removeprefix("http://"))],
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        scenario = __import__("json").loads(done.stdout)["scenario"]
        assert scenario["feeder"] == "south" and scenario["name"] == "ev study"
        from client import GridClient  # the client too: feeders as a frame, a scenario on a chosen feeder

        grid = GridClient(url)
        assert list(grid.feeders().index) == ["north", "south"]
        made = grid.new_scenario("by client", feeder="south")
        assert grid.scenarios().loc[made.id, "feeder"] == "south"
        assert made.add_generator("675", 3, 100).action["bus"] == "675"
        north = grid.new_scenario("north one")
        assert grid.scenarios().loc[north.id, "feeder"] == "north"
        assert north.add_generator("680", 3, 200).summary["total_generation_kW"] == pytest.approx(200, rel=1e-3)
        hosts = requests.get(f"{url}/health", timeout=TIMEOUT_S).json()["hosts"]
        assert len(hosts) == 2 and all(host["scenarios"] for host in hosts)  # both decks' engines are hosted
    finally:
        stop_server(process)


def test_a_state_file_keeps_scenarios_of_a_feeder_no_longer_served(tmp_path: Path):
    """Scenarios on a second feeder survive restarts: served without it, they are listed as unavailable (naming the
    feeder and its sha256) and refused with 409, exportable and never dropped; served with its files changed, the
    same; served as it was, they answer again as before."""
    state, master = tmp_path / "state.db", copy_ieee13(tmp_path)
    both = ("--feeder", f"{REPO / 'Test_Systems' / 'IEEE_123_Bus-G' / 'Master.dss'}", "--feeder", f"t13={master}",
            "--state", str(state), "--engine-hosts", "1", "--workers", "1")
    process, url = start_server(tmp_path, *both)
    try:
        made = requests.post(f"{url}/scenarios", json={"name": "pv", "feeder": "t13"}, timeout=TIMEOUT_S).json()
        created, sha = made["scenario"]["id"], requests.get(f"{url}/feeders", timeout=TIMEOUT_S).json()["feeders"][1]["sha256"]
        requests.post(f"{url}/scenarios/{created}/add_generator", json={"bus_name": "675", "phases": 3, "kw": 100},
                      timeout=TIMEOUT_S).raise_for_status()
    finally:
        stop_server(process)
    master.write_text(master.read_text() + "\n! edited\n")
    for arguments in (both[:2] + both[4:], both):  # t13 not served; t13 served with other files
        process, url = start_server(tmp_path, *arguments)
        try:
            listed = {s["id"]: s for s in requests.get(f"{url}/scenarios", timeout=TIMEOUT_S).json()["scenarios"]}
            assert listed[created]["feeder"] == "t13" and f"deck sha256 {sha}" in listed[created]["unavailable"]
            for path in ("", "/state", "/buses"):
                refused = requests.get(f"{url}/scenarios/{created}{path}", timeout=TIMEOUT_S)
                assert refused.status_code == 409 and "made on feeder t13" in refused.json()["message"]
            change = requests.post(f"{url}/scenarios/{created}/add_generator",
                                   json={"bus_name": "675", "phases": 3, "kw": 5}, timeout=TIMEOUT_S)
            assert change.status_code == 409
            document = requests.get(f"{url}/scenarios/{created}/export", timeout=TIMEOUT_S).json()
            assert document["feeder"] == {"name": "t13", "sha256": sha} and len(document["changes"]) == 1
        finally:
            stop_server(process)
    master.write_text(master.read_text().replace("\n! edited\n", ""))
    process, url = start_server(tmp_path, *both)
    try:
        generators = requests.get(f"{url}/scenarios/{created}/generators", timeout=TIMEOUT_S).json()["generators"]
        assert [(g["bus"], g["kw"]) for g in generators] == [("675", 100.0)]
        assert "unavailable" not in requests.get(f"{url}/scenarios/{created}", timeout=TIMEOUT_S).json()["scenario"]
    finally:
        stop_server(process)
