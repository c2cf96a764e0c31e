"""The page at scale: the dashboard in headless Chromium on the 8500-node feeder, beside our IEEE 123 feeder.

    python bench/page_bench.py                       # about a minute
    python bench/page_bench.py --write-docs-figures  # then docs/figures/page.json (docs/dashboard.md quotes it)

For each feeder a server (`python api.py`, `--feeder` for the 8500-node deck) and the system Chromium through
Playwright, as tests/dashboard/ drive it, in a 1440 × 1000 window. Measured:

- **map drawn**: ms from navigation start to the page's `map-drawn` performance mark (static/map.js sets it after
  the map's first complete picture), in a fresh browser context each time;
- **recolour**: ms from a change's answer (the POST's `responseEnd` in the resource timing) to the first picture
  of the map drawn with its new colours (`mapview.js` stamps `colouredAt` when it paints a new colouring);
- **pan/zoom and hover**: during a scripted sweep (wheel zoom in and out about points of the map, drags, then the
  pointer across the map) the intervals between animation frames (what a user sees: 16.7 ms at 60 Hz, a stall is a
  long one) and the cost of each picture the map drew (`drawMs`).

Targets (issue 29): map drawn within 3,000 ms, recolour within 500 ms, and no stall: frame interval p95 within 50 ms
(three frames) during pan/zoom and hover. A missed target prints FAIL; the exit status is 1 only on a broken page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from engine_floor import REPO, BenchError
from harness import Server, run_main
from machine import environment

sys.path.insert(0, str(REPO / "tests"))
from dashboard.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the tests' browser, set up the same way)

IEEE8500 = REPO.parent / "shared" / "reference" / "feeders" / "IEEETestCases" / "8500-Node" / "Master.dss"
FEEDERS = {"ieee123": (), "ieee8500": ("--feeder", str(IEEE8500))}
FIGURES = REPO / "docs" / "figures" / "page.json"
VIEWPORT = {"width": 1440, "height": 1000}
TARGET_DRAWN_MS, TARGET_RECOLOUR_MS, TARGET_FRAME_P95_MS = 3000, 500, 50

#: In the page: record every animation frame's time until stopped.
FRAMES_START = """() => { window.benchFrames = []; window.benchRecording = true;
    const tick = (t) => { window.benchFrames.push(t); if (window.benchRecording) requestAnimationFrame(tick); };
    requestAnimationFrame(tick); window.dashboard.view.drawMs = []; }"""
FRAMES_STOP = """() => { window.benchRecording = false; const f = window.benchFrames;
    return { intervals: f.slice(1).map((t, i) => t - f[i]), draws: window.dashboard.view.drawMs }; }"""


def summary(values: list[float]) -> dict[str, float]:
    """p50, p95 and max, in ms to 0.1."""
    ordered = sorted(values)
    if not ordered:
        raise BenchError("nothing was measured")
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(statistics.median(ordered), 1), "p95": round(pick(0.95), 1), "max": round(ordered[-1], 1),
            "n": len(ordered)}


def open_page(browser: Any, url: str) -> tuple[Any, Any, float]:
    """A fresh context and tab on the page, ready; ms from navigation start to the map drawn."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(url + "/")
    tab.wait_for_selector("body[data-ready='true']")
    tab.wait_for_function("() => performance.getEntriesByName('map-drawn').length > 0")
    if problems:
        raise BenchError(f"the page failed: {problems}")
    return context, tab, tab.evaluate("() => performance.getEntriesByName('map-drawn')[0].startTime")


def recolour_ms(tab: Any, factor: str) -> float:
    """Scale neighbourhood 1's loads by `factor` through the page's form: ms from the answer to the new colours."""
    before = tab.evaluate("() => document.body.dataset.sequence")
    tab.get_by_label("Neighbourhood", exact=True).select_option(index=0)
    tab.get_by_label("Factor").fill(factor)
    tab.get_by_role("button", name="Scale loads").click()
    tab.wait_for_function("before => document.body.dataset.sequence !== before && document.body.dataset.busy === 'false'",
                          arg=before)
    return tab.evaluate("""() => {
        const answer = performance.getEntriesByType('resource').filter(e => e.name.includes('/modify_load_neighbourhood')).pop();
        const painted = window.dashboard.view.colouredAt.find(t => t >= answer.responseEnd);
        return painted - answer.responseEnd; }""")


