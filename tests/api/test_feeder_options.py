"""`--neighbourhoods N`: how many neighbourhoods are derived for a deck without a neighbourhoods.json (IEEE 34 here),
what GET /feeders and POST /modify_load_neighbourhood then say, and the option refused where nothing is derived."""

from __future__ import annotations

import pytest

from api import UsageError, create_app, engine_settings, parse_args
from engine.deck import DeckError
from engine.feeder import load_feeder
from engine.neighbourhoods import DEFAULT_NEIGHBOURHOODS
from engine.settings import EngineSettings
from support.helpers import assert_error_shape
from support.paths import SHARED_REFERENCE

IEEE34 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "34Bus" / "Run_IEEE34Mod1.dss"


@pytest.mark.parametrize("count", [5, DEFAULT_NEIGHBOURHOODS])
def test_the_count_derived_is_the_count_asked_for(count: int) -> None:
    settings = engine_settings(parse_args(["--feeder", f"t34={IEEE34}", "--neighbourhoods", str(count)]))
    assert settings[0].feeder.neighbourhood_count == count
    app = create_app({"TESTING": True, "WORKERS": 1, "FEEDERS": settings})
    try:
        client = app.test_client()
        (feeder,) = client.get("/feeders").json["feeders"]
        assert feeder["neighbourhoods"] == {"source": "derived", "count": count}
        groups = client.get("/neighbourhoods").json["neighbourhoods"]
        assert [group["id"] for group in groups] == list(range(1, count + 1))
        assert client.post("/modify_load_neighbourhood", json={"neighbourhood": count, "factor": 1.1}).status_code == 200
        refused = client.post("/modify_load_neighbourhood", json={"neighbourhood": count + 1, "factor": 1.1})
        expected = f"expected one of {list(range(1, count + 1))}, got {count + 1}"
        assert expected in assert_error_shape(refused, 404, "neighbourhood")["message"]
    finally:
        app.extensions["jobs"].close()


def test_a_different_count_is_a_different_feeder_for_warm_engines() -> None:
    """Study workers keep engines by settings: five groups and six must not share one."""
    five, six = load_feeder(IEEE34, neighbourhood_count=5), load_feeder(IEEE34, neighbourhood_count=6)
    assert five != six and EngineSettings(feeder=five) != EngineSettings(feeder=six)
    assert five == load_feeder(IEEE34, neighbourhood_count=5)


def test_the_option_is_refused_where_nothing_is_derived() -> None:
    with pytest.raises(UsageError, match="every feeder served has its own neighbourhoods.json"):
        engine_settings(parse_args(["--neighbourhoods", "5"]))  # our deck has its own
    with pytest.raises(SystemExit):
        parse_args(["--neighbourhoods", "0"])
    with pytest.raises(DeckError, match="at least 1"):
        load_feeder(IEEE34, neighbourhood_count=0)
