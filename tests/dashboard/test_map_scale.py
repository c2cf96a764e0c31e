"""The map at scale: the IEEE 8500-node feeder (4,876 buses) drawn whole, its names placed where they fit (none
overlapping, more as one zooms in), a change recoloured, a bus's tooltip on hover and its selection on click. How
fast is bench/page_bench.py's to measure, not these tests'."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
from support.paths import REPO, SHARED_REFERENCE
from support.server import start_server, stop_server

from .conftest import csp_violations, open_tab
from .helpers import ARTIFACTS, get, post, sequence, wait_for_change, worst_phase
from .mapview import click_bus, client_point, drawn_buses, hover_bus, placed_labels

IEEE8500 = SHARED_REFERENCE / "feeders" / "IEEETestCases" / "8500-Node" / "Master.dss"

pytestmark = pytest.mark.slow

#: Until the view has stopped moving and drawn its names again.
SETTLED = "() => !window.dashboard.view.moving && !window.dashboard.view.pending"


@pytest.fixture(scope="module")
def ieee8500(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_server(tmp_path_factory.mktemp("ieee8500"), "--no-access-log", "--feeder", str(IEEE8500),
                                "--engine-hosts", "1", "--workers", "1", env={"IEEE123_API_KEY": ""})
    yield url
    stop_server(process)


@pytest.fixture
def tab(browser: Any, ieee8500: str) -> Iterator[Any]:
    post(ieee8500, "/reset", {})
    context, tab = open_tab(browser, f"{ieee8500}/", viewport={"width": 1440, "height": 1000})
    try:
        tab.wait_for_selector("#map[data-drawn]")
        yield tab
        assert tab.problems == [] and csp_violations(tab) == []
    finally:
        context.close()


def overlapping(labels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    boxes = sorted(labels, key=lambda l: l["x"])
    pairs = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if b["x"] >= a["x"] + a["w"]:
                break
            if a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                pairs.append((a["name"], b["name"]))
    return pairs


def picture(tab: Any, name: str) -> None:
    """The map's picture in test-artifacts/dashboard/, and with DASHBOARD_DOCS_SCREENSHOT=1 in docs/ (docs/dashboard.md)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folders = [ARTIFACTS] + ([REPO / "docs"] if os.environ.get("DASHBOARD_DOCS_SCREENSHOT") == "1" else [])
    for folder in folders:
        tab.locator("#map").screenshot(path=str(folder / name), animations="disabled")


def zoom_at(tab: Any, x: float, y: float, steps: int) -> None:
    tab.mouse.move(x, y)
    for _ in range(steps):
        tab.mouse.wheel(0, -300)
    tab.wait_for_function(f"() => window.dashboard.view.k > {tab.evaluate('() => window.dashboard.view.fitK')} * 2")
    tab.wait_for_function(SETTLED)


