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


def test_a_short_run_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), "--quick", "--requests", "60",
                          "--duration", "0.3", "--leak-requests", "400", "--out", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cross_check"]["match"] is True
    assert {t["name"].split(" ")[0] for t in report["targets"]} >= {"POST", "GET", "4-client", "start-up"}
    assert len(report["targets"]) == 8 and all(t["result"] in ("PASS", "FAIL") for t in report["targets"])
    assert len(report["bounds"]) == 4
    assert report["transport"]["post"]["n"] == 60 and report["transport"]["response_bytes"] > 50_000
    assert [level["clients"] for level in report["throughput"]["levels"]] == [1, 2, 4, 8]
    assert all(level["requests"] > 0 for level in report["throughput"]["levels"])
    assert report["latency"]["modify_load_neighbourhood"]["n"] == 60
    assert report["latency"]["lean"]["n"] == 60 and report["latency"]["lean"]["response_bytes"] < 5000
    for server in report["servers"].values():
        assert server["wrote_into_cwd"] == [] and server["printed_stopped"]
    assert "Targets:" in run.stdout and "What HTTP alone allows" in run.stdout


@pytest.fixture(scope="module")
def bench():
    return load_bench()


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
