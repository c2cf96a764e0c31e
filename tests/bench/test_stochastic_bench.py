"""The stochastic bench runs in one command (`--quick`) and reports every figure, with the API's samples, on the
local pool and on README's Dask cluster, equal to the engine floor's. No timing is asserted (timings are the
script's job, on a quiet machine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.paths import REPO

pytestmark = pytest.mark.slow


def test_a_quick_run_reports_the_floor_the_pool_and_the_cluster(tmp_path):
    out = tmp_path / "stochastic.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "stochastic_bench.py"), "--quick", "--out", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    floor = report["floor"]
    assert len(floor["runs"]) == 2 and floor["trials"] > 0 and floor["wall_s"] > 0
    assert [row["sample"] for row in floor["samples"]] == [0, 1, 2, 3]
    for key in ("workers_2", "dask_2"):
        assert report[key]["differ_from_floor"] == [] and report[key]["tasks"] == 4, key
        assert report[key]["trials"] == floor["trials"] and report[key]["wall_s"] > 0, key
        assert report[key]["workers"] == 2 and report[key]["workers_cpu_s"] > 0, key
    names = [target["name"] for target in report["targets"]]
    assert names == ["pool of 2 / (floor / 2)", "Dask 2 workers / (floor / 2)", "samples differing from floor"]
    assert "pool of 2 / (floor / 2)" in run.stdout and "FAIL" not in run.stdout.split("samples differing")[1]
