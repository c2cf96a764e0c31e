"""The benchmark script runs from the README in one command and refuses wrong answers.

No timing is asserted here (timings are the script's job, on a quiet machine): a short run must finish, and
every figure the README quotes must be in its JSON, with the server's state matching the engine floor's.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import orjson
import pytest

from conftest import REPO


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_script", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_script"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One short run of the script, as the README says to run it; the tests below read its report."""
    cwd = tmp_path_factory.mktemp("bench")
    out = cwd / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), "--quick", "--requests", "60",
                          "--duration", "0.3", "--leak-requests", "400", "--many-scenarios", "40",
                          "--out", str(out)],
                         cwd=cwd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run, json.loads(out.read_text())


def test_a_short_run_reports_every_figure(short_run):
    run, report = short_run
    assert report["cross_check"]["match"] is True
    assert {t["name"].split(" ")[0] for t in report["targets"]} >= {"POST", "GET", "4-client", "start-up", "rebuild"}
    assert len(report["targets"]) == 11 and all(t["result"] in ("PASS", "FAIL") for t in report["targets"])
    assert len(report["bounds"]) == 4
    assert report["transport"]["post"]["n"] == 60 and report["transport"]["response_bytes"] > 50_000
    assert [level["clients"] for level in report["throughput"]["levels"]] == [1, 2, 4, 8]
    assert all(level["requests"] > 0 for level in report["throughput"]["levels"])
    assert report["latency"]["modify_load_neighbourhood"]["n"] == 60
    assert report["latency"]["lean"]["n"] == 60 and report["latency"]["lean"]["response_bytes"] < 5000
    assert set(report["servers"]) == {"A", "B", "C", "D", "E", "E2"}
    for server in report["servers"].values():
        assert server["wrote_into_cwd"] == [] and server["printed_stopped"]
    assert "Targets:" in run.stdout and "What HTTP alone allows" in run.stdout and "Scenarios, ms" in run.stdout


def test_a_short_run_reports_every_scenario_figure(short_run):
    """Its scenarios phase: creation, rebuild of a 20-change journal, memory per live scenario, 2 clients on one
    scenario and on two, and many scenarios held by one server (40 here), restarted on the same file."""
    s = short_run[1]["scenarios"]
    assert s["create"]["n"] == 20 and s["create"]["p50"] > 0 and s["create"]["response_bytes"] > 50_000
    assert s["delete"]["n"] == 20
    rebuild = s["rebuild"]
    assert rebuild["changes"] == 20 and rebuild["rebuild"]["n"] == 4 and rebuild["live"]["n"] == 20
    assert rebuild["rebuild"]["p50"] > 0 and rebuild["response_bytes"] > 50_000
    memory = s["memory"]
    assert memory["scenarios"] == 16 and memory["live_scenarios"] == 18
    assert 0 < memory["per_live_scenario_kB"] < 100_000  # a feeder engine with its results: megabytes, not gigabytes
    parallel = s["parallel"]
    for name, scenarios in (("one", 1), ("two", 2)):
        assert parallel[name]["scenarios"] == scenarios and parallel[name]["requests"] > 0
        assert len(parallel[name]["slots"]) == 4 and parallel[name]["server_cpus"] >= 0
    assert parallel["ratio"] == pytest.approx(parallel["two"]["rps"] / parallel["one"]["rps"])
    many = s["many"]
    assert many["count"] == 40 and many["listed"] == 41 and many["live"] == 32 and many["resting"] == 9
    assert many["health"] == {"scenarios": 41, "live_scenarios": 32, "durable": True}
    assert many["rss_kB"] > many["rss_start_kB"] > 0 and many["state_file_bytes"] > 0
    assert many["restart"]["listed"] == 41 and many["restart"]["startup_s"] > 0
    assert "--state" in s["servers"]["D"] and "--max-live-scenarios 2" in s["servers"]["D"]


@pytest.fixture(scope="module")
def bench():
    return load_bench()


@pytest.fixture(scope="module")
def scenarios_phase(bench):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import scenarios_phase
    finally:
        sys.path.remove(str(REPO / "bench"))
    return scenarios_phase


def test_a_rebuilt_state_must_equal_the_original(bench, scenarios_phase):
    summary = {"total_circuit_power_kW": 3608.3, "total_circuit_power_kVAR": 1323.8, "total_losses_kW": 95.7}
    scenarios_phase.check_same_state(dict(summary), summary, "x")
    with pytest.raises(bench.BenchError, match="differs"):
        scenarios_phase.check_same_state({**summary, "total_losses_kW": 95.8}, summary, "x")


def envelope(action: dict, results: bytes = b'{"power_summary":{"converged":true}}') -> bytes:
    return b'{"status":"success","action":' + orjson.dumps(action) + b',"results":' + results + b"}"


def test_envelope_check_accepts_a_real_shape(bench):
    document = bench.check_envelope(200, "application/json", envelope({"neighbourhood": 3, "factor": 1.05}), "x")
    assert document["action"] == {"neighbourhood": 3, "factor": 1.05}


@pytest.mark.parametrize("status, content_type, body, message", [
    (422, "application/json", b'{"status":"error","message":"factor: no"}', "HTTP 422"),
    (200, "text/html", envelope({"neighbourhood": 3}), "Content-Type"),
    (200, "application/json", envelope({"neighbourhood": 3})[:-12], "not JSON"),  # cut inside the results
    (200, "application/json", envelope({"neighbourhood": 3}).replace(b"success", b"failure"), "not 'success'"),
])
def test_envelope_check_refuses_wrong_answers(bench, status, content_type, body, message):
    with pytest.raises(bench.BenchError, match=message):
        bench.check_envelope(status, content_type, body, "POST /modify_load_neighbourhood")
