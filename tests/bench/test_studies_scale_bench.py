"""bench/studies_scale.py's short run: its figures come from the run and have the docs file's shape.

No time is asserted (speed is the bench's): `--quick` on IEEE 13 must sample the buses above 1 kV from the deck,
check every study against its floor (the exit status says a wrong answer), and write figures that are the run's own
numbers, with every key docs/figures/studies_scale.json has (the docs' template names them).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

from support.paths import REPO


def keys(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON object, the keys of `cancel` (one per study cancelled) aside."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        found.add(prefix + key)
        if key != "cancel":
            found |= keys(inner, f"{prefix}{key}.")
    return found


def test_a_quick_run_writes_the_figures_of_its_own_run(tmp_path):
    out, figures = tmp_path / "run.json", tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "studies_scale.py"), "--quick", "--no-dask",
                          "--out", str(out), "--write-docs-figures", str(figures)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    r, f = json.loads(out.read_text()), json.loads(figures.read_text())

    assert f["feeder"] == {"buses": 16, "nodes": 41, "hostable": 16, "above_1kv": 15, "below_1kv": 1}  # IEEE 13
    assert len(r["buses"]["sample_high"]) == f["hosting_capacity"]["sample"] == 6
    assert set(r["buses"]["sample_high"]) <= {row["bus"] for row in r["hosting_capacity"]["floor"]["rows"]}
    hc = f["hosting_capacity"]
    assert hc["trials"] == r["hosting_capacity"]["floor"]["trials"] > 0
    assert hc["local_s"] == round(r["hosting_capacity"]["local"]["wall_s"], 1)
    assert hc["differ"] == 0 and hc["dask_s"] is None  # every bus as the floor found it; --no-dask
    share = r["hosting_capacity"]["local"]["wall_s"] / (r["hosting_capacity"]["floor"]["wall_s"] / 2)
    assert hc["local_of_share"] == round(share, 2) and hc["met"] == (share <= hc["target"])
    assert hc["all_floor_min"] >= hc["above_1kv_floor_min"]

    series = f["time_series"]
    assert series["hours"] == 336 and series["chunks"] == 2  # a small feeder keeps a week per chunk
    assert series["differ"] == 0 and math.isclose(series["floor_s"], round(r["series"]["floor"]["wall_s"], 1))
    assert f["stochastic"]["samples"] == 4 and f["stochastic"]["differ"] == 0
    assert f["stochastic"]["trials"] == sum(s["trials"] for s in r["stochastic"]["floor"]["samples"])

    assert f["progress"]["max_gap_s"] == round(max(w["progress"]["max_gap_s"] for w in r["watched_runs"]), 2)
    cancelled = [c for c in r["cancel"] if c["cancelled"]]
    assert set(f["cancel"]) == {c["route"] for c in cancelled}
    for c in cancelled:
        assert f["cancel"][c["route"]]["idle_s"] >= f["cancel"][c["route"]]["reported_s"] >= 0

    documented = json.loads((REPO / "docs" / "figures" / "studies_scale.json").read_text())
    assert keys(f) == keys(documented)
