"""The feeder map: every bus, line and transformer drawn from the API, coloured and sized by its numbers, with legends,
tooltips and labels placed clear of each other."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .helpers import get, sequence, wait_for_change, worst_phase
from .mapview import drawn_buses, drawn_lines, drawn_transformers, hover_bus, hover_wire, placed_labels

#: The colour the map's canvas painted at each bus's centre, as "rgb(r, g, b)".
PAINTED = """names => { const view = window.dashboard.view, ctx = document.querySelector('#map canvas.map-base').getContext('2d');
    return Object.fromEntries(names.map(name => { const b = window.dashboard.scene.busIndex.get(name);
        const [x, y] = view.toScreen([b.x, b.y]);
        const [r, g, bl] = ctx.getImageData(Math.round(x * view.dpr), Math.round(y * view.dpr), 1, 1).data;
        return [name, `rgb(${r}, ${g}, ${bl})`]; })); }"""


def test_map_draws_every_bus_and_line_coloured_from_the_api(page: Any, server: str) -> None:
    buses = get(server, "/buses")["buses"]
    state = get(server, "/state")
    line_flows = state["results"]["line_flows"]

    drawn = drawn_buses(page)
    assert len(drawn) == len(buses) == 132
    assert set(drawn) == {b["name"] for b in buses}
    lines = drawn_lines(page)
    assert len(lines) == len(line_flows)
    assert set(lines) == {row["Line"] for row in line_flows}

    # Switches are marked; the normally open ties (Bus2 "..._open": Sw7, Sw8) are dashed, nothing else is.
    assert {name for name, line in lines.items() if line["switch"]} == {row["Line"] for row in line_flows if row["Switch"]}
    open_ties = {row["Line"] for row in line_flows if row["Bus2"].endswith("_open")}
    assert open_ties == {"sw7", "sw8"}
    assert {name for name, line in lines.items() if line["open"]} == open_ties

    # Every bus is filled with voltageColour(its worst-phase voltage), as the API reports it, and the canvas
    # shows that colour at its centre.
    worst = {b["name"]: worst_phase(state, b["name"]) for b in buses}
    expected = page.evaluate("worst => Object.fromEntries(Object.entries(worst).map(([n, v]) => [n, window.voltageColour(v)]))",
                             worst)
    assert {name: bus["fill"] for name, bus in drawn.items()} == expected
    painted = page.evaluate(PAINTED, ["67", "13", "300", "610"])
    assert painted == {name: expected[name] for name in painted}

    # Overloaded lines are drawn in their own colour, and wider than lightly loaded ones.
    overloaded = {name for name, line in lines.items() if line["overloaded"]}
    assert overloaded == {row["Line"] for row in line_flows if row["Loading_pct"] > 100}
    assert {lines[name]["colour"] for name in overloaded} == {"#7b3294"}
    assert lines["l3"]["width"] > lines["l1"]["width"]

    # Legends for every scale, with the ANSI limits on the voltage one.
    legend = page.locator("#legend-voltage").text_content()
    assert "0.95" in legend and "1.05" in legend
    assert "loading" in page.locator("#legend-lines").text_content()
    assert "Phase A" in page.locator("#profile").text_content()

    # Neighbourhoods and generators can be hidden.
    assert page.evaluate("() => window.dashboard.scene.neighbourhoods.length") == len(
        get(server, "/neighbourhoods")["neighbourhoods"])
    assert page.evaluate("() => window.dashboard.view.shown('neighbourhoods')")
    page.get_by_role("checkbox", name="Neighbourhoods").uncheck()
    assert not page.evaluate("() => window.dashboard.view.shown('neighbourhoods')")
    page.get_by_role("checkbox", name="Generators").uncheck()
    assert page.locator("#map .layer-generators").is_hidden()
    names = [label["name"] for label in placed_labels(page)]
    page.get_by_role("checkbox", name="Bus names").uncheck()
    page.wait_for_function("() => window.dashboard.view.labels.length === 0")
    page.get_by_role("checkbox", name="Bus names").check()
    page.wait_for_function("() => window.dashboard.view.labels.length > 0")
    assert [label["name"] for label in placed_labels(page)] == names

    # The buttons zoom about the middle and back to the whole feeder.
    fitted = page.evaluate("() => window.dashboard.view.k")
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    assert page.evaluate("() => window.dashboard.view.k") == pytest.approx(4 * fitted)
    page.get_by_role("button", name="Zoom out").click()
    assert page.evaluate("() => window.dashboard.view.k") == pytest.approx(2 * fitted)
    page.get_by_role("button", name="Whole feeder").click()
    assert page.evaluate("() => window.dashboard.view.k") == pytest.approx(fitted)

    # Hovering a bus or a line shows its numbers.
    hover_bus(page, "67")
    assert page.locator("#tooltip").is_visible()
    assert "Bus 67" in page.locator("#tooltip").inner_text()
    assert f"{worst['67']:.4f}" in page.locator("#tooltip").inner_text()
    hover_wire(page, "lines", "l3")
    assert "Line l3" in page.locator("#tooltip").inner_text()
    longest = max(lines, key=lambda n: (lines[n]["a"][0] - lines[n]["b"][0]) ** 2 + (lines[n]["a"][1] - lines[n]["b"][1]) ** 2)
    hover_wire(page, "lines", longest)  # found in the middle too, far from both its ends
    assert f" {longest}" in page.locator("#tooltip").inner_text().splitlines()[0]


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
    return {key: t["loading"] for key, t in drawn_transformers(tab).items()}


def test_map_draws_one_transformer_per_bus_pair_and_they_connect_every_bus(page: Any, server: str) -> None:
    transformers = get(server, "/transformers")["transformers"]
    pairs: dict[tuple[str, str], list[dict]] = {}
    for row in transformers:
        pairs.setdefault((row["bus1"], row["bus2"]), []).append(row)
    assert len(transformers) == 8 and len(pairs) == 5  # reg3a/reg3c and reg4a/b/c share their buses

    drawn = drawn_transformers(page)
    shown = [{"key": key, **t} for key, t in drawn.items()]
    assert len(shown) == len(pairs)
    assert {s["key"] for s in shown} == {f"{b1}-{b2}" for b1, b2 in pairs}
    assert {(s["bus1"], s["bus2"]): s["names"] for s in shown} == {
        pair: [row["name"] for row in rows] for pair, rows in pairs.items()}
    # The symbol: the tap changer's arrow on the regulators only (XFM1 has no taps).
    for s in shown:
        assert s["regulator"] == any(row["tap"] is not None for row in pairs[(s["bus1"], s["bus2"])]), s
    # Drawn from one bus to the other, and the buses kept apart so the symbol fits between them.
    buses_drawn = drawn_buses(page)
    for s in shown:
        centres = [buses_drawn[s["bus1"]]["x"], buses_drawn[s["bus1"]]["y"], buses_drawn[s["bus2"]]["x"], buses_drawn[s["bus2"]]["y"]]
        assert [*s["a"], *s["b"]] == pytest.approx(centres, abs=1e-3)
        assert ((centres[2] - centres[0]) ** 2 + (centres[3] - centres[1]) ** 2) ** 0.5 > 25

    # With the transformers, every bus on the map is connected to the substation (150). 610 has no line at
    # all: XFM1's element is its only connection.
    buses = {b["name"] for b in get(server, "/buses")["buses"]}
    line_ends = {row["Line"]: (row["Bus1"], row["Bus2"]) for row in get(server, "/lines")["lines"]}
    drawn_wires = [line_ends[name] for name in drawn_lines(page)]
    transformer_ends = [(s["bus1"], s["bus2"]) for s in shown]
    assert reachable("150", drawn_wires + transformer_ends) == buses
    assert reachable("610", drawn_wires) == {"610"}
    assert reachable("150", drawn_wires) == {"150"}, "the substation regulator is 150's only connection"
    assert "61s-610" in drawn

    # Hovering one shows its units' rating, loading and taps, as the API reports them.
    assert transformer_loadings(page) == {f"{b1}-{b2}": max(row["loading_pct"] for row in rows)
                                          for (b1, b2), rows in pairs.items()}
    hover_wire(page, "transformers", "160-160r")
    tip = page.locator("#tooltip").inner_text()
    assert "Regulators reg4a, reg4b, reg4c" in tip and "160 → 160r" in tip
    for row in pairs[("160", "160r")]:
        tap = f"+{row['tap']}" if row["tap"] > 0 else str(row["tap"])
        assert f"{row['name']}: {row['kva']:,.0f} kVA · loading {row['loading_pct']:,.1f} % · tap {tap}" in tip
    hover_wire(page, "transformers", "61s-610")
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
    # The deck gives them no coordinates: the server places them, the page draws them beside their switch.
    assert {b["name"] for b in buses if b["xy_source"] == "placed"} == {"94_open", "300_open"}
    lines = get(server, "/lines")["lines"]

    drawn = drawn_buses(page)

    def centre(name: str) -> list[float]:
        return [drawn[name]["x"], drawn[name]["y"]]

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
    placed = page.evaluate("""() => { const view = window.dashboard.view;
        return { size: [view.width, view.height], k: view.k, r: view.radius(),
            nb: view.nbBoxes.map((b) => [String(b.id), [b.x, b.y, b.w, b.h]]),
            names: view.labels.map((l) => [l.name, [l.x, l.y, l.w, l.h]]),
            buses: window.dashboard.scene.buses.map((b) => [b.name, ...view.toScreen([b.x, b.y])]) }; }""")
    neighbourhoods = {str(n["id"]): set(n["buses"]) for n in get(server, "/neighbourhoods")["neighbourhoods"]}
    assert len(placed["nb"]) == 14

    def overlap(a: list[float], b: list[float]) -> bool:
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    width, height = placed["size"]
    r = placed["r"]
    assert len(placed["names"]) > 100, "most of the 132 names fit at the whole-feeder view"
    for k, (nb, box) in enumerate(placed["nb"]):
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= width and box[1] + box[3] <= height, nb
        assert not [name for name, other in placed["names"] if overlap(box, other)], nb
        assert not [bus for bus, x, y in placed["buses"] if overlap(box, [x - r, y - r, 2 * r, 2 * r])], nb
        assert not [other for other, b in placed["nb"][k + 1:] if overlap(box, b)], nb
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        distance = min(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 for bus, x, y in placed["buses"]
                       if bus in neighbourhoods[nb])
        assert distance < 45 * placed["k"], (nb, distance)


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
