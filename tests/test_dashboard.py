"""The dashboard at GET /, driven in a real headless Chromium against a real `python api.py`.

Needs Playwright for Python (`pip install playwright`) and the system Chromium (`apt-get install chromium`);
Playwright's own browser download is never used. Without them these tests skip, loudly, unless
REQUIRE_BROWSER=1, when they fail. Screenshots go to test-artifacts/dashboard/ (gitignored).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from conftest import REPO, start_server, stop_server

CHROMIUM = Path(os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
STATIC = REPO / "static"
TIMEOUT_MS = 30_000
SUMMARY_IDS = {
    "summary-source-kw": "total_circuit_power_kW",
    "summary-load-kw": "total_load_kW",
    "summary-gen-kw": "total_generation_kW",
    "summary-losses-kw": "total_losses_kW",
    "summary-voltage-violations": "voltage_violations",
    "summary-thermal-violations": "thermal_violations",
}


def browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"Playwright for Python is not installed ({error}): pip install playwright"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
    return None


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = browser_problem()
    if problem:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but the dashboard cannot be tested: {problem}")
        warnings.warn(f"DASHBOARD BROWSER TESTS SKIPPED: {problem}")
        pytest.skip(f"DASHBOARD BROWSER TESTS SKIPPED: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server for this module; each test starts from the base case via POST /reset."""
    # No access log: start_server pipes stderr and nobody reads it, so a long log could fill the pipe.
    process, url = start_server(tmp_path_factory.mktemp("dashboard-server"), "--no-access-log",
                                env={"IEEE123_API_KEY": ""})
    try:
        yield url
    finally:
        stop_server(process)


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    delete_other_scenarios(server)
    post(server, "/reset", {})
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.problems = []
    tab.foreign_requests = []
    tab.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    tab.on("console", lambda message: message.type == "error" and tab.problems.append(message.text))
    tab.on("request", lambda request: request.url.startswith((server, "data:"))
           or tab.foreign_requests.append(request.url))
    tab.goto(f"{server}/")
    tab.wait_for_selector("body[data-ready='true']")
    try:
        yield tab
    finally:
        context.close()


# ---------------------------------------------------------------------------- helpers
def get(server: str, path: str) -> dict:
    response = requests.get(f"{server}{path}", timeout=30)
    response.raise_for_status()
    return response.json()


def post(server: str, path: str, body: dict) -> requests.Response:
    response = requests.post(f"{server}{path}", json=body, timeout=60)
    if path == "/reset":
        response.raise_for_status()
    return response


def delete_other_scenarios(server: str) -> None:
    """Every test starts with the default scenario alone (the server holds at most 64)."""
    for scenario in get(server, "/scenarios")["scenarios"]:
        if scenario["id"] != "default":
            requests.delete(f"{server}/scenarios/{scenario['id']}", timeout=30).raise_for_status()


def worst_phase(state: dict, bus: str) -> float:
    """The bus's node voltage furthest from 1.0 pu."""
    values = [row["VMag_pu"] for row in state["results"]["bus_details"] if row["Bus"] == bus]
    assert values, f"bus {bus} not in bus_details"
    return max(values, key=lambda v: abs(v - 1.0))


def summary_values(tab: Any) -> dict[str, float]:
    return tab.evaluate("ids => Object.fromEntries(ids.map(id => [id, Number(document.getElementById(id).dataset.value)]))",
                        list(SUMMARY_IDS) + ["summary-vmin", "summary-vmax"])


def assert_summary_matches(tab: Any, state: dict) -> None:
    shown = summary_values(tab)
    summary, profile = state["results"]["power_summary"], state["results"]["voltage_profile"]
    expected = {**{k: summary[v] for k, v in SUMMARY_IDS.items()},
                "summary-vmin": profile["min_voltage_pu"], "summary-vmax": profile["max_voltage_pu"]}
    assert shown == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert tab.locator("#summary-gen-kw").inner_text() == f"{summary['total_generation_kW']:,.1f} kW"
    assert tab.locator("#summary-vmin").inner_text() == f"{profile['min_voltage_pu']:.4f} pu"


def wait_for_change(tab: Any, sequence_before: str) -> None:
    """Until the page shows a newer state and has finished the follow-up reads."""
    tab.wait_for_function(
        "before => document.body.dataset.sequence !== before && document.body.dataset.busy === 'false'",
        arg=sequence_before)


def wait_until_idle(tab: Any) -> None:
    tab.wait_for_function("() => document.body.dataset.busy === 'false'")


def sequence(tab: Any) -> str:
    return tab.evaluate("() => document.body.dataset.sequence")


def fill_generator_form(tab: Any, bus: str, phases: str, kw: str, phase: str = "") -> None:
    tab.get_by_label("Bus", exact=True).fill(bus)
    tab.get_by_label("Phases", exact=True).select_option(phases)
    if phases == "1":
        tab.get_by_label("Phase", exact=True).select_option(phase)
    tab.get_by_label("kW", exact=True).fill(kw)


def shown_scenario(tab: Any) -> str:
    return tab.evaluate("() => document.body.dataset.scenario")


def create_scenario_in_page(tab: Any, name: str, fork: bool = False) -> str:
    """Name a scenario and press "New from base" (or "Fork this one"); the page switches to it. Its id."""
    before = shown_scenario(tab)
    tab.get_by_label("New name").fill(name)
    tab.get_by_role("button", name="Fork this one" if fork else "New from base").click()
    tab.wait_for_function("before => document.body.dataset.scenario !== before && document.body.dataset.busy === 'false'",
                          arg=before)
    return shown_scenario(tab)


def add_generator_in_page(tab: Any, bus: str, phases: str, kw: str, phase: str = "") -> None:
    before = sequence(tab)
    fill_generator_form(tab, bus, phases, kw, phase)
    tab.get_by_role("button", name="Add / update generator").click()
    wait_for_change(tab, before)


def journal(tab: Any) -> list[dict]:
    """The journal as listed, newest first."""
    return tab.eval_on_selector_all("#journal li", """els => els.map(e => ({sequence: Number(e.dataset.sequence),
        type: e.dataset.type, undone: e.classList.contains('undone'), text: e.querySelector('.what').textContent}))""")


