"""Issue 28, parts 9 and 10, over HTTP on IEEE 13 (every line at OpenDSS's default rating): bus rows say where
their x and y came from, line rows where their rating came from (JSON and CSV alike), and a hosting-capacity result
lists the limits that bound on a default rating, each checked against OpenDSS driven directly."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterator

import opendssdirect
import pytest

from api import create_app
from engine.feeder import load_feeder
from engine.ratings import OPENDSS_DEFAULT_AMPS
from engine.settings import EngineSettings
from support.helpers import finished
from support.paths import SHARED_REFERENCE

IEEE13 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "13Bus" / "IEEE13Nodeckt.dss"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    app = create_app({"TESTING": True, "WORKERS": 1, "ENGINE_SETTINGS": EngineSettings(feeder=load_feeder(IEEE13))})
    yield app.test_client()
    app.extensions["jobs"].close()


@pytest.fixture(scope="module")
def direct_ratings() -> dict[str, tuple[float, float]]:
    """Each line's NormAmps and EmergAmps as a plain engine holds them."""
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    dss.Text.Command(f"Compile [{IEEE13}]")
    ratings = {}
    for name in dss.Lines.AllNames():
        dss.Lines.Name(name)
        ratings[name.lower()] = (dss.Lines.NormAmps(), dss.Lines.EmergAmps())
    return ratings


def csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.data.decode())))


def test_bus_rows_say_where_their_coordinates_came_from(client: Any) -> None:
    buses = client.get("/buses").json["buses"]
    assert len(buses) == 16 and {b["xy_source"] for b in buses} == {"deck"}  # IEEE 13 places every bus
    assert [(r["name"], r["xy_source"]) for r in csv_rows(client.get("/buses?format=csv"))] == \
        [(b["name"], b["xy_source"]) for b in buses]
    one = client.get(f"/buses/{buses[3]['name']}").json["bus"]
    assert (one["x"], one["y"], one["xy_source"]) == (buses[3]["x"], buses[3]["y"], "deck")
    assert client.get("/feeders").json["feeders"][0]["coordinates"] == {"given": 16, "placed": 0}


def test_line_rows_say_where_their_rating_came_from(client: Any, direct_ratings: dict) -> None:
    lines = client.get("/lines").json["lines"]
    assert {r["Line"]: (r["NormAmps"], r["EmergAmps"]) for r in lines} == direct_ratings
    assert set(direct_ratings.values()) == {OPENDSS_DEFAULT_AMPS}  # the deck rates no line
    assert {r["rating_source"] for r in lines} == {"default"}
    assert {r["Line"]: r["rating_source"] for r in csv_rows(client.get("/lines?format=csv"))} == \
        {r["Line"]: r["rating_source"] for r in lines}
    state_rows = client.get("/state?sections=line_flows").json["results"]["line_flows"]
    assert state_rows == lines


def test_hosting_capacity_lists_the_limits_that_rest_on_a_default_rating(client: Any, direct_ratings: dict) -> None:
    # A high voltage limit lets the lines' (default) ratings bind.
    response = client.post("/studies/hosting_capacity?wait=60", json={
        "buses": ["675", "680", "692", "634", "652", "611"], "step_kw": 100, "max_kw": 20000,
        "limits": {"voltage_high_pu": 1.5}})
    job = finished(client, response)
    assert job["status"] == "done", job
    result = job["result"]
    on_lines = {}
    for row in result["buses"]:
        bound = row["limited_by"]
        if bound["kind"] == "thermal" and bound["element"].startswith("Line."):
            name = bound["element"].removeprefix("Line.")
            assert direct_ratings[name] == OPENDSS_DEFAULT_AMPS and bound["rating_source"] == "default", row
            on_lines.setdefault(bound["element"], []).append(row["bus"])
        else:
            assert "rating_source" not in bound, row
    assert len(on_lines) >= 2  # several answers here rest on a guess
    assert result["default_rated_limits"] == [{"element": element, "buses": buses}
                                              for element, buses in on_lines.items()]
