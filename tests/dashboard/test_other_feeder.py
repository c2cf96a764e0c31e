"""The page on a feeder a user brings (`python api.py --feeder PATH`): it names that feeder and draws every bus the
deck gives coordinates for (all 16 of IEEE 13)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import requests
from support.paths import SHARED_REFERENCE
from support.server import start_server, stop_server

from .conftest import csp_violations, open_tab

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"


@pytest.fixture(scope="module")
def ieee13_server(browser: Any, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("deck")
    shutil.copytree(IEEE13.parent, folder / "13Bus")
    shutil.copy(IEEE13.parent.parent / "IEEELineCodes.DSS", folder / "IEEELineCodes.DSS")
    process, url = start_server(tmp_path_factory.mktemp("cwd"), "--feeder", f"thirteen={folder / '13Bus' / IEEE13.name}",
                                "--no-access-log", "--engine-hosts", "1", "--workers", "1", env={"IEEE123_API_KEY": ""})
    yield url
    stop_server(process)


def test_the_page_names_and_draws_the_feeder_it_serves(browser: Any, ieee13_server: str) -> None:
    context, tab = open_tab(browser, f"{ieee13_server}/", viewport={"width": 1440, "height": 1000})
    try:
        assert tab.title() == "thirteen feeder dashboard"
        assert tab.locator("h1").inner_text() == "Feeder thirteen"
        buses = requests.get(f"{ieee13_server}/buses", timeout=30).json()["buses"]
        assert len(buses) == 16
        drawn = {tab.locator("#map .bus").nth(i).get_attribute("data-bus") for i in range(tab.locator("#map .bus").count())}
        assert drawn == {bus["name"] for bus in buses if bus["x"] is not None} and len(drawn) == 16
        assert tab.problems == [] and csp_violations(tab) == []
    finally:
        context.close()