def screenshot(tab: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    tab.screenshot(path=str(path), full_page=True)
    return path


# ---------------------------------------------------------------------------- tests
def test_page_is_served_at_root_from_our_own_files(page: Any, server: str) -> None:
    response = requests.get(f"{server}/", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    for name in ("app.js", "style.css"):
        assert requests.get(f"{server}/static/{name}", timeout=10).status_code == 200
    assert page.title() == "IEEE 123-bus feeder dashboard"
    assert page.foreign_requests == [], "the page must work offline: everything from our server"
    assert page.problems == []
    # No CDN or other outside reference anywhere in the static files (the SVG namespace is not a request).
    for file in STATIC.iterdir():
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", file.read_text(encoding="utf-8")))
        assert urls <= {"http://www.w3.org/2000/svg"}, (file.name, urls)


def test_map_draws_every_bus_and_line_coloured_from_the_api(page: Any, server: str) -> None:
    buses = get(server, "/buses")["buses"]
    state = get(server, "/state")
    line_flows = state["results"]["line_flows"]

    bus_names = page.eval_on_selector_all("#map .bus", "els => els.map(e => e.dataset.bus)")
    assert len(bus_names) == len(buses) == 132
    assert set(bus_names) == {b["name"] for b in buses}
    line_names = page.eval_on_selector_all("#map .line", "els => els.map(e => e.dataset.line)")
    assert len(line_names) == len(line_flows)
    assert set(line_names) == {row["Line"] for row in line_flows}

    # Switches are marked; the normally open ties (Bus2 "..._open": Sw7, Sw8) are dashed, nothing else is.
    switches = set(page.eval_on_selector_all("#map .line.switch", "els => els.map(e => e.dataset.line)"))
    assert switches == {row["Line"] for row in line_flows if row["Switch"]}
    dashes = dict(page.eval_on_selector_all(
        "#map .line", "els => els.map(e => [e.dataset.line, getComputedStyle(e.querySelector('.wire')).strokeDasharray])"))
    open_ties = {row["Line"] for row in line_flows if row["Bus2"].endswith("_open")}
    assert open_ties == {"sw7", "sw8"}
    assert {name for name, dash in dashes.items() if dash != "none"} == open_ties

    # Every bus is filled with voltageColour(its worst-phase voltage), as the API reports it.
    worst = {b["name"]: worst_phase(state, b["name"]) for b in buses}
    mismatches = page.evaluate("""worst => [...document.querySelectorAll('#map .bus')]
        .map(e => [e.dataset.bus, getComputedStyle(e).fill, window.voltageColour(worst[e.dataset.bus])])
        .filter(([, shown, expected]) => shown !== expected)""", worst)
    assert mismatches == []

    # Overloaded lines are drawn in their own colour, and wider than lightly loaded ones.
    overloaded = set(page.eval_on_selector_all("#map .line.overloaded", "els => els.map(e => e.dataset.line)"))
    assert overloaded == {row["Line"] for row in line_flows if row["Loading_pct"] > 100}
    width = page.evaluate("name => Number(document.querySelector(`#map .line[data-line='${name}'] .wire`)"
                          ".getAttribute('stroke-width'))", "l3")
    assert width > page.evaluate("() => Number(document.querySelector(\"#map .line[data-line='l1'] .wire\")"
                                 ".getAttribute('stroke-width'))")

    # Legends for every scale, with the ANSI limits on the voltage one.
    legend = page.locator("#legend-voltage").text_content()
    assert "0.95" in legend and "1.05" in legend
    assert "loading" in page.locator("#legend-lines").text_content()
    assert "Phase A" in page.locator("#profile").text_content()

    # Neighbourhoods and generators can be hidden.
    assert page.locator("#map .neighbourhood").count() == len(get(server, "/neighbourhoods")["neighbourhoods"])
    assert page.locator("#map .layer-neighbourhoods").is_visible()
    page.get_by_role("checkbox", name="Neighbourhoods").uncheck()
    assert page.locator("#map .layer-neighbourhoods").is_hidden()

    # Hovering a bus or a line shows its numbers.
    page.locator("#map .bus[data-bus='67']").hover()
    assert page.locator("#tooltip").is_visible()
    assert "Bus 67" in page.locator("#tooltip").inner_text()
    assert f"{worst['67']:.4f}" in page.locator("#tooltip").inner_text()


def reachable(start: str, edges: list[tuple[str, str]]) -> set[str]:
    """The buses connected to `start` through `edges`."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set()).add(a)
    seen, todo = {start}, [start]
    while todo:
        for other in graph.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def transformer_loadings(tab: Any) -> dict[str, float]:
    return {key: float(value) for key, value in tab.eval_on_selector_all(
        "#map .transformer", "els => els.map(e => [e.dataset.transformer, e.dataset.loading])")}


def test_map_draws_one_transformer_per_bus_pair_and_they_connect_every_bus(page: Any, server: str) -> None:
    transformers = get(server, "/transformers")["transformers"]
    pairs: dict[tuple[str, str], list[dict]] = {}
    for row in transformers:
        pairs.setdefault((row["bus1"], row["bus2"]), []).append(row)
    assert len(transformers) == 8 and len(pairs) == 5  # reg3a/reg3c and reg4a/b/c share their buses

    shown = page.eval_on_selector_all("#map .transformer", """els => els.map(e => ({
        key: e.dataset.transformer, bus1: e.dataset.bus1, bus2: e.dataset.bus2, names: e.dataset.names.split(','),
        coils: e.querySelectorAll('.xf-coil').length, arrow: e.querySelectorAll('.xf-arrowhead').length}))""")
    assert len(shown) == len(pairs)
    assert {s["key"] for s in shown} == {f"{b1}-{b2}" for b1, b2 in pairs}
    assert {(s["bus1"], s["bus2"]): s["names"] for s in shown} == {
        pair: [row["name"] for row in rows] for pair, rows in pairs.items()}
    # The symbol: two windings each, and the tap changer's arrow on the regulators only (XFM1 has no taps).
    for s in shown:
        is_regulator = any(row["tap"] is not None for row in pairs[(s["bus1"], s["bus2"])])
        assert (s["coils"], s["arrow"]) == (2, 1 if is_regulator else 0), s
    # Drawn from one bus to the other, and the buses kept apart so the symbol fits between them.
    ends = page.evaluate("""() => [...document.querySelectorAll('#map .transformer')].map(e => {
        const wire = e.querySelector('.wire'), at = (name) => document.querySelector(`#map .bus[data-bus='${name}']`);
        const [b1, b2] = [at(e.dataset.bus1), at(e.dataset.bus2)];
        return [['x1', 'y1', 'x2', 'y2'].map(k => Number(wire.getAttribute(k))),
                [b1.cx.baseVal.value, b1.cy.baseVal.value, b2.cx.baseVal.value, b2.cy.baseVal.value]];
    })""")
    for wire, centres in ends:
        assert wire == pytest.approx(centres, abs=1e-3)
        assert ((centres[2] - centres[0]) ** 2 + (centres[3] - centres[1]) ** 2) ** 0.5 > 25

    # With the transformers, every bus on the map is connected to the substation (150). 610 has no line at
    # all: XFM1's element is its only connection.
    buses = {b["name"] for b in get(server, "/buses")["buses"]}
    line_ends = {row["Line"]: (row["Bus1"], row["Bus2"]) for row in get(server, "/lines")["lines"]}
    drawn_lines = [line_ends[name]
                   for name in page.eval_on_selector_all("#map .line", "els => els.map(e => e.dataset.line)")]
    drawn_transformers = [(s["bus1"], s["bus2"]) for s in shown]
    assert reachable("150", drawn_lines + drawn_transformers) == buses
    assert reachable("610", drawn_lines) == {"610"}
    assert reachable("150", drawn_lines) == {"150"}, "the substation regulator is 150's only connection"
    assert page.locator("#map .transformer[data-transformer='61s-610']").count() == 1

    # Hovering one shows its units' rating, loading and taps, as the API reports them.
    assert transformer_loadings(page) == {f"{b1}-{b2}": max(row["loading_pct"] for row in rows)
                                          for (b1, b2), rows in pairs.items()}
    page.locator("#map .transformer[data-transformer='160-160r']").hover()
    tip = page.locator("#tooltip").inner_text()
    assert "Regulators reg4a, reg4b, reg4c" in tip and "160 → 160r" in tip
    for row in pairs[("160", "160r")]:
        tap = f"+{row['tap']}" if row["tap"] > 0 else str(row["tap"])
        assert f"{row['name']}: {row['kva']:,.0f} kVA · loading {row['loading_pct']:,.1f} % · tap {tap}" in tip
    page.locator("#map .transformer[data-transformer='61s-610']").hover()
    tip = page.locator("#tooltip").inner_text()
    assert "Transformer xfm1" in tip and "150 kVA" in tip and "tap" not in tip
    legend = page.locator("#legend-lines").text_content()
    assert "transformer" in legend and "voltage regulator" in legend

    # Their numbers follow a change: doubling neighbourhood 5 loads the substation regulator more.
    before_loading, before = transformer_loadings(page), sequence(page)
    page.get_by_label("Neighbourhood", exact=True).select_option("5")
    page.get_by_label("Factor").fill("2")
    page.get_by_role("button", name="Scale loads").click()
    wait_for_change(page, before)
    after = {}
    for row in get(server, "/transformers")["transformers"]:
        key = f"{row['bus1']}-{row['bus2']}"
        after[key] = max(after.get(key, 0.0), row["loading_pct"])
    assert transformer_loadings(page) == after
    assert after["150-150r"] > before_loading["150-150r"] + 1


def test_open_tie_stubs_without_coordinates_sit_a_short_step_towards_their_bus(page: Any, server: str) -> None:
    buses = get(server, "/buses")["buses"]
    assert {b["name"] for b in buses if b["x"] is None and b["y"] is None} == {"94_open", "300_open"}
    lines = get(server, "/lines")["lines"]

    def centre(name: str) -> list[float]:
        return page.evaluate("name => { const c = document.querySelector(`#map .bus[data-bus='${name}']`);"
                             " return [c.cx.baseVal.value, c.cy.baseVal.value]; }", name)

    for stub, named in (("94_open", "94"), ("300_open", "300")):
        (near,) = [row["Bus1"] for row in lines if row["Bus2"] == stub]
        (sx, sy), (nx, ny), (tx, ty) = centre(stub), centre(near), centre(named)
        length2 = (tx - nx) ** 2 + (ty - ny) ** 2
        along = ((sx - nx) * (tx - nx) + (sy - ny) * (ty - ny)) / length2
        across = ((sx - nx) * (ty - ny) - (sy - ny) * (tx - nx)) / length2 ** 0.5
        assert 0 < along <= 0.5 and abs(across) < 0.5, (stub, along, across)
        assert 0 < ((sx - nx) ** 2 + (sy - ny) ** 2) ** 0.5 <= 50, stub


def test_neighbourhood_labels_cover_no_bus_name_and_stay_on_the_map(page: Any, server: str) -> None:
    """Each N<k> label sits clear of every bus, bus name and other N label, inside the map, near its own buses."""
    placed = page.evaluate("""() => {
        const box = (e) => { const b = e.getBBox(); return [b.x, b.y, b.width, b.height]; };
        const map = document.querySelector('#map');
        return {
            view: map.getAttribute('viewBox').split(' ').map(Number),
            nb: [...map.querySelectorAll('.nb-label')].map((e) => [e.dataset.neighbourhood, box(e)]),
            names: [...map.querySelectorAll('.bus-label')].map((e) => [e.dataset.label, box(e)]),
            buses: [...map.querySelectorAll('.bus')].map((c) => [c.dataset.bus, c.cx.baseVal.value, c.cy.baseVal.value]),
        };
    }""")
    neighbourhoods = {str(n["id"]): set(n["buses"]) for n in get(server, "/neighbourhoods")["neighbourhoods"]}
    assert len(placed["nb"]) == 14

    def overlap(a: list[float], b: list[float]) -> bool:
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    _, _, width, height = placed["view"]
    for k, (nb, box) in enumerate(placed["nb"]):
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= width and box[1] + box[3] <= height, nb
        assert not [name for name, other in placed["names"] if overlap(box, other)], nb
        assert not [bus for bus, x, y in placed["buses"] if overlap(box, [x - 5.5, y - 5.5, 11, 11])], nb
        assert not [other for other, b in placed["nb"][k + 1:] if overlap(box, b)], nb
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        distance = min(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 for bus, x, y in placed["buses"]
                       if bus in neighbourhoods[nb])
        assert distance < 45, (nb, distance)


def test_voltage_profile_has_one_segment_per_line_and_phase_and_the_limits(page: Any, server: str) -> None:
    state = get(server, "/state")["results"]
    nodes: dict[str, set[int]] = {}
    for row in state["bus_details"]:
        nodes.setdefault(row["Bus"], set()).add(row["Node"])
    expected = sum(len(nodes[r["Bus1"]] & nodes[r["Bus2"]] & {1, 2, 3}) for r in state["line_flows"])
    segments = page.eval_on_selector_all("#profile .seg", "els => els.map(e => Number(e.dataset.phase))")
    assert len(segments) == expected
    assert set(segments) == {1, 2, 3}
    assert page.locator("#profile .axes .limit").count() == 2
    assert "0.95 pu limit" in page.locator("#profile").text_content()
    assert "1.05 pu limit" in page.locator("#profile").text_content()


def test_summary_shows_the_state(page: Any, server: str) -> None:
    assert_summary_matches(page, get(server, "/state"))


def test_adding_a_generator_through_the_form_updates_summary_and_colour(page: Any, server: str) -> None:
    screenshot(page, "01-base-case.png")
    bus = page.locator("#map .bus[data-bus='67']")
    bus.click()
    assert page.get_by_label("Bus", exact=True).input_value() == "67"
    assert "selected" in bus.get_attribute("class")
    colour_before = bus.evaluate("e => getComputedStyle(e).fill")

    before = sequence(page)
    page.get_by_label("Phases", exact=True).select_option("3")
    assert page.get_by_label("Phase", exact=True).is_disabled()
    page.get_by_label("kW", exact=True).fill("1500")
    page.get_by_role("button", name="Add / update generator").click()
    wait_for_change(page, before)

    state = get(server, "/state")
    assert state["results"]["power_summary"]["total_generation_kW"] == pytest.approx(1500, rel=0.01)
    assert_summary_matches(page, state)
    expected_colour = page.evaluate("v => window.voltageColour(v)", worst_phase(state, "67"))
    colour_after = bus.evaluate("e => getComputedStyle(e).fill")
    assert colour_after == expected_colour
    assert colour_after != colour_before, "1.5 MW at bus 67 should move its voltage visibly"
    assert page.locator("#gen-error").inner_text() == ""
    assert "gen_67_123" in page.locator("#gen-ok").inner_text()
    assert page.locator("#gen-list tr[data-generator='gen_67_123']").count() == 1
    assert page.locator("#map .gen-marker[data-bus='67']").count() == 1
    assert page.locator("#selected-worst-vpu").inner_text() == f"{worst_phase(state, '67'):.4f} pu"
    screenshot(page, "02-generator-1500kw-at-67.png")


@pytest.mark.parametrize("bus, phases, kw, status", [
    ("16", "3", "100", 422),   # bus 16 has only phase C
    ("16", "1", "-5", 422),    # kW out of range
    ("nowhere", "1", "10", 404),
])
def test_an_api_error_appears_next_to_the_generator_form(page: Any, server: str, bus: str, phases: str,
                                                         kw: str, status: int) -> None:
    body = {"bus_name": bus, "phases": int(phases), "kw": float(kw)}
    api_answer = post(server, "/add_generator", body)
    assert api_answer.status_code == status
    message = api_answer.json()["message"]

    before, shown_before = sequence(page), summary_values(page)
    fill_generator_form(page, bus, phases, kw)
    page.get_by_role("button", name="Add / update generator").click()
    page.wait_for_function("() => document.getElementById('gen-error').textContent !== ''")
    wait_until_idle(page)

    error = page.locator("#gen-form #gen-error")
    assert error.inner_text() == message
    assert error.is_visible()
    form_box, error_box = page.locator("#gen-form").bounding_box(), error.bounding_box()
    assert form_box["y"] <= error_box["y"] <= form_box["y"] + form_box["height"]
    field_input = {"kw": "#gen-kw", "phases": "#gen-phases", "bus_name": "#gen-bus"}[api_answer.json()["field"]]
    assert page.locator(field_input).get_attribute("aria-invalid") == "true"
    assert sequence(page) == before and summary_values(page) == shown_before
    if kw == "-5":
        screenshot(page, "03-error-negative-kw.png")


def test_an_api_error_appears_next_to_the_neighbourhood_form(page: Any, server: str) -> None:
    message = post(server, "/modify_load_neighbourhood", {"neighbourhood": 5, "factor": -1}).json()["message"]
    page.get_by_label("Neighbourhood", exact=True).select_option("5")
    page.get_by_label("Factor").fill("-1")
    page.get_by_role("button", name="Scale loads").click()
    page.wait_for_function("() => document.getElementById('nb-error').textContent !== ''")
    assert page.locator("#nb-form #nb-error").inner_text() == message
    assert page.locator("#gen-error").inner_text() == ""


def test_scale_delete_and_reset_restore_the_start(page: Any, server: str) -> None:
    start_state = get(server, "/state")
    start = summary_values(page)

    before = sequence(page)
    page.get_by_label("Neighbourhood", exact=True).select_option("5")
    page.get_by_label("Factor").fill("2")
    page.get_by_role("button", name="Scale loads").click()
    wait_for_change(page, before)
    state = get(server, "/state")
    assert state["results"]["power_summary"]["total_load_kW"] > start["summary-load-kw"] + 50
    assert_summary_matches(page, state)
    assert "Neighbourhood 5" in page.locator("#nb-ok").inner_text()

    before = sequence(page)
    fill_generator_form(page, "16", "1", "200")
    page.get_by_role("button", name="Add / update generator").click()
    wait_for_change(page, before)
    assert page.locator("#gen-list tr[data-generator='gen_16_3']").count() == 1

    before = sequence(page)
    page.get_by_role("button", name="Delete generator gen_16_3").click()
    wait_for_change(page, before)
    assert page.locator("#gen-list tr").count() == 0
    assert page.locator("#gen-delete-error").inner_text() == ""
    assert_summary_matches(page, get(server, "/state"))
    screenshot(page, "04-neighbourhood-5-doubled.png")

    before = sequence(page)
    page.get_by_role("button", name="Reset to the base case").click()
    wait_for_change(page, before)
    assert summary_values(page) == pytest.approx(start, rel=1e-9, abs=1e-9)
    assert_summary_matches(page, get(server, "/state"))
    assert get(server, "/state")["results"]["power_summary"] == pytest.approx(
        start_state["results"]["power_summary"], rel=1e-9, abs=1e-9)


def test_the_controls_work_from_the_keyboard(page: Any, server: str) -> None:
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select')]
        .filter(e => e.labels.length === 0).map(e => e.id)""")
    assert unlabelled == []
    before = sequence(page)
    page.focus("#gen-bus")
    page.keyboard.type("48")
    page.keyboard.press("Tab")  # leaving the field selects the bus
    assert "selected" in page.locator("#map .bus[data-bus='48']").get_attribute("class")
    page.focus("#gen-kw")
    page.keyboard.press("Control+A")
    page.keyboard.type("300")
    page.keyboard.press("Enter")
    wait_for_change(page, before)
    assert page.locator("#gen-list tr").count() == 1
    assert_summary_matches(page, get(server, "/state"))


def test_changes_made_by_other_clients_show_up(page: Any, server: str) -> None:
    assert post(server, "/add_generator", {"bus_name": "300", "phases": 3, "kw": 400}).status_code == 200
    state = get(server, "/state")
    page.wait_for_function("kw => Number(document.getElementById('summary-gen-kw').dataset.value) === kw",
                           arg=state["results"]["power_summary"]["total_generation_kW"], timeout=15_000)
    wait_until_idle(page)
    assert_summary_matches(page, state)
    assert page.locator("#map .gen-marker[data-bus='300']").count() == 1


def test_voltage_colour_is_a_diverging_scale_about_one_pu(page: Any) -> None:
    def rgb(v: float) -> tuple[int, ...]:
        text = page.evaluate("v => window.voltageColour(v)", v)
        return tuple(int(x) for x in re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", text).groups())

    neutral = rgb(1.0)
    assert min(neutral) > 230, "1.0 pu is the pale middle of the scale"
    low, high = rgb(0.93), rgb(1.07)
    assert low[2] > low[0] and high[0] > high[2], "below 1 pu is blue, above is red"
    lightness = [sum(rgb(v)) for v in (1.0, 0.975, 0.95, 0.92, 0.90)]
    assert lightness == sorted(lightness, reverse=True)
    lightness = [sum(rgb(v)) for v in (1.0, 1.025, 1.05, 1.08, 1.10)]
    assert lightness == sorted(lightness, reverse=True)
    assert rgb(0.5) == rgb(0.9) and rgb(1.5) == rgb(1.1), "clamped outside 0.90-1.10 pu"


def test_the_api_key_field_is_sent_with_changes(browser: Any, tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--no-access-log", "--api-key", "s3cret", env={"IEEE123_API_KEY": ""})
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(f"{url}/")
        tab.wait_for_selector("body[data-ready='true']")
        message = requests.post(f"{url}/reset", json={}, timeout=30).json()["message"]
        tab.get_by_role("button", name="Reset to the base case").click()
        tab.wait_for_function("() => document.getElementById('reset-error').textContent !== ''")
        assert tab.locator("#reset-error").inner_text() == message

        before = sequence(tab)
        tab.locator("details.apikey summary").click()
        tab.get_by_label("API key", exact=True).fill("s3cret")
        tab.get_by_role("button", name="Reset to the base case").click()
        wait_for_change(tab, before)
        assert tab.locator("#reset-error").inner_text() == ""
    finally:
        context.close()
        stop_server(process)


# ---------------------------------------------------------------------------- scenarios
def test_a_scenario_created_from_the_picker_is_listed_selected_and_keeps_its_changes(page: Any, server: str) -> None:
    default_state = requests.get(f"{server}/state", timeout=30).content
    sid = create_scenario_in_page(page, "pv at 67")

    listed = get(server, "/scenarios")["scenarios"]
    mine = next(s for s in listed if s["id"] == sid)
    assert (mine["name"], mine["forked_from"], mine["changes"]) == ("pv at 67", None, 0)
    options = page.eval_on_selector_all("#scenario-select option", "els => els.map(e => [e.value, e.textContent])")
    assert [value for value, _ in options] == [s["id"] for s in listed]
    assert page.locator("#scenario-select").input_value() == sid
    assert dict(options)[sid].startswith("pv at 67")
    assert page.locator("#scenario-ok").inner_text() == "Created “pv at 67” from the base case."
    assert journal(page) == []
    assert_summary_matches(page, get(server, f"/scenarios/{sid}/state"))

    # A change made on the page goes to this scenario only: default answers byte for byte as before.
    changes_sent: list[str] = []
    page.on("request", lambda r: r.method != "GET" and changes_sent.append(r.url.removeprefix(server)))
    add_generator_in_page(page, "67", "3", "1500")
    state = get(server, f"/scenarios/{sid}/state")
    assert state["results"]["power_summary"]["total_generation_kW"] == pytest.approx(1500, rel=0.01)
    assert_summary_matches(page, state)
    assert changes_sent == [f"/scenarios/{sid}/add_generator"]
    assert requests.get(f"{server}/state", timeout=30).content == default_state
    assert get(server, "/generators")["generators"] == []
    assert "1 change" in page.locator("#scenario-select option:checked").inner_text()

    # Fork it: the copy has the same state and says where it came from.
    fork = create_scenario_in_page(page, "pv fork", fork=True)
    described = next(s for s in get(server, "/scenarios")["scenarios"] if s["id"] == fork)
    assert (described["name"], described["forked_from"]) == ("pv fork", sid)
    assert "fork of “pv at 67”" in page.locator("#scenario-info").inner_text()
    assert_summary_matches(page, get(server, f"/scenarios/{fork}/state"))
    assert summary_values(page) == pytest.approx(summary_values_of(state), rel=1e-9, abs=1e-9)
    assert [entry["type"] for entry in journal(page)] == ["add_generator"]

    # Delete the fork: back on default, the fork gone from the API and the picker; default cannot be deleted.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete", exact=True).click()
    page.wait_for_function("() => document.body.dataset.scenario === 'default' && document.body.dataset.busy === 'false'")
    assert fork not in [s["id"] for s in get(server, "/scenarios")["scenarios"]]
    assert fork not in page.eval_on_selector_all("#scenario-select option", "els => els.map(e => e.value)")
    assert page.get_by_role("button", name="Delete", exact=True).is_disabled()
    assert_summary_matches(page, get(server, "/state"))

    # And back to the first one through the picker.
    page.locator("#scenario-select").select_option(sid)
    page.wait_for_function("id => document.body.dataset.scenario === id && document.body.dataset.busy === 'false'", arg=sid)
    assert_summary_matches(page, get(server, f"/scenarios/{sid}/state"))
    assert page.locator("#gen-list tr[data-generator='gen_67_123']").count() == 1
    assert page.evaluate("() => location.hash") == f"#scenario={sid}"
    assert page.problems == []


def summary_values_of(state: dict) -> dict[str, float]:
    """What summary_values() should read for this state."""
    summary, profile = state["results"]["power_summary"], state["results"]["voltage_profile"]
    return {**{k: summary[v] for k, v in SUMMARY_IDS.items()},
            "summary-vmin": profile["min_voltage_pu"], "summary-vmax": profile["max_voltage_pu"]}


def test_the_journal_lists_each_change_and_undo_takes_them_back(page: Any, server: str) -> None:
    default_sequence = get(server, "/state")["sequence"]
    sid = create_scenario_in_page(page, "undo me")
    start = summary_values(page)
    add_generator_in_page(page, "16", "1", "200")
    after_generator = summary_values(page)
    before = sequence(page)
    page.get_by_label("Neighbourhood", exact=True).select_option("5")
    page.get_by_label("Factor").fill("2")
    page.get_by_role("button", name="Scale loads").click()
    wait_for_change(page, before)

    listed = journal(page)
    api_changes = get(server, f"/scenarios/{sid}/changes")["changes"]
    assert [e["sequence"] for e in listed] == [c["sequence"] for c in reversed(api_changes)] == [2, 1]
    assert [e["type"] for e in listed] == ["modify_load_neighbourhood", "add_generator"]
    assert listed[0]["text"] == "Neighbourhood 5 loads ×2 (now ×2.000 of base, 4 loads)."
    assert listed[1]["text"] == "Added gen_16_3: 200.0 kW at bus 16, phase C."

    # Undo: the summary goes back to the numbers before the scaling, as the API now reports them.
    before = sequence(page)
    page.get_by_role("button", name="Undo last change").click()
    wait_for_change(page, before)
    assert_summary_matches(page, get(server, f"/scenarios/{sid}/state"))
    assert summary_values(page) == pytest.approx(after_generator, rel=1e-9, abs=1e-9)
    listed = journal(page)
    assert [(e["sequence"], e["type"], e["undone"]) for e in listed] == [
        (3, "undo", False), (2, "modify_load_neighbourhood", True), (1, "add_generator", False)]
    assert listed[0]["text"] == "Undid change #2."
    assert page.locator("#gen-list tr").count() == 1

    before = sequence(page)
    page.get_by_role("button", name="Undo last change").click()
    wait_for_change(page, before)
    assert_summary_matches(page, get(server, f"/scenarios/{sid}/state"))
    assert summary_values(page) == pytest.approx(start, rel=1e-9, abs=1e-9)
    assert page.locator("#gen-list tr").count() == 0

    # Nothing left to undo: the API's 409 message next to the button, and nothing changes.
    answer = requests.post(f"{server}/scenarios/{sid}/undo", json={}, timeout=30)
    assert answer.status_code == 409
    before, shown = sequence(page), summary_values(page)
    page.get_by_role("button", name="Undo last change").click()
    page.wait_for_function("() => document.getElementById('undo-error').textContent !== ''")
    wait_until_idle(page)
    assert page.locator("#undo-error").inner_text() == answer.json()["message"]
    assert page.locator("#undo-error").is_visible()
    assert sequence(page) == before and summary_values(page) == shown
    assert get(server, "/state")["sequence"] == default_sequence, "default untouched throughout"


def test_preview_shows_the_dry_run_answer_changes_nothing_and_apply_applies_it(page: Any, server: str) -> None:
    sid = create_scenario_in_page(page, "preview")
    state_before = requests.get(f"{server}/scenarios/{sid}/state", timeout=30).content
    before, shown_before = sequence(page), summary_values(page)
    body = {"bus_name": "67", "phases": 3, "kw": 1500.0}

    page.get_by_label("Preview first").check()
    fill_generator_form(page, "67", "3", "1500")
    page.get_by_role("button", name="Add / update generator").click()
    page.wait_for_selector("#preview-banner:not([hidden])")
    wait_until_idle(page)
    dry = requests.post(f"{server}/scenarios/{sid}/add_generator?dry_run=true", json=body, timeout=60).json()
    assert dry["action"]["dry_run"] is True

    # The previewed numbers are the dry run's, clearly marked; the scenario has not changed at all.
    assert_summary_matches(page, dry)
    banner = page.locator("#preview-banner")
    assert banner.is_visible()
    assert banner.inner_text().startswith("Preview — not applied:")
    assert page.locator("#preview-text").inner_text() == "Add gen_67_123: 1,500.0 kW at bus 67, phases ABC."
    assert page.locator("#summary-panel .badge").is_visible() and page.locator(".map-panel .badge").is_visible()
    assert page.evaluate("() => document.body.dataset.preview") == "true"
    assert page.locator("#map .bus[data-bus='67']").evaluate("e => getComputedStyle(e).fill") == page.evaluate(
        "v => window.voltageColour(v)", worst_phase(dry, "67"))
    assert page.locator("#map .gen-marker.preview[data-bus='67']").count() == 1
    assert page.locator("#gen-list tr").count() == 0
    assert sequence(page) == before
    assert requests.get(f"{server}/scenarios/{sid}/state", timeout=30).content == state_before
    assert get(server, f"/scenarios/{sid}/changes")["changes"] == []

    # Discard: back to the scenario's own numbers.
    page.get_by_role("button", name="Discard").click()
    assert banner.is_hidden()
    assert summary_values(page) == shown_before
    assert page.locator("#map .gen-marker").count() == 0

    # Preview again and apply: the applied state is what the preview showed.
    page.get_by_role("button", name="Add / update generator").click()
    page.wait_for_selector("#preview-banner:not([hidden])")
    wait_until_idle(page)
    previewed = summary_values(page)
    page.get_by_role("button", name="Apply").click()
    wait_for_change(page, before)
    state = get(server, f"/scenarios/{sid}/state")
    assert state["sequence"] == dry["action"]["sequence"] == 1
    assert_summary_matches(page, state)
    assert summary_values(page) == pytest.approx(previewed, rel=1e-9, abs=1e-9)
    assert banner.is_hidden() and page.evaluate("() => document.body.dataset.preview") == "false"
    assert [e["type"] for e in journal(page)] == ["add_generator"]
    assert page.locator("#gen-list tr[data-generator='gen_67_123']").count() == 1
    assert "gen_67_123" in page.locator("#gen-ok").inner_text()

    # A preview of a deletion; someone else changes the scenario before Apply: the API's 412 in the banner.
    state_before = requests.get(f"{server}/scenarios/{sid}/state", timeout=30).content
    page.get_by_role("button", name="Delete generator gen_67_123").click()
    page.wait_for_selector("#preview-banner:not([hidden])")
    wait_until_idle(page)
    assert page.locator("#preview-text").inner_text() == "Remove gen_67_123 (1,500.0 kW at bus 67)."
    assert page.locator("#map .gen-marker").count() == 0
    assert page.locator("#summary-gen-kw").inner_text() == "0.0 kW"
    assert requests.get(f"{server}/scenarios/{sid}/state", timeout=30).content == state_before
    other = requests.post(f"{server}/scenarios/{sid}/modify_load_neighbourhood", json={"neighbourhood": 1, "factor": 1.1},
                          timeout=60)
    assert other.status_code == 200
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("() => document.getElementById('preview-error').textContent !== ''")
    wait_until_idle(page)
    message = page.locator("#preview-error").inner_text()
    assert message.startswith("If-Match: the scenario has changed") and "nothing was applied" in message
    assert [g["name"] for g in get(server, f"/scenarios/{sid}/generators")["generators"]] == ["gen_67_123"]
    page.get_by_role("button", name="Discard").click()
    page.wait_for_function("() => document.body.dataset.sequence === '2' && document.body.dataset.busy === 'false'")
    assert_summary_matches(page, get(server, f"/scenarios/{sid}/state"))
    assert [p for p in page.problems if "status of 412" not in p] == []  # Chromium logs the refused Apply


def bus_fills(tab: Any) -> dict[str, list]:
    return dict(tab.eval_on_selector_all(
        "#map .bus", "els => els.map(e => [e.dataset.bus, [getComputedStyle(e).fill, e.dataset.delta]])"))


def violation_keys(items: list[dict]) -> set[tuple]:
    return {(v["type"], v.get("element", ""), str(v["node"]) if v.get("node") is not None else None) for v in items}


def listed_violations(tab: Any, kind: str) -> set[tuple]:
    return {tuple(row) for row in tab.eval_on_selector_all(
        f"#diff-{kind} li:not(.none)", "els => els.map(e => [e.dataset.type, e.dataset.element, e.dataset.node ?? null])")}


def assert_diff_shown(tab: Any, diff: dict) -> None:
    """The map colours each bus by its largest node change, as the API's diff reports it; the lists match."""
    largest: dict[str, float] = {}
    for row in diff["buses"]:
        if abs(row["delta_pu"]) > abs(largest.get(row["Bus"], 0.0)) or row["Bus"] not in largest:
            largest[row["Bus"]] = row["delta_pu"]
    scale = tab.evaluate("() => window.dashboard.deltaRange")
    assert scale >= max(abs(d) for d in largest.values())
    expected = tab.evaluate("([d, r]) => Object.fromEntries(Object.entries(d).map(([b, v]) => [b, window.deltaColour(v, r)]))",
                            [largest, scale])
    shown = bus_fills(tab)
    assert {bus: fill for bus, (fill, _) in shown.items()} == expected
    assert {bus: float(delta) for bus, (_, delta) in shown.items()} == largest
    assert listed_violations(tab, "new") == violation_keys(diff["violations"]["new"])
    assert listed_violations(tab, "cleared") == violation_keys(diff["violations"]["cleared"])


def test_the_diff_view_colours_the_map_by_voltage_change_and_lists_violations(page: Any, server: str) -> None:
    sid = create_scenario_in_page(page, "pv at 67")
    add_generator_in_page(page, "67", "3", "1500")
    page.get_by_label("Compare with").select_option("base")
    page.wait_for_selector("#map[data-colouring='delta']")
    wait_until_idle(page)

    diff = get(server, f"/scenarios/{sid}/diff?against=base")
    assert_diff_shown(page, diff)
    neutral = page.evaluate("() => window.deltaColour(0, 1)")
    fill_67, delta_67 = bus_fills(page)["67"]
    assert fill_67 != neutral and float(delta_67) > 0.005, "1.5 MW at 67 raises its voltage"
    assert diff["violations"]["cleared"] and page.locator("#diff-cleared li").first.inner_text() == \
        "Line l10: 139.3 % of its rating"
    assert page.locator("#diff-new li").inner_text() == "none"
    legend = page.locator("#legend-voltage").text_content()
    assert "Δ voltage vs the base case (pu)" in legend and "0 (no change)" in legend
    generation = page.locator("#diff-summary tr[data-key='total_generation_kW'] .delta").inner_text()
    assert generation == f"+{diff['summary']['total_generation_kW']['delta']:,.1f} kW"
    if os.environ.get("DASHBOARD_DOCS_SCREENSHOT") == "1":  # regenerate the README's picture from this state
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"), full_page=True, animations="disabled")
    screenshot(page, "05-diff-against-base.png")

    # A change while comparing: the diff follows it, and the overvoltages it causes are listed as new.
    add_generator_in_page(page, "114", "1", "900", "1")
    wait_until_idle(page)
    diff = get(server, f"/scenarios/{sid}/diff?against=base")
    assert diff["sequence"] == 2 and {v["type"] for v in diff["violations"]["new"]} == {"voltage"}
    assert_diff_shown(page, diff)
    assert "Bus 114 phase A" in page.locator("#diff-new").inner_text()

    # Against another scenario (default, at the base case: the same numbers); this one is not offered.
    offered = page.eval_on_selector_all("#compare-select option", "els => els.map(e => e.value)")
    assert offered == ["", "base", "default"]
    page.get_by_label("Compare with").select_option("default")
    page.wait_for_selector("#diff-panel[data-against='default']")
    wait_until_idle(page)
    assert_diff_shown(page, get(server, f"/scenarios/{sid}/diff?against=default"))

    # Back to the voltage colouring.
    page.get_by_role("button", name="Back to voltages").click()
    page.wait_for_selector("#map[data-colouring='voltage']")
    assert page.locator("#diff-panel").is_hidden()
    state = get(server, f"/scenarios/{sid}/state")
    mismatches = page.evaluate("""worst => [...document.querySelectorAll('#map .bus')]
        .filter(e => getComputedStyle(e).fill !== window.voltageColour(worst[e.dataset.bus])).map(e => e.dataset.bus)""",
                               {b: worst_phase(state, b) for b in {row["Bus"] for row in state["results"]["bus_details"]}})
    assert mismatches == []
    assert "worst-phase voltage (pu)" in page.locator("#legend-voltage").text_content()
    assert page.problems == []


def test_the_poll_asks_with_if_none_match_and_redraws_only_on_a_new_state(page: Any, server: str) -> None:
    etag = requests.get(f"{server}/scenarios/default/state", timeout=30).headers["ETag"]
    seen: list[Any] = []
    page.on("response", lambda r: r.url.endswith("/scenarios/default/state") and seen.append(r))
    renders = page.evaluate("() => window.dashboard.renders")

    page.evaluate("() => window.dashboard.poll()")  # may find the timer's poll under way: then that one answers
    for _ in range(80):
        if seen:
            break
        page.wait_for_timeout(100)
    assert seen, "no poll within 8 s"
    assert seen[0].status == 304
    assert seen[0].request.all_headers()["if-none-match"] == etag
    wait_until_idle(page)
    assert page.evaluate("() => window.dashboard.renders") == renders, "a 304 redraws nothing"

    assert post(server, "/add_generator", {"bus_name": "300", "phases": 3, "kw": 400}).status_code == 200
    state = get(server, "/state")
    page.evaluate("() => window.dashboard.poll()")
    page.wait_for_function("kw => Number(document.getElementById('summary-gen-kw').dataset.value) === kw",
                           arg=state["results"]["power_summary"]["total_generation_kW"], timeout=15_000)
    wait_until_idle(page)
    fresh = [r for r in seen if r.status == 200]
    assert fresh and fresh[0].request.all_headers()["if-none-match"] == etag
    assert fresh[0].headers["etag"] != etag
    assert_summary_matches(page, state)
    assert journal(page)[0]["type"] == "add_generator", "the journal follows too"

    # The scenario on show is deleted by someone else: the next poll goes back to default, saying why.
    sid = create_scenario_in_page(page, "short-lived")
    requests.delete(f"{server}/scenarios/{sid}", timeout=30).raise_for_status()
    gone = requests.get(f"{server}/scenarios/{sid}/state", timeout=30)
    assert gone.status_code == 404
    page.evaluate("() => window.dashboard.poll()")
    page.wait_for_function("() => document.body.dataset.scenario === 'default' && document.body.dataset.busy === 'false'",
                           timeout=15_000)
    assert page.locator("#scenario-error").inner_text() == gone.json()["message"]
    assert page.locator("#scenario-select").input_value() == "default"
    assert_summary_matches(page, get(server, "/state"))


# ---------------------------------------------------------------------------- studies
STUDY_TIMEOUT_MS = 180_000  # a hosting capacity study of every bus, on a freshly started server's workers
LOW_END, HIGH_END, GREY = "rgb(68, 1, 84)", "rgb(253, 231, 37)", "rgb(204, 204, 204)"  # the scale's ends; no capacity


def wait_for_study(tab: Any, section: str, status: str = "done") -> str:
    """Until the panel's study has finished (`status`); its job's id."""
    tab.wait_for_selector(f"#{section}[data-status='{status}']", timeout=STUDY_TIMEOUT_MS)
    job_id = tab.locator(f"#{section}").get_attribute("data-job")
    assert job_id
    return job_id


def rgb_channels(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", text).groups())


def hosting_text(row: dict) -> str:
    """The tooltip's first line for a hosting capacity row: "67: 4,210 kW — thermal, Line.l117 at 100.2 %"."""
    if row["hosting_capacity_kW"] is None:
        return f"{row['bus']}: cannot host a generator — {row['reason']}"
    bound, kw = row["limited_by"], f"{row['hosting_capacity_kW']:,.0f} kW"
    what = {"thermal": lambda: f"thermal, {bound['element']} at {bound['value']:,.1f} %",
            "voltage_high": lambda: f"voltage high, node {bound['element']} at {bound['value']:.4f} pu",
            "voltage_low": lambda: f"voltage low, node {bound['element']} at {bound['value']:.4f} pu",
            "max_kw": lambda: "no limit reached: the study's largest size"}[bound["kind"]]()
    return f"{row['bus']}: {kw} — {what}"


def test_hosting_capacity_runs_from_the_panel_and_colours_the_map_by_its_result(page: Any, server: str) -> None:
    sid = create_scenario_in_page(page, "hc")
    add_generator_in_page(page, "67", "3", "500")
    sent: list[Any] = []
    page.on("request", lambda r: "/studies/" in r.url and sent.append(r))
    polls: list[str] = []
    page.on("response", lambda r: "/jobs/" in r.url and r.request.method == "GET" and polls.append(r.url))

    page.get_by_label("Generator phases").select_option("3")
    page.get_by_label("Step (kW)").fill("50")
    page.get_by_role("button", name="Run hosting capacity").click()
    page.wait_for_selector("#hc-section[data-status='running']", timeout=STUDY_TIMEOUT_MS)
    assert page.get_by_role("button", name="Run hosting capacity").is_disabled()
    assert page.locator("#hc-cancel").is_visible()
    assert page.locator("#hc-progress-text").inner_text().startswith("Running: ")
    job_id = wait_for_study(page, "hc-section")
    assert page.locator("#hc-progress").evaluate("e => e.value") == 1
    assert page.locator("#hc-progress-text").inner_text().startswith("Done: ")
    assert page.locator("#hc-cancel").is_hidden()
    assert [(r.method, r.url.removeprefix(server), r.post_data_json) for r in sent] == [
        ("POST", f"/scenarios/{sid}/studies/hosting_capacity", {"buses": ["all"], "phases": 3, "step_kw": 50})]
    assert len(polls) >= 2 and all(url.endswith(f"/jobs/{job_id}") for url in polls), "it polls the job"

    job = get(server, f"/jobs/{job_id}")["job"]
    assert (job["status"], job["kind"], job["scenario"], job["sequence"]) == ("done", "hosting_capacity", sid, 1)
    result = job["result"]
    assert result["criteria"]["step_kw"] == 50 and result["criteria"]["phases"] == 3
    capacity = {row["bus"]: row["hosting_capacity_kW"] for row in result["buses"]}
    cannot = {bus for bus, kw in capacity.items() if kw is None}
    assert cannot and all(row["reason"] for row in result["buses"] if row["bus"] in cannot)
    hosted = {bus: kw for bus, kw in capacity.items() if kw is not None}
    low, high = min(kw for kw in hosted.values() if kw > 0), max(hosted.values())
    assert low < high

    # The map: every bus filled by its capacity as the job's result gives it; the least at the scale's low end,
    # the most at its high end, the ones that cannot host grey. Viridis grows greener all the way up.
    page.wait_for_selector("#map[data-colouring='hosting']")
    fills = dict(page.eval_on_selector_all("#map .bus", "els => els.map(e => [e.dataset.bus, getComputedStyle(e).fill])"))
    assert set(fills) == set(capacity) and len(fills) == 132
    assert {bus for bus, fill in fills.items() if fill == GREY} == cannot
    assert {fills[bus] for bus, kw in hosted.items() if kw == low} == {LOW_END}
    assert {fills[bus] for bus, kw in hosted.items() if kw == high} == {HIGH_END}
    expected = page.evaluate("([caps, lo, hi]) => Object.fromEntries(Object.entries(caps).map(([b, kw]) => "
                             "[b, window.hostingColour(kw, lo, hi)]))", [hosted, low, high])
    assert {bus: fills[bus] for bus in hosted} == expected
    greens = [rgb_channels(fills[bus])[1] for bus in sorted(hosted, key=hosted.get)]
    assert greens == sorted(greens) and greens[-1] > greens[0] + 200
    assert page.locator("#map .bus.violation").count() == 0, "no voltage rings on a hosting capacity map"
    legend = page.locator("#legend-voltage").text_content()
    assert "hosting capacity (kW, log scale)" in legend and "cannot host a generator" in legend
    assert page.locator("#colouring-note").is_visible()

    # Tooltips: kW and what bound it; or why the bus cannot host one.
    least = min((row for row in result["buses"] if row["hosting_capacity_kW"] is not None),
                key=lambda row: (row["hosting_capacity_kW"], row["bus"]))
    for row in (least, next(r for r in result["buses"] if r["bus"] == "610")):
        page.locator(f"#map .bus[data-bus='{row['bus']}']").hover()
        assert page.locator("#tooltip").inner_text().splitlines()[0] == hosting_text(row)
    thermal = next(row for row in sorted(result["buses"], key=lambda r: r["hosting_capacity_kW"] or 0)
                   if row["limited_by"] and row["limited_by"]["kind"] == "thermal")
    page.locator(f"#map .bus[data-bus='{thermal['bus']}']").hover()
    assert re.fullmatch(r"\S+: [\d,]+ kW — thermal, (Line|Transformer)\.\S+ at [\d,]+\.\d %",
                        page.locator("#tooltip").inner_text().splitlines()[0])
    assert page.locator("#tooltip").inner_text().splitlines()[0] == hosting_text(thermal)

    # The table: one row per bus, ascending by capacity (those that cannot host last), as the result gives them.
    def table() -> list[tuple[str, str]]:
        return [tuple(r) for r in page.eval_on_selector_all("#hc-rows tr", "els => els.map(e => [e.dataset.bus, e.dataset.kw])")]

    rows = table()
    assert len(rows) == len(result["buses"])
    assert {bus: (float(kw) if kw else None) for bus, kw in rows} == capacity
    kws = [float(kw) for _, kw in rows if kw]
    assert kws == sorted(kws) and kws[0] == low and {bus for bus, kw in rows[len(kws):]} == cannot
    first = page.locator("#hc-rows tr").first.inner_text().split("\t")
    assert first[0].strip() == rows[0][0] and first[2] == f"{least['hosting_capacity_kW']:,.0f}"
    page.locator("#hc-table th[data-sort='kw'] button").click()  # again: descending
    assert float(table()[0][1]) == high
    assert page.locator("#hc-table th[data-sort='kw']").get_attribute("aria-sort") == "descending"
    page.locator("#hc-table th[data-sort='bus'] button").click()
    names = [bus for bus, kw in table() if kw]
    assert names == sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
    page.locator(f"#hc-rows tr[data-bus='{least['bus']}']").click()  # a row selects its bus
    assert "selected" in page.locator(f"#map .bus[data-bus='{least['bus']}']").get_attribute("class")

    # The CSV link: the job's own CSV.
    href = page.locator("#hc-csv").get_attribute("href")
    assert href == f"/jobs/{job_id}/result?format=csv"
    csv = requests.get(f"{server}{href}", timeout=30)
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == 1 + len(result["buses"])
    screenshot(page, "06-hosting-capacity.png")

    # One bus colouring at a time: comparing ends the hosting capacity colouring and back again.
    page.get_by_label("Compare with").select_option("base")
    page.wait_for_selector("#map[data-colouring='delta']")
    wait_until_idle(page)
    assert page.locator("#colouring-note").is_hidden() and page.locator("#diff-panel").is_visible()
    page.get_by_role("button", name="Colour the map by hosting capacity").click()
    page.wait_for_selector("#map[data-colouring='hosting']")
    wait_until_idle(page)
    assert page.locator("#diff-panel").is_hidden() and page.locator("#compare-select").input_value() == ""
    assert page.locator("#map .bus[data-bus='610']").evaluate("e => getComputedStyle(e).fill") == GREY
    page.locator("#colouring-note").get_by_role("button", name="Back to voltages").click()
    page.wait_for_selector("#map[data-colouring='voltage']")
    state = get(server, f"/scenarios/{sid}/state")
    assert page.evaluate("""worst => [...document.querySelectorAll('#map .bus')]
        .filter(e => getComputedStyle(e).fill !== window.voltageColour(worst[e.dataset.bus])).map(e => e.dataset.bus)""",
                         {b: worst_phase(state, b) for b in {row["Bus"] for row in state["results"]["bus_details"]}}) == []
    assert "worst-phase voltage (pu)" in page.locator("#legend-voltage").text_content()

    # A later change makes the study an older state's: said so, the result kept.
    add_generator_in_page(page, "16", "1", "100")
    assert "read state #1" in page.locator("#hc-stale").inner_text()
    assert page.problems == []


def test_a_day_of_time_series_is_charted_hour_by_hour_with_the_apis_totals(page: Any, server: str) -> None:
    sid = create_scenario_in_page(page, "ts")
    add_generator_in_page(page, "67", "3", "1000")
    page.get_by_label("Length").select_option("24")
    page.get_by_label("Start day").fill("181")
    assert "hour 4,320 of the year: 30 Jun" in page.locator("#ts-start-hint").inner_text()
    page.get_by_role("button", name="Run time series").click()
    job_id = wait_for_study(page, "ts-section")
    page.wait_for_selector("#ts-results:not([hidden])")
    assert page.locator("#ts-progress").evaluate("e => e.value") == 1

    job = get(server, f"/jobs/{job_id}")["job"]
    assert (job["kind"], job["scenario"], job["sequence"]) == ("time_series", sid, 1)
    result = job["result"]
    hours = result["hours"]
    assert len(hours) == 24 and hours[0]["hour_of_year"] == 4320 and result["spec"]["load_shape"] == "residential"
    assert result["totals"]["generation_kWh"] > 0, "1 MW of PV generates in late June"

    # One point per hour in every series, left to right, each drawn where its value is (higher value, higher up).
    charted = dict(page.eval_on_selector_all("#ts-power .series, #ts-voltage .series", """els => els.map(e =>
        [e.dataset.series, e.getAttribute('points').trim().split(/\\s+/).map(p => p.split(',').map(Number))])"""))
    assert set(charted) == {"substation_kW", "generation_kW", "losses_kW", "min_voltage_pu", "max_voltage_pu"}
    for key, points in charted.items():
        assert len(points) == 24, key
        xs, ys = [x for x, _ in points], [y for _, y in points]
        assert xs == sorted(xs) and len(set(xs)) == 24, key
        values = [h[key] for h in hours]
        n, mv, my = 24, sum(values) / 24, sum(ys) / 24
        cov = sum((v - mv) * (y - my) for v, y in zip(values, ys))
        spread = (sum((v - mv) ** 2 for v in values) * sum((y - my) ** 2 for y in ys)) ** 0.5
        assert spread > 0 and cov / spread < -0.999, (key, "y is a falling straight function of the value")
    limits = page.locator("#ts-voltage").text_content()
    assert "0.95 pu limit" in limits and "1.05 pu limit" in limits
    assert page.locator("#ts-voltage .limit").count() >= 2 and page.locator("#ts-voltage .band").count() == 1

    # The totals as figures, equal to the API's.
    shown = dict(page.eval_on_selector_all("#ts-totals dd", "els => els.map(e => [e.id, [Number(e.dataset.value), e.textContent]])"))
    totals = result["totals"]
    assert {key.removeprefix("ts-total-"): value for key, (value, _) in shown.items()} == totals
    for key, value in totals.items():
        assert shown[f"ts-total-{key}"][1] == f"{value:,.0f}" + (" kWh" if key.endswith("kWh") else "")

    href = page.locator("#ts-csv").get_attribute("href")
    assert href == f"/jobs/{job_id}/result?format=csv"
    csv = requests.get(f"{server}{href}", timeout=30)
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 25

    # Hovering the chart tells the hour's numbers.
    box = page.locator("#ts-power").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert "30 Jun" in page.locator("#tooltip").inner_text() and "substation" in page.locator("#tooltip").inner_text()
    screenshot(page, "07-time-series-day.png")
    assert page.problems == []


def test_study_errors_are_the_apis_words_next_to_the_control_and_cancel_stops_a_study(page: Any, server: str) -> None:
    refused = requests.post(f"{server}/scenarios/default/studies/hosting_capacity",
                            json={"buses": ["all"], "phases": 3, "step_kw": 0}, timeout=30)
    assert refused.status_code == 422
    page.get_by_label("Step (kW)").fill("0")
    page.get_by_role("button", name="Run hosting capacity").click()
    page.wait_for_function("() => document.getElementById('hc-error').textContent !== ''")
    assert page.locator("#hc-section #hc-error").inner_text() == refused.json()["message"]
    assert page.locator("#hc-step").get_attribute("aria-invalid") == "true"
    assert page.locator("#hc-section").get_attribute("data-status") == "idle"

    refused = requests.post(f"{server}/scenarios/default/studies/time_series",
                            json={"hours": 24, "start_hour": 399 * 24, "load_shape": "residential",
                                  "generator_shape": "pv"}, timeout=30)
    assert refused.status_code == 422
    page.get_by_label("Start day").fill("400")
    page.get_by_role("button", name="Run time series").click()
    page.wait_for_function("() => document.getElementById('ts-error').textContent !== ''")
    assert page.locator("#ts-section #ts-error").inner_text() == refused.json()["message"]
    assert page.locator("#ts-start-day").get_attribute("aria-invalid") == "true"

    # A long study (10 kW steps), cancelled while it runs: DELETE /jobs/<id>, and the panel says so.
    page.get_by_label("Step (kW)").fill("10")
    page.get_by_role("button", name="Run hosting capacity").click()
    page.wait_for_selector("#hc-section[data-status='running']", timeout=STUDY_TIMEOUT_MS)
    assert page.locator("#hc-error").inner_text() == "" and page.locator("#hc-step").get_attribute("aria-invalid") is None
    page.get_by_role("button", name="Cancel the hosting capacity study").click()
    job_id = wait_for_study(page, "hc-section", "cancelled")
    assert get(server, f"/jobs/{job_id}")["job"]["status"] == "cancelled"
    assert page.locator("#hc-progress-text").inner_text().startswith("Cancelled at ")
    assert page.get_by_role("button", name="Run hosting capacity").is_enabled()
    assert page.locator("#hc-results").is_hidden() and page.locator("#map").get_attribute("data-colouring") == "voltage"
    assert [p for p in page.problems if "status of 422" not in p] == []
