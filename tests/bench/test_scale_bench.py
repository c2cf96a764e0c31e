"""bench/scale.py measures every request path beside its floors on each feeder, and each figure comes from the run.

No timing is asserted (timings are the script's job, on a quiet machine): a `--quick` run on IEEE 13 and a
300-bus synthetic feeder must finish with every path timed against positive floors, its ratios and verdicts
recomputable from its own figures, its answer bytes those of the answers a server gives here, its figures file
holding the keys docs/figures/scale.json has, and its plot drawn.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import orjson
import pytest
from support.paths import REPO, SHARED_REFERENCE

pytestmark = pytest.mark.slow

PATHS = {"startup", "new_generator", "generator_update", "neighbourhood", "dry_run", "state", "buses", "undo",
         "rebuild"}
IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    out, figures, plot = folder / "scale.json", folder / "figures.json", folder / "scale.png"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--quick", "--out", str(out),
                          "--write-docs-figures", str(figures), "--plot", str(plot)], cwd=folder,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return json.loads(out.read_text()), json.loads(figures.read_text()), plot, run.stdout


def test_every_path_is_timed_against_positive_floors_on_each_feeder(quick_run):
    report = quick_run[0]
    assert [f["name"] for f in report["feeders"]] == ["ieee13", "syn300"]
    for feeder in report["feeders"]:
        assert set(feeder["paths"]) == PATHS == set(feeder["judged"])
        for path, got in feeder["paths"].items():
            assert got["ours"]["n"] >= 1 and got["ours"]["p50"] > 0 and got["engine"]["p50"] > 0, (feeder["name"], path)
            if path != "startup":
                assert got["transport"]["p50"] > 0 and got["answer_bytes"] > 100
    ieee13, synthetic = report["feeders"]
    assert (ieee13["buses"], ieee13["nodes"]) == (16, 41)  # the IEEE 13 deck
    assert synthetic["buses"] == 300 and synthetic["nodes"] > 300


def test_ratios_verdicts_and_slopes_are_those_of_the_runs_own_figures(quick_run):
    report = quick_run[0]
    fixed = report["fixed_start_ms"]["ms"]
    ieee13 = report["feeders"][0]["paths"]["startup"]
    assert fixed == pytest.approx(ieee13["ours"]["p50"] - ieee13["engine"]["p50"])
    for feeder in report["feeders"]:
        for path, judged in feeder["judged"].items():
            got = feeder["paths"][path]
            p50, e = got["ours"]["p50"], got["engine"]["p50"]
            if path == "startup":
                assert judged["ratio"] == pytest.approx((p50 - fixed) / e)
                assert judged["within"] is (p50 <= 2.0 * e + fixed)
            else:
                t = got["transport"]["p50"]
                assert judged["ratio"] == pytest.approx((p50 - t) / e)
                assert judged["within"] is (p50 <= t + 1.5 * e)
                assert judged["floor_ms"] == pytest.approx(e + t)
    nodes = np.log([f["nodes"] for f in report["feeders"]])
    for path, slope in report["slopes"].items():
        ours = np.log([f["judged"][path]["p50_ms"] for f in report["feeders"]])
        assert slope["ours"] == pytest.approx(np.polyfit(nodes, ours, 1)[0])
    assert "slope of p50 against nodes" in quick_run[3]


def test_answer_bytes_are_those_a_server_answers(quick_run):
    """A fresh server on IEEE 13: its base-case GET /state and first change (the bench's: the first neighbourhood
    with loads, x1.05), plain and gzip, are as long as the bench reported."""
    sys.path.insert(0, str(REPO / "bench"))
    from harness import Api

    reported = quick_run[0]["feeders"][0]["bytes"]
    with Api("test-scale-bytes", "--feeder", str(IEEE13)) as api:
        neighbourhood = next(row["id"] for row in api.call("GET", "/neighbourhoods")[1]["neighbourhoods"]
                             if row["loads"])
        state = api.client.call("GET", "/state")[2]
        state_gz = api.client.call("GET", "/state", headers={"Accept-Encoding": "gzip"})[2]
        change = api.client.call("POST", "/modify_load_neighbourhood",
                                 orjson.dumps({"neighbourhood": neighbourhood, "factor": 1.05}),
                                 {"Content-Type": "application/json"})[2]
    assert gzip.decompress(state_gz) == state
    assert reported["state"] == {"plain": len(state), "gzip": len(state_gz)}
    assert reported["change"]["plain"] == len(change)
    assert 0 < reported["change"]["gzip"] < reported["change"]["plain"]


def test_figures_file_and_plot_come_from_the_run(quick_run):
    report, figures, plot, _ = quick_run
    committed = json.loads((REPO / "docs" / "figures" / "scale.json").read_text())
    ieee13 = figures["feeders"]["ieee13"]
    assert set(ieee13) == set(committed["feeders"]["ieee13"]) and set(ieee13["paths"]) == PATHS
    assert set(figures) <= set(committed) and set(figures["slopes"]) == set(committed["slopes"])
    judged = report["feeders"][0]["judged"]
    for path, row in ieee13["paths"].items():
        assert row["p50_ms"] == float(f"{judged[path]['p50_ms']:.3g}") and row["within"] is judged[path]["within"]
    from docs_figures import SCALE_LABELS

    assert ieee13["over"] == ([SCALE_LABELS[p] for p, j in judged.items() if not j["within"]] or "none")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