def sweep(tab: Any) -> dict[str, Any]:
    """Pan/zoom (wheel in and out about three points, drags across) then hover (the pointer across the map)."""
    box = tab.locator("#map").bounding_box()
    tab.locator("#map").scroll_into_view_if_needed()
    box = tab.locator("#map").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    tab.evaluate(FRAMES_START)
    for fx, fy in ((0.5, 0.5), (0.3, 0.4), (0.7, 0.6)):
        tab.mouse.move(x0 + fx * w, y0 + fy * h)
        for _ in range(8):
            tab.mouse.wheel(0, -240)
            tab.wait_for_timeout(20)
        tab.mouse.down()
        for step in range(20):
            tab.mouse.move(x0 + fx * w + 8 * step, y0 + fy * h + 5 * step)
        tab.mouse.up()
        for _ in range(8):
            tab.mouse.wheel(0, 240)
            tab.wait_for_timeout(20)
    tab.wait_for_timeout(200)
    pan = tab.evaluate(FRAMES_STOP)
    tab.mouse.dblclick(x0 + 5, y0 + 5)  # back to the whole feeder
    tab.wait_for_timeout(200)
    tab.evaluate(FRAMES_START)
    for step in range(120):
        tab.mouse.move(x0 + w * (0.05 + 0.9 * step / 119), y0 + h * (0.2 + 0.6 * ((step * 7) % 120) / 119))
    tab.wait_for_timeout(200)
    hover = tab.evaluate(FRAMES_STOP)
    if hover["draws"]:
        raise BenchError(f"hovering drew {len(hover['draws'])} pictures of the map: it should draw only the pointer's layer")
    return {"pan_zoom": {"frame_ms": summary(pan["intervals"]), "draw_ms": summary(pan["draws"])},
            "hover": {"frame_ms": summary(hover["intervals"])}}


def measure(browser: Any, label: str, rounds: int) -> dict[str, Any]:
    server = Server(label, extra_args=("--no-access-log", "--workers", "1", *FEEDERS[label]))
    server.start()
    try:
        drawn = []
        for _ in range(rounds):
            context, tab, ms = open_page(browser, f"http://127.0.0.1:{server.port}")
            drawn.append(ms)
            context.close()
        context, tab, _ = open_page(browser, f"http://127.0.0.1:{server.port}")
        try:
            scene = tab.evaluate("() => ({ buses: window.dashboard.scene.buses.length, lines: window.dashboard.scene.lines.length,"
                                 " transformers: window.dashboard.scene.transformers.length,"
                                 " labels: window.dashboard.view.labels.length })")
            recolour = [recolour_ms(tab, "1.5" if i % 2 == 0 else "1") for i in range(rounds)]
            interaction = sweep(tab)
        finally:
            context.close()
    finally:
        server.stop()
    return {"feeder": label, **scene, "drawn_ms": summary(drawn), "recolour_ms": summary(recolour), **interaction}


def report(results: dict[str, Any]) -> None:
    for label, r in results.items():
        print(f"\n{label}: {r['buses']:,} buses, {r['lines']:,} lines, {r['transformers']:,} transformer pairs;"
              f" {r['labels']} names shown at the whole-feeder view")
        checks = [("map drawn", r["drawn_ms"]["p50"], TARGET_DRAWN_MS), ("recolour", r["recolour_ms"]["p50"], TARGET_RECOLOUR_MS),
                  ("pan/zoom frame p95", r["pan_zoom"]["frame_ms"]["p95"], TARGET_FRAME_P95_MS),
                  ("hover frame p95", r["hover"]["frame_ms"]["p95"], TARGET_FRAME_P95_MS)]
        for what, value, target in checks:
            print(f"  {what:20s} {value:8.1f} ms   target {target:5d} ms   {'ok' if value <= target else 'FAIL'}")
        for part in ("pan_zoom", "hover"):
            f = r[part]["frame_ms"]
            print(f"  {part:9s} frames p50 {f['p50']} p95 {f['p95']} max {f['max']} ms ({f['n']})", end="")
            d = r[part].get("draw_ms")
            print(f"; pictures p50 {d['p50']} p95 {d['p95']} max {d['max']} ms ({d['n']})" if d else "; no picture drawn")


def write_figures(results: dict[str, Any], rounds: int) -> None:
    env = environment()
    figures = {
        "about": {"what": "The dashboard's map on the 8500-node feeder and on IEEE 123 in headless Chromium, as "
                          "docs/dashboard.md quotes it (ms).",
                  "how to regenerate": "python bench/page_bench.py --write-docs-figures (about a minute), then "
                                       "python docs/figures/render.py"},
        "run": {"cpu": env["cpu"], "cpus": env["cpu_count"], "python": env["python"], "commit": env["git_commit"],
                "rounds": rounds},
        "targets": {"drawn_ms": TARGET_DRAWN_MS, "recolour_ms": TARGET_RECOLOUR_MS, "frame_p95_ms": TARGET_FRAME_P95_MS},
        "feeders": results,
    }
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {FIGURES.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="page loads and changes per feeder (default 5)")
    parser.add_argument("--write-docs-figures", action="store_true", help=f"write {FIGURES.relative_to(REPO)}")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise BenchError(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            results = {label: measure(browser, label, args.rounds) for label in FEEDERS}
        finally:
            browser.close()
    report(results)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.write_docs_figures:
        write_figures(results, args.rounds)
    return 0


if __name__ == "__main__":
    run_main(main)
