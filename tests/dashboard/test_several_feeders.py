"""The page on a server with two feeders (`--feeder` twice): the new-scenario form offers the feeders, a scenario
made on the second one switches the page to that feeder's map and name, and choosing a scenario of the first
feeder brings its map back. On one feeder the chooser stays hidden (test_other_feeder.py, test_page.py)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import requests
from support.paths import REPO, SHARED_REFERENCE
from support.server import start_server, stop_server

from .conftest import csp_violations, open_tab
from .mapview import drawn_buses as drawn

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"
OURS = REPO / "Test_Systems" / "IEEE_123_Bus-G" / "Master.dss"


@pytest.fixture(scope="module")
def two_feeders(browser: Any, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("deck")
    shutil.copytree(IEEE13.parent, folder / "13Bus")
    shutil.copy(IEEE13.parent.parent / "IEEELineCodes.DSS", folder / "IEEELineCodes.DSS")
    process, url = start_server(tmp_path_factory.mktemp("cwd"), "--feeder", f"thirteen={folder / '13Bus' / IEEE13.name}",
                                "--feeder", str(OURS), "--no-access-log", "--engine-hosts", "1", "--workers", "1",
                                env={"IEEE123_API_KEY": ""})
    yield url
    stop_server(process)


def drawn_buses(tab: Any) -> set[str]:
    return set(drawn(tab))


def test_a_scenario_on_the_other_feeder_switches_the_map(browser: Any, two_feeders: str) -> None:
    context, tab = open_tab(browser, f"{two_feeders}/", viewport={"width": 1440, "height": 1000})
    try:
        assert tab.title() == "thirteen feeder dashboard"
        thirteen = {bus["name"] for bus in requests.get(f"{two_feeders}/buses", timeout=30).json()["buses"]}
        assert drawn_buses(tab) == thirteen
        assert tab.locator("#scenario-feeder-row").is_visible()
        assert tab.locator("#scenario-feeder option").all_inner_texts() == ["thirteen", "ieee123"]
        tab.fill("#scenario-name", "big one")
        tab.select_option("#scenario-feeder", "ieee123")
        tab.click("#scenario-new")
        tab.wait_for_function("() => location.hash.startsWith('#scenario=')")
        tab.wait_for_selector("body[data-ready='true']")
        scenario = tab.evaluate("new URLSearchParams(location.hash.slice(1)).get('scenario')")
        info = requests.get(f"{two_feeders}/scenarios/{scenario}", timeout=30).json()["scenario"]
        assert info["feeder"] == "ieee123" and info["name"] == "big one"
        theirs = {bus["name"] for bus in requests.get(f"{two_feeders}/scenarios/{scenario}/buses",
                                                      timeout=30).json()["buses"]}
        tab.wait_for_function("() => window.dashboard && window.dashboard.scene && window.dashboard.scene.buses.length > 100")
        assert drawn_buses(tab) <= theirs and len(drawn_buses(tab)) > 100
        assert tab.locator("#scenario-select").input_value() == scenario
        assert "default" not in [o for o in tab.locator("#compare-select option").evaluate_all(
            "(options) => options.map((o) => o.value)")]  # the default scenario is on the other feeder
        tab.select_option("#scenario-select", "default")
        tab.wait_for_function("() => window.dashboard && window.dashboard.scene && window.dashboard.scene.buses.length < 20")
        tab.wait_for_selector("body[data-ready='true']")
        assert drawn_buses(tab) == thirteen and tab.title() == "thirteen feeder dashboard"
        assert tab.problems == [] and csp_violations(tab) == []
    finally:
        context.close()