def test_the_whole_feeder_is_drawn_and_its_names_fit_more_of_them_zoomed_in(tab: Any, ieee8500: str) -> None:
    buses = get(ieee8500, "/buses")["buses"]
    assert len(buses) == 4876
    assert tab.evaluate("() => performance.getEntriesByName('map-drawn').length") == 1
    drawn = drawn_buses(tab)
    assert set(drawn) == {b["name"] for b in buses}
    size = tab.evaluate("() => [window.dashboard.scene.W, window.dashboard.scene.H]")
    assert all(0 <= b["x"] <= size[0] and 0 <= b["y"] <= size[1] for b in drawn.values())

    # At the whole-feeder view: some names, not all (they would cover the map), none overlapping another.
    start = placed_labels(tab)
    assert 20 < len(start) < len(buses) // 4
    assert overlapping(start) == []
    picture(tab, "dashboard-8500.png")

    # Zoomed in about the middle of the buses: more names in that window than it held before, still none overlapping.
    xs, ys = sorted(b["x"] for b in drawn.values()), sorted(b["y"] for b in drawn.values())
    middle = min(drawn.values(), key=lambda b: (b["x"] - xs[len(xs) // 2]) ** 2 + (b["y"] - ys[len(ys) // 2]) ** 2)
    x, y = client_point(tab, [middle["x"], middle["y"]])
    box = tab.locator("#map").bounding_box()
    before = tab.evaluate("() => ({ k: window.dashboard.view.k, tx: window.dashboard.view.tx, ty: window.dashboard.view.ty })")
    zoom_at(tab, x, y, 5)
    after = tab.evaluate("() => ({ k: window.dashboard.view.k, tx: window.dashboard.view.tx, ty: window.dashboard.view.ty })")
    zoomed = placed_labels(tab)
    assert overlapping(zoomed) == []
    tab.mouse.move(x, box["y"] + box["height"] + 40)  # off the map: no tooltip in the picture
    picture(tab, "dashboard-8500-zoom.png")

    def seen_now(label: dict[str, Any]) -> bool:
        """Whether a name placed at the start (px of that view) is inside what the zoomed view shows."""
        mx, my = (label["x"] - before["tx"]) / before["k"], (label["y"] - before["ty"]) / before["k"]
        sx, sy = mx * after["k"] + after["tx"], my * after["k"] + after["ty"]
        return 0 <= sx <= box["width"] and 0 <= sy <= box["height"]

    assert len(zoomed) > max(3, len([label for label in start if seen_now(label)]))

    # A double click brings the whole feeder back, with the names it had.
    tab.mouse.dblclick(x, y)
    tab.wait_for_function(SETTLED)
    assert sorted(label["name"] for label in placed_labels(tab)) == sorted(label["name"] for label in start)


def test_a_change_recolours_and_a_bus_hovered_and_clicked_is_shown(tab: Any, ieee8500: str) -> None:
    # A change through the page's form: every bus takes the colour of its new worst-phase voltage.
    before_fills = {name: bus["fill"] for name, bus in drawn_buses(tab).items()}
    before = sequence(tab)
    tab.get_by_label("Neighbourhood", exact=True).select_option(index=0)
    tab.get_by_label("Factor").fill("3")
    tab.get_by_role("button", name="Scale loads").click()
    wait_for_change(tab, before)
    state = get(ieee8500, "/state")
    worst: dict[str, float] = {}  # each bus's node voltage furthest from 1.0 pu, as helpers.worst_phase, in one pass
    for row in state["results"]["bus_details"]:
        if abs(row["VMag_pu"] - 1) > abs(worst.get(row["Bus"], 1.0) - 1):
            worst[row["Bus"]] = row["VMag_pu"]
        worst.setdefault(row["Bus"], row["VMag_pu"])
    assert worst[state["results"]["bus_details"][0]["Bus"]] == worst_phase(state, state["results"]["bus_details"][0]["Bus"])
    mismatches = tab.evaluate("""worst => window.dashboard.scene.buses
        .filter(b => worst[b.name] !== undefined && b.fill !== window.voltageColour(worst[b.name])).map(b => b.name)""", worst)
    assert mismatches == []
    after_fills = {name: bus["fill"] for name, bus in drawn_buses(tab).items()}
    assert sum(after_fills[name] != fill for name, fill in before_fills.items()) > 10

    # Zoomed in on a bus far down the feeder: hovering it shows its voltages, clicking selects it.
    buses = get(ieee8500, "/buses")["buses"]
    far = max((b for b in buses if b["kv_base_ln"] > 1), key=lambda b: b["distance_km"])["name"]
    zoom_at(tab, *client_point(tab, [drawn_buses(tab)[far]["x"], drawn_buses(tab)[far]["y"]]), 10)
    hover_bus(tab, far)
    tip = tab.locator("#tooltip")
    assert tip.is_visible() and tip.inner_text().startswith(f"Bus {far}")
    assert f"{worst[far]:.4f}" in tip.inner_text()
    click_bus(tab, far)
    assert tab.get_by_label("Bus", exact=True).input_value() == far
    assert drawn_buses(tab)[far]["selected"]
    assert far in tab.locator("#bus-details").inner_text()
