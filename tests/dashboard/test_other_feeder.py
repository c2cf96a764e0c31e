"""The page on a feeder a user brings (`python api.py --feeder PATH`): it names that feeder and draws every bus, from
the deck's coordinates (all 16 of IEEE 13) or from those the server placed (IEEE 34 gives none)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import requests
from support.paths import SHARED_REFERENCE
from support.server import start_server, stop_server

from .conftest import csp_violations, open_tab
from .mapview import drawn_buses, drawn_lines

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"
IEEE34 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "34Bus" / "ieee34Mod1.dss"


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
        drawn = set(drawn_buses(tab))
        assert drawn == {bus["name"] for bus in buses if bus["x"] is not None} and len(drawn) == 16
        assert tab.problems == [] and csp_violations(tab) == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def ieee34_server(browser: Any, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("deck34")
    shutil.copytree(IEEE34.parent, folder / "34Bus")
    shutil.copy(IEEE34.parent.parent / "IEEELineCodes.DSS", folder / "IEEELineCodes.DSS")
    process, url = start_server(tmp_path_factory.mktemp("cwd34"), "--feeder", str(folder / "34Bus" / IEEE34.name),
                                "--no-access-log", "--engine-hosts", "1", "--workers", "1", env={"IEEE123_API_KEY": ""})
    yield url
    stop_server(process)


def test_a_feeder_without_coordinates_is_drawn_from_placed_ones(browser: Any, ieee34_server: str) -> None:
    context, tab = open_tab(browser, f"{ieee34_server}/", viewport={"width": 1440, "height": 1000})
    try:
        buses = requests.get(f"{ieee34_server}/buses", timeout=30).json()["buses"]
        assert len(buses) == 37 and {bus["xy_source"] for bus in buses} == {"placed"}
        shown = [(name, bus["x"], bus["y"]) for name, bus in drawn_buses(tab).items()]
        assert {name for name, _, _ in shown} == {bus["name"] for bus in buses} and len(shown) == 37
        assert len({(round(x, 3), round(y, 3)) for _, x, y in shown}) == 37  # no two on one place
        lines = requests.get(f"{ieee34_server}/lines", timeout=30).json()["lines"]
        assert len(drawn_lines(tab)) == len(lines)
        assert not [name for name, line in drawn_lines(tab).items() if line["open"]]  # no open ties on this deck
        assert tab.problems == [] and csp_violations(tab) == []
    finally:
        context.close()
