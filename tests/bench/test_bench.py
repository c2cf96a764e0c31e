"""The benchmark script runs from the README in one command and refuses wrong answers.

No timing is asserted here (timings are the script's job, on a quiet machine): a short run must finish, and
every figure the README quotes must be in its JSON, with the server's state matching the engine floor's.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.paths import REPO


def require_wrk() -> None:
    """The bench's load comes from wrk (Debian's package). CI installs it and sets REQUIRE_WRK=1."""
    if shutil.which("wrk") is None:
        if os.environ.get("REQUIRE_WRK") == "1":
            pytest.fail("REQUIRE_WRK=1 but wrk is not installed (apt-get install wrk)")
        pytest.skip("wrk is not installed (apt-get install wrk): the bench cannot generate its load")


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_script", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_script"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One short run of the script, as the README says to run it; the tests below read its report."""
    require_wrk()
    cwd = tmp_path_factory.mktemp("bench")
    out = cwd / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), "--quick", "--requests", "60",
                          "--duration", "1", "--leak-requests", "400", "--many-scenarios", "40",
                          "--no-studies", "--out", str(out)],
                         cwd=cwd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run, json.loads(out.read_text())


def test_a_short_run_compares_engine_hosts_with_the_single_process(short_run):
    _, report = short_run
    hosts = json.loads(Path(report["config"]["out"]).with_name("bench-hosts.json").read_text())
    for key in ("single", "hosts_2"):
        assert [level["clients"] for level in hosts[key]["throughput"]] == [1, 2, 4, 8]
        assert all(level["rps"] > 0 for level in hosts[key]["throughput"])
        assert hosts[key]["latency"]["change"]["n"] == 100 and 0 < hosts[key]["startup_s"] < 60
    assert hosts["single"]["memory"]["hosts"] == []
    assert [h["host"] for h in hosts["hosts_2"]["memory"]["hosts"]] == [0, 1]
    assert all(h["rss_mb"] > 0 for h in hosts["hosts_2"]["memory"]["hosts"])


def test_a_short_run_reports_every_figure(short_run):
    run, report = short_run
    assert report["cross_check"]["match"] is True
    names = [t["name"] for t in report["targets"]]
    assert len(names) == 12 and all(t["result"] in ("PASS", "FAIL") for t in report["targets"])
    assert sum(name.startswith("k of") for name in names) == 3 and any("304" in name for name in names)
    assert report["floor"]["load_after_idle"]["n"] == 60 and report["floor"]["load_after_idle"]["idle_ms"] == 3
    for key in ("post", "state", "empty_304", "post_paced"):
        assert report["transport"][key]["n"] == 60
    assert report["transport"]["post_paced"]["hold_ms"] == report["latency"]["app_time"]["modify_load_neighbourhood"]["p50"]
    assert report["transport"]["response_bytes"] > 50_000
    assert report["transport"]["throughput_4_clients"]["clients"] == 4
    levels = report["throughput"]["levels"]
    assert [(level["clients"], level["scenarios"]) for level in levels] == [(1, 1), (2, 2), (4, 4), (8, 8)]
    assert all(level["requests"] > 0 and level["load_generator"].startswith("wrk") for level in levels)
    cpus = report["environment"]["cpus_usable"]
    for level in levels:  # the server's own count of the changes it made, apart from wrk's count of answers
        assert level["requests"] <= level["journalled"] <= level["requests"] + level["clients"], level
        server_cpu_s = level["server_cpu_ms_per_request"] * level["requests"] / 1000
        assert 0 < server_cpu_s <= (level["seconds"] + 0.5) * cpus, level  # at most wall time x cores
    one, four = levels[0], levels[2]
    assert report["throughput"]["scaling_4"] == pytest.approx(
        (four["journalled"] / four["seconds"]) / (one["journalled"] / one["seconds"]), rel=0.05)
    latency = report["latency"]
    assert latency["modify_load_neighbourhood"]["n"] == 60 and latency["state_304"]["n"] == 60
    assert latency["lean"]["n"] == 60 and latency["lean"]["response_bytes"] < 5000
    assert latency["app_time"]["available"] is True and "state_304" in latency["app_time"]
    assert set(report["servers"]) == {"A", "B", "C", "D", "E", "E2"}
    for server in report["servers"].values():
        assert server["wrote_into_cwd"] == [] and server["printed_stopped"]
    assert "Targets:" in run.stdout and "Where the time goes" in run.stdout and "Scenarios, ms" in run.stdout


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
        side = parallel[name]
        assert side["scenarios"] == scenarios and len(side["slots"]) == 4
        assert 0 < side["requests"] <= side["journalled"] <= side["requests"] + 2 * len(side["slots"])
        assert 0 < side["server_cpus"] <= parallel["cpus_usable"] and 0 < side["client_cpus"] < 1  # of wall time
    rates = {name: parallel[name]["journalled"] / parallel[name]["seconds"] for name in ("one", "two")}
    assert parallel["ratio"] == pytest.approx(rates["two"] / rates["one"], rel=0.03)  # from the server's counts
    many = s["many"]
    assert many["count"] == 40 and many["listed"] == 41 and many["live"] == 32 and many["resting"] == 9
    assert many["health"] == {"scenarios": 41, "live_scenarios": 32, "durable": True}
    assert many["rss_kB"] > many["rss_start_kB"] > 0 and many["state_file_bytes"] > 0
    assert many["restart"]["listed"] == 41 and many["restart"]["startup_s"] > 0
    assert "--state" in s["servers"]["D"] and "--max-live-scenarios 2" in s["servers"]["D"]


