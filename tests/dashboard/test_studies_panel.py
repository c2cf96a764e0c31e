"""The studies panel: hosting capacity and time series run as jobs from the page, their results as a table, a map
colouring, charts and CSV, and their errors and cancellation."""

from __future__ import annotations

import re
from typing import Any

import requests

from .helpers import (
    add_generator_in_page,
    create_scenario_in_page,
    get,
    screenshot,
    wait_until_idle,
    worst_phase,
)
from .mapview import drawn_buses, hover_bus

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
    fills = {name: bus["fill"] for name, bus in drawn_buses(page).items()}
    assert set(fills) == set(capacity) and len(fills) == 132
    assert {bus for bus, fill in fills.items() if fill == GREY} == cannot
    assert {fills[bus] for bus, kw in hosted.items() if kw == low} == {LOW_END}
    assert {fills[bus] for bus, kw in hosted.items() if kw == high} == {HIGH_END}
    expected = page.evaluate("([caps, lo, hi]) => Object.fromEntries(Object.entries(caps).map(([b, kw]) => "
                             "[b, window.hostingColour(kw, lo, hi)]))", [hosted, low, high])
    assert {bus: fills[bus] for bus in hosted} == expected
    greens = [rgb_channels(fills[bus])[1] for bus in sorted(hosted, key=hosted.get)]
    assert greens == sorted(greens) and greens[-1] > greens[0] + 200
    assert not [b for b in drawn_buses(page).values() if b["violation"]], "no voltage rings on a hosting capacity map"
    legend = page.locator("#legend-voltage").text_content()
    assert "hosting capacity (kW, log scale)" in legend and "cannot host a generator" in legend
    assert page.locator("#colouring-note").is_visible()

    # Tooltips: kW and what bound it; or why the bus cannot host one.
    least = min((row for row in result["buses"] if row["hosting_capacity_kW"] is not None),
                key=lambda row: (row["hosting_capacity_kW"], row["bus"]))
    for row in (least, next(r for r in result["buses"] if r["bus"] == "94_open")):
        hover_bus(page, row["bus"])
        assert page.locator("#tooltip").inner_text().splitlines()[0] == hosting_text(row)
    thermal = next(row for row in sorted(result["buses"], key=lambda r: r["hosting_capacity_kW"] or 0)
                   if row["limited_by"] and row["limited_by"]["kind"] == "thermal")
    hover_bus(page, thermal["bus"])
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
    assert drawn_buses(page)[least["bus"]]["selected"]

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
    assert drawn_buses(page)["94_open"]["fill"] == GREY
    page.locator("#colouring-note").get_by_role("button", name="Back to voltages").click()
    page.wait_for_selector("#map[data-colouring='voltage']")
    state = get(server, f"/scenarios/{sid}/state")
    assert page.evaluate("""worst => window.dashboard.scene.buses
        .filter(b => b.fill !== window.voltageColour(worst[b.name])).map(b => b.name)""",
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
        mv, my = sum(values) / 24, sum(ys) / 24
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

    # Hovering the chart tells the hour's numbers (scrolled into view first: the studies panel grows with its kinds).
    page.locator("#ts-power").scroll_into_view_if_needed()
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


def test_hosting_capacity_over_named_hours_shows_the_binding_hour_and_the_preexisting_overloads(
        page: Any, server: str) -> None:
    """Peak + daytime minimum from the form: the request names the hours, the table and tooltip give each bus's
    binding hour as the job's result does, and the overloads set apart are listed beside the table."""
    sid = create_scenario_in_page(page, "hours")
    sent: list[Any] = []
    page.on("request", lambda r: "/studies/" in r.url and sent.append(r))
    page.get_by_label("Generator phases").select_option("3")
    page.get_by_label("Step (kW)").fill("1000")
    page.get_by_label("Hours", exact=True).select_option("named")
    assert page.locator("#hc-hours").is_hidden()
    page.get_by_role("button", name="Run hosting capacity").click()
    job_id = wait_for_study(page, "hc-section")
    assert [r.post_data_json for r in sent] == [
        {"buses": ["all"], "phases": 3, "step_kw": 1000, "hours": ["peak_load", "daytime_minimum"]}]
    result = get(server, f"/jobs/{job_id}")["job"]["result"]
    assert {h["name"] for h in result["hours"]} == {"peak_load", "daytime_minimum"}

    hours = page.locator("#hc-hours-rows li").all_inner_texts()
    assert len(hours) == 2 and any("(peak load)" in h for h in hours) and any("(daytime minimum)" in h for h in hours)
    listed = page.locator("#hc-preexisting-rows li").all_inner_texts()
    assert len(listed) == len(result["preexisting"]) > 0
    for text, entry in zip(listed, result["preexisting"]):
        assert text.startswith(f"{entry['element']} at ") and f"hour {entry['hour_of_year']}" in text

    binding = dict(page.eval_on_selector_all(
        "#hc-rows tr[data-kw]:not([data-kw=''])", "els => els.map(e => [e.dataset.bus, e.lastElementChild.textContent])"))
    expected = {row["bus"]: str(row["binding_hour"]) for row in result["buses"] if row["hosting_capacity_kW"] is not None}
    assert binding == expected
    row = next(r for r in result["buses"] if r["hosting_capacity_kW"] is not None and len(set(r["by_hour"].values())) > 1)
    hover_bus(page, row["bus"])
    assert f"binding at hour {row['binding_hour']}" in page.locator("#tooltip").inner_text()

    # A list with an hour outside the year: the API's words, next to the hours input.
    page.get_by_label("Hours", exact=True).select_option("list")
    page.locator("#hc-hours").fill("daytime_minimum, 9000")
    page.get_by_role("button", name="Run hosting capacity").click()
    page.wait_for_function("() => document.getElementById('hc-error').textContent !== ''")
    assert "hours[1]" in page.locator("#hc-error").inner_text()
    assert page.locator("#hc-hours").get_attribute("aria-invalid") == "true"
    assert [p for p in page.problems if "status of 4" not in p] == []
    assert sid


def test_stochastic_hosting_capacity_charts_the_share_failing_with_the_range_marked(page: Any, server: str) -> None:
    """The stochastic panel posts its form, and the chart, figures and CSV links are the job's result."""
    sent: list[Any] = []
    page.on("request", lambda r: "/studies/" in r.url and sent.append(r))
    page.get_by_label("Samples", exact=True).fill("4")
    page.get_by_label("Step (%)").fill("50")
    page.get_by_label("Up to (%)").fill("200")
    page.get_by_label("Seed", exact=True).fill("3")
    page.get_by_role("button", name="Run stochastic hosting capacity").click()
    job_id = wait_for_study(page, "sh-section")
    assert [r.post_data_json for r in sent] == [
        {"penetration_pct": {"start": 50, "stop": 200, "step": 50}, "samples": 4, "seed": 3}]
    result = get(server, f"/jobs/{job_id}")["job"]["result"]
    assert len(result["samples"]) == 4 and [level["penetration_pct"] for level in result["levels"]] == [50, 100, 150, 200]

    points = page.eval_on_selector_all("#sh-chart circle.level", "els => els.map(e => [Number(e.dataset.pct), Number(e.dataset.failing)])")
    assert points == [[level["penetration_pct"], 4 - level["samples_passing"]] for level in result["levels"]]
    screenshot(page, "09-stochastic.png")
    markers = page.eval_on_selector_all("#sh-chart line.marker", "els => els.map(e => Number(e.dataset.pct))")
    assert markers == [result["min_hc_pct"], result["max_hc_pct"]]
    figures = page.locator("#sh-figures").inner_text()
    assert f"{result['min_hc_pct']:,.0f} % ({result['min_hc_kW']:,.0f} kW)" in figures
    assert f"{result['max_hc_pct']:,.0f} % ({result['max_hc_kW']:,.0f} kW)" in figures
    for table, rows in (("levels", 4), ("samples", 4)):
        href = page.locator(f"#sh-csv-{table}").get_attribute("href")
        assert href == f"/jobs/{job_id}/result?format=csv&table={table}"
        csv = requests.get(f"{server}{href}", timeout=30)
        assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 1 + rows

    refused = requests.post(f"{server}/scenarios/default/studies/stochastic_hosting_capacity",
                            json={"penetration_pct": {"start": 50, "stop": 200, "step": 50}, "samples": 0, "seed": 3},
                            timeout=30)
    assert refused.status_code in (400, 422)
    page.get_by_label("Samples", exact=True).fill("0")
    page.get_by_role("button", name="Run stochastic hosting capacity").click()
    page.wait_for_function("() => document.getElementById('sh-error').textContent !== ''")
    assert page.locator("#sh-error").inner_text() == refused.json()["message"]
    assert page.locator("#sh-samples").get_attribute("aria-invalid") == "true"
    assert [p for p in page.problems if "status of 4" not in p] == []
