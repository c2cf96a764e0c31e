"""The feeder map read back from the page. The map is a canvas (static/mapview.js): what it draws is its scene
(`window.dashboard.scene`: each bus, line and transformer with the colour, width and marks it is painted with),
at its view (`window.dashboard.view`: zoom and pan; the names it placed, in px). Tests read the scene where they
read the SVG's elements before, and point at a bus where it is drawn on the screen."""

from __future__ import annotations

from typing import Any

#: Each bus as drawn: its place (map units), fill, rings, and the numbers its colour came from.
BUSES = """() => Object.fromEntries(window.dashboard.scene.buses.map(b => [b.name, {x: b.x, y: b.y, fill: b.fill,
    violation: b.violation, selected: b.selected, binding: b.binding, delta: b.delta ?? null,
    hosting_kw: b.hostingKw ?? null}]))"""
WIRES = """kind => Object.fromEntries(window.dashboard.scene[kind].map(w => [w.key || w.name, {a: w.a, b: w.b,
    width: w.width, colour: w.colour, overloaded: w.overloaded, loading: w.loading, open: !!w.open, switch: !!w.sw,
    binding: w.binding, regulator: !!w.regulator, bus1: w.bus1 ?? null, bus2: w.bus2 ?? null, names: w.names ?? null}]))"""
#: A point of the scene (map units) in the window's coordinates, where a mouse event lands on it.
CLIENT = """([x, y]) => { const r = document.querySelector('#map').getBoundingClientRect();
    const [sx, sy] = window.dashboard.view.toScreen([x, y]); return [r.left + sx, r.top + sy]; }"""


def drawn_buses(tab: Any) -> dict[str, dict[str, Any]]:
    return tab.evaluate(BUSES)


def drawn_lines(tab: Any) -> dict[str, dict[str, Any]]:
    return tab.evaluate(WIRES, "lines")


def drawn_transformers(tab: Any) -> dict[str, dict[str, Any]]:
    return tab.evaluate(WIRES, "transformers")


def placed_labels(tab: Any) -> list[dict[str, Any]]:
    """The bus names drawn now: [{name, x, y, w, h}] in px of the map."""
    return tab.evaluate("() => window.dashboard.view.labels")


def client_point(tab: Any, point: list[float]) -> tuple[float, float]:
    tab.locator("#map").scroll_into_view_if_needed()
    x, y = tab.evaluate(CLIENT, point)
    return x, y


def point_at_bus(tab: Any, name: str) -> tuple[float, float]:
    bus = drawn_buses(tab)[name]
    return client_point(tab, [bus["x"], bus["y"]])


def hover_bus(tab: Any, name: str) -> None:
    tab.mouse.move(*point_at_bus(tab, name))


def click_bus(tab: Any, name: str) -> None:
    tab.mouse.click(*point_at_bus(tab, name))


def hover_wire(tab: Any, kind: str, name: str) -> None:
    """The pointer on a line's or transformer's middle (a transformer's symbol sits there)."""
    wire = (drawn_lines(tab) if kind == "lines" else drawn_transformers(tab))[name]
    middle = [(wire["a"][0] + wire["b"][0]) / 2, (wire["a"][1] + wire["b"][1]) / 2]
    tab.mouse.move(*client_point(tab, middle))


def outlined(tab: Any) -> list[list[str]]:
    """What the map outlines as an EV failure's binding element: [kind, name or transformer units]."""
    return tab.evaluate("""() => { const s = window.dashboard.scene;
        return [...s.buses.filter(b => b.binding).map(b => ['bus', b.name]),
                ...s.lines.filter(l => l.binding).map(l => ['line', l.name]),
                ...s.transformers.filter(t => t.binding).map(t => ['transformer', t.names.join(',')])]; }""")