@pytest.fixture(scope="module")
def bench():
    return load_bench()


def test_the_docs_figures_come_from_the_run_key_for_key(short_run, bench, tmp_path):
    """--write-docs-figures: each figure the bench measures lands under a key docs/figures/bench.json has (the
    pages quote those keys), taken from the run's JSON; the keys the bench does not measure stay as they were."""
    import docs_figures  # bench/, on sys.path once bench.py is loaded

    report = short_run[1]
    out = Path(report["config"]["out"])
    measured = docs_figures.figures([out])
    assert measured["grid"]["add_generator"]["p50"] == round(report["latency"]["add_generator"]["p50"], 2)
    assert measured["scenarios"]["create_p50"] == round(report["scenarios"]["create"]["p50"])
    assert measured["throughput"]["rps"]["4"] == round(report["throughput"]["levels"][2]["rps"])
    assert measured["hosts"]["runs"] == 1 and "studies" not in measured  # --no-studies: no studies JSON beside
    docs = REPO / "docs" / "figures" / "bench.json"
    quoted = json.loads(docs.read_text(encoding="utf-8"))
    assert docs_figures.leaves(measured) <= docs_figures.leaves(quoted)
    target = tmp_path / "bench.json"
    target.write_text(docs.read_text(encoding="utf-8"), encoding="utf-8")
    docs_figures.write(target, out)
    written = json.loads(target.read_text(encoding="utf-8"))
    assert docs_figures.leaves(written) == docs_figures.leaves(quoted)
    assert written["grid"] == measured["grid"] and written["about"] == quoted["about"]
    assert written["where_time_goes"]["json"] == quoted["where_time_goes"]["json"]  # a profile's, not the bench's


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


def test_k_says_how_many_engine_floors_above_the_transport_floor(bench):
    assert bench.k_of(0.5 + 2.5 * 0.4, 0.5, 0.4) == pytest.approx(2.5)
    assert bench.k_of(0.5, 0.5, 0.4) == 0


class RefusingServer(http.server.BaseHTTPRequestHandler):
    """Answers every POST with 422, as the API does to a change it refuses."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"status":"error","message":"factor: no"}'
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_wrk_levels_stop_on_answers_that_are_not_2xx(bench):
    """wrk counts the answers; a level with any refused change is a failed run, not a figure."""
    require_wrk()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target = type("Target", (), {"port": server.server_address[1], "count": lambda self, n=1: None})()
    try:
        with pytest.raises(bench.BenchError, match="errors"):
            bench.wrk_level(target, ["/scenarios/a"], 1)
    finally:
        server.shutdown()
