"""bench/memory.py measures memory from the processes themselves, and the documented default holds to it.

No size is asserted here for a live run (sizes are the script's job): a short run on IEEE 13 must read every
process's resident memory after each live scenario and fit its slope from those readings; the default
`--max-live-scenarios` must be the one docs/figures/memory.json measured under its budget on the 8500-node feeder.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from support.paths import REPO


def test_a_short_run_fits_memory_per_live_scenario_from_each_process_rss(tmp_path):
    out = tmp_path / "memory.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "memory.py"), "--feeders", "ieee13", "--fill",
                          "--scenarios", "4", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=180, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    row = json.loads(out.read_text())["per_scenario"]["ieee13"]
    points = row["points"]
    assert [point["live"] for point in points] == [1, 2, 3, 4, 5]  # each new scenario live, none evicted
    for point in points:
        assert len(point["hosts"]) == 2 and all(mb > 50 for mb in [point["web"], *point["hosts"]])
        assert abs(point["total"] - point["web"] - sum(point["hosts"])) < 0.2
    assert points[-1]["total"] > points[0]["total"]  # engines added memory
    fitted = points[2:]
    slope = statistics.linear_regression([p["live"] for p in fitted], [p["total"] for p in fitted]).slope
    assert row["mb_per_live_scenario"] == round(slope, 1) and slope > 0
    assert row["nodes"] == 41 and row["buses"] == 16  # the IEEE 13 deck: 41 nodes on 16 buses


def test_the_default_live_limit_is_the_one_measured_under_the_budget():
    from api import parse_args

    figures = json.loads((REPO / "docs" / "figures" / "memory.json").read_text())["filled"]["ieee8500"]
    assert parse_args([]).max_live_scenarios == figures["max_live"]
    assert figures["filled_mb"] < figures["budget_mb"] <= 4096
