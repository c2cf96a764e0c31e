"""The studies panel's load studies (issue 30): load hosting capacity (a table and the map coloured by load capacity,
on hosting capacity's scale, with a legend that says it is new load) and EV adoption (the share of samples passing
against adoption with the range marked, and a failing sample's chargers on the map). What the page shows is held to
the job's own result, the API's answer to the request the page sent; errors are the API's words; cancel works."""

from __future__ import annotations

from typing import Any

import requests

from .helpers import create_scenario_in_page, get, screenshot
from .mapview import drawn_buses, hover_bus, outlined
from .test_studies_panel import (
    GREY,
    HIGH_END,
    LOW_END,
    STUDY_TIMEOUT_MS,
    wait_for_study,
)

LIMIT_WORDS = {"thermal": "thermal", "voltage_high": "voltage high", "voltage_low": "voltage low",
               "max_kw": "no limit reached"}


def load_text(row: dict) -> str:
    """The tooltip's first line for a load hosting capacity row: "85: 100 kW of new load — voltage high, node …"."""
    if row["hosting_capacity_kW"] is None:
        return f"{row['bus']}: cannot take a load — {row['reason']}"
    bound, kw = row["limited_by"], f"{row['hosting_capacity_kW']:,.0f} kW"
    what = {"thermal": lambda: f"thermal, {bound['element']} at {bound['value']:,.1f} %",
            "voltage_high": lambda: f"voltage high, node {bound['element']} at {bound['value']:.4f} pu",
            "voltage_low": lambda: f"voltage low, node {bound['element']} at {bound['value']:.4f} pu",
            "max_kw": lambda: "no limit reached: the study's largest size"}[bound["kind"]]()
    return f"{row['bus']}: {kw} of new load — {what}"


def test_load_hosting_capacity_fills_the_table_and_colours_the_map_by_load_capacity(page: Any, server: str) -> None:
    sid = create_scenario_in_page(page, "load hc")
    sent: list[Any] = []
    page.on("request", lambda r: "/studies/" in r.url and sent.append(r))
    page.get_by_label("Load steps of (kW)").fill("250")
    page.get_by_label("Load pf (lagging)").fill("0.9")
    page.get_by_label("Hours studied").select_option("named")
    page.get_by_role("button", name="Run load hosting capacity").click()
    job_id = wait_for_study(page, "lhc-section")
    assert page.locator("#lhc-progress-text").inner_text().startswith("Done: ")
    assert [(r.method, r.url.removeprefix(server), r.post_data_json) for r in sent] == [
        ("POST", f"/scenarios/{sid}/studies/load_hosting_capacity",
         {"buses": ["all"], "phases": 3, "step_kw": 250, "pf": 0.9, "hours": ["peak_load", "evening_peak"]})]
    job = get(server, f"/jobs/{job_id}")["job"]
    assert (job["kind"], job["scenario"], job["status"]) == ("load_hosting_capacity", sid, "done")
    result = job["result"]
    assert result["criteria"]["pf"] == 0.9 and result["criteria"]["step_kw"] == 250
    assert {h["name"] for h in result["hours"]} == {"peak_load", "evening_peak"}
    capacity = {row["bus"]: row["hosting_capacity_kW"] for row in result["buses"]}
    cannot = {bus for bus, kw in capacity.items() if kw is None}
    taken = {bus: kw for bus, kw in capacity.items() if kw is not None}
    low, high = min(kw for kw in taken.values() if kw > 0), max(taken.values())
    assert cannot and low < high and len(capacity) == 132

    # The map: coloured by load capacity on hosting capacity's scale, with a legend that says it is new load.
    page.wait_for_selector("#map[data-colouring='load_hosting']")
    fills = {name: bus["fill"] for name, bus in drawn_buses(page).items()}
    assert set(fills) == set(capacity)
    assert {bus for bus, fill in fills.items() if fill == GREY} == cannot
    assert {fills[bus] for bus, kw in taken.items() if kw == high} == {HIGH_END}
    assert {fills[bus] for bus, kw in taken.items() if kw <= low} == {LOW_END}
    expected = page.evaluate("([caps, lo, hi]) => Object.fromEntries(Object.entries(caps).map(([b, kw]) => "
                             "[b, window.hostingColour(kw, lo, hi)]))", [taken, low, high])
    assert {bus: fills[bus] for bus in taken} == expected
    legend = page.locator("#legend-voltage").text_content()
    assert "load capacity (new load, kW, log)" in legend and "cannot take a load" in legend
    assert "generator" not in legend
    assert "load hosting capacity (new load, not generation)" in page.locator("#colouring-text").inner_text()
    assert page.locator("#legend-voltage stop").count() > 2 and not [b for b in drawn_buses(page).values() if b["violation"]]

    # The table: a row per bus as the result gives it (ascending by capacity, those that cannot take one last),
    # with what binds, where and the binding hour.
    rows = page.eval_on_selector_all("#lhc-rows tr", """els => els.map(e => [e.dataset.bus, e.dataset.kw,
        [...e.querySelectorAll('td')].map(td => td.textContent)])""")
    assert {bus: (float(kw) if kw else None) for bus, kw, _ in rows} == capacity
    kws = [float(kw) for _, kw, _ in rows if kw]
    assert kws == sorted(kws) and {bus for bus, kw, _ in rows[len(kws):]} == cannot
    by_bus = {row["bus"]: row for row in result["buses"]}
    for bus, kw, cells in rows[: len(kws)]:
        row = by_bus[bus]
        assert cells[1] == f"{row['hosting_capacity_kW']:,.0f}"
        assert cells[2] == LIMIT_WORDS[row["limited_by"]["kind"]]
        assert cells[3] == (row["limited_by"]["element"] or "")
        assert cells[5] == str(row["binding_hour"])
    figures = page.locator("#lhc-figures").inner_text()
    assert f"{len(result['buses'])} ({len(taken)} can take a load)" in figures and f"{high:,.0f} kW" in figures
    hours = page.locator("#lhc-hours-rows li").all_inner_texts()
    assert any("(evening peak)" in h for h in hours) and any("(peak load)" in h for h in hours)
    listed = page.locator("#lhc-preexisting-rows li").all_inner_texts()
    assert len(listed) == len(result["preexisting"]) > 0, "the head's overloads at peak are set apart"
    limits = result["criteria"]
    for text, entry in zip(listed, result["preexisting"]):
        voltage = entry["limit"] in (limits["voltage_high_pu"], limits["voltage_low_pu"])
        at = (f"node {entry['element']} at {entry['value']:.4f} pu" if voltage
              else f"{entry['element']} at {entry['value']:,.1f} %")
        assert text.startswith(at) and f"hour {entry['hour_of_year']}" in text

    # Tooltips: the load capacity and what binds, in the API's numbers.
    for row in (by_bus[min(taken, key=taken.get)], by_bus[max(taken, key=taken.get)], by_bus[min(cannot)]):
        hover_bus(page, row["bus"])
        assert page.locator("#tooltip").inner_text().splitlines()[0] == load_text(row)

    # The CSV is the job's; back to voltages and the toggle brings the load colouring back.
    href = page.locator("#lhc-csv").get_attribute("href")
    assert href == f"/jobs/{job_id}/result?format=csv"
    csv = requests.get(f"{server}{href}", timeout=30)
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 1 + len(result["buses"])
    screenshot(page, "10-load-hosting-capacity.png")
    page.locator("#colouring-note").get_by_role("button", name="Back to voltages").click()
    page.wait_for_selector("#map[data-colouring='voltage']")
    assert "worst-phase voltage (pu)" in page.locator("#legend-voltage").text_content()
    assert page.locator("#hc-show").is_hidden(), "no generation study: no generation toggle"
    page.get_by_role("button", name="Colour the map by load hosting capacity").click()
    page.wait_for_selector("#map[data-colouring='load_hosting']")
    assert page.locator("#lhc-show").is_hidden()
    assert page.problems == []


def test_ev_adoption_charts_the_share_passing_and_marks_a_failing_samples_chargers(page: Any, server: str) -> None:
    sent: list[Any] = []
    page.on("request", lambda r: "/studies/" in r.url and sent.append(r))
    page.get_by_label("Adoption from (%)").fill("25")
    page.get_by_label("Adoption to (%)").fill("100")
    page.get_by_label("Adoption every (%)").fill("25")
    page.get_by_label("EV samples").fill("4")
    page.get_by_label("EV seed").fill("2")
    page.get_by_role("button", name="Run EV adoption").click()
    job_id = wait_for_study(page, "ev-section")
    assert [r.post_data_json for r in sent] == [
        {"adoption_pct": {"start": 25, "stop": 100, "step": 25}, "samples": 4, "seed": 2, "charger_kW": 7.2,
         "coincidence": 1}]
    job = get(server, f"/jobs/{job_id}")["job"]
    assert (job["kind"], job["scenario"]) == ("ev_adoption", "default")
    result = job["result"]
    assert [level["adoption_pct"] for level in result["levels"]] == [25, 50, 75, 100] and len(result["samples"]) == 4

    # The chart: a point per adoption at the share of samples passing, the range marked; the figures.
    points = page.eval_on_selector_all("#ev-chart circle.level",
                                       "els => els.map(e => [Number(e.dataset.pct), Number(e.dataset.passing)])")
    assert points == [[level["adoption_pct"], level["samples_passing"]] for level in result["levels"]]
    ys = page.eval_on_selector_all("#ev-chart circle.level", "els => els.map(e => Number(e.getAttribute('cy')))")
    passing = [level["samples_passing"] for level in result["levels"]]
    assert all((a > b) == (ya < yb) for a, b, ya, yb in zip(passing, passing[1:], ys, ys[1:])), "more passing, higher"
    markers = page.eval_on_selector_all("#ev-chart line.marker", "els => els.map(e => Number(e.dataset.pct))")
    assert markers == [result["min_adoption_pct"], result["max_adoption_pct"]]
    assert f"min {result['min_adoption_pct']:,.0f} %" in page.locator("#ev-chart").text_content()
    figures = page.locator("#ev-figures").inner_text()
    each = result["spec"]["charger_kW_each"]
    for pct, n in ((result["min_adoption_pct"], result["min_adoption_chargers"]),
                   (result["max_adoption_pct"], result["max_adoption_chargers"])):
        assert f"{pct:,.0f} % ({n} chargers, {n * each:,.1f} kW)" in figures

    # A failing sample's first failure on the map: a charger symbol per bus with the API's chargers, and what bound.
    failed = sorted((s for s in result["samples"] if s["first_failure"]),
                    key=lambda s: (s["first_failure"]["adoption_pct"], s["sample"]))
    assert failed, "at 100 % adoption some sample fails on our deck"
    options = page.eval_on_selector_all("#ev-sample option", "els => els.map(e => Number(e.value))")
    assert options == [s["sample"] for s in failed]
    assert page.locator("#map .ev-charger").count() == 0
    chosen = failed[-1]
    page.get_by_label("Failing sample").select_option(str(chosen["sample"]))
    page.get_by_label("Mark its chargers on the map").check()
    chargers = chosen["first_failure"]["chargers"]
    per_bus: dict[str, list[float]] = {}
    for c in chargers:
        per_bus.setdefault(c["bus"], []).append(c["kW"])
    shown = page.eval_on_selector_all(
        "#map .ev-charger", "els => els.map(e => [e.dataset.charger, Number(e.dataset.count), Number(e.dataset.kw)])")
    assert {bus: (n, kw) for bus, n, kw in shown} == {bus: (len(kws), sum(kws)) for bus, kws in per_bus.items()}
    bound = chosen["first_failure"]["limited_by"]
    assert bound["kind"] == "thermal" and len(outlined(page)) == 1
    ((kind, names),) = outlined(page)
    assert kind in ("line", "transformer") and bound["element"].split(".", 1)[1] in names.split(",")
    bus = chargers[0]["bus"]
    page.locator(f"#map .ev-charger[data-charger='{bus}']").hover()
    tip = page.locator("#tooltip").inner_text()
    assert tip.startswith(f"{len(per_bus[bus])} EV charger") and f"bus {bus}" in tip
    assert all(c["load"] in tip for c in chargers if c["bus"] == bus)
    screenshot(page, "11-ev-adoption.png")
    page.get_by_label("Mark its chargers on the map").uncheck()
    assert page.locator("#map .ev-charger").count() == 0 and outlined(page) == []

    for table, rows in (("levels", 4), ("samples", 4)):
        href = page.locator(f"#ev-csv-{table}").get_attribute("href")
        assert href == f"/jobs/{job_id}/result?format=csv&table={table}"
        csv = requests.get(f"{server}{href}", timeout=30)
        assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 1 + rows
    assert page.problems == []


def test_load_study_errors_are_the_apis_words_and_cancel_stops_them(page: Any, server: str) -> None:
    refused = requests.post(f"{server}/scenarios/default/studies/load_hosting_capacity",
                            json={"buses": ["all"], "phases": 3, "step_kw": 10, "pf": 0.3}, timeout=30)
    assert refused.status_code == 422 and refused.json()["field"] == "pf"
    page.get_by_label("Load pf (lagging)").fill("0.3")
    page.get_by_role("button", name="Run load hosting capacity").click()
    page.wait_for_function("() => document.getElementById('lhc-error').textContent !== ''")
    assert page.locator("#lhc-error").inner_text() == refused.json()["message"]
    assert page.locator("#lhc-pf").get_attribute("aria-invalid") == "true"
    assert page.locator("#lhc-section").get_attribute("data-status") == "idle"

    # Each wrong input alone, the rest the form's defaults: the API's message, the one control marked invalid.
    ev = {"adoption_pct": {"start": 10, "stop": 100, "step": 10}, "samples": 20, "seed": 1, "charger_kW": 7.2,
          "coincidence": 1}
    wrong_inputs = (("coincidence", 2, "Coincidence", {**ev, "coincidence": 2}),
                    ("adoption_pct.step", 0, "Adoption every (%)",
                     {**ev, "adoption_pct": {**ev["adoption_pct"], "step": 0}}))
    for field, value, control, wrong in wrong_inputs:
        refused = requests.post(f"{server}/scenarios/default/studies/ev_adoption", json=wrong, timeout=30)
        assert refused.status_code == 422 and refused.json()["field"] == field
        page.get_by_label("Coincidence").fill("1")
        page.get_by_label("Adoption every (%)").fill("10")
        page.get_by_label(control).fill(str(value))
        page.get_by_role("button", name="Run EV adoption").click()
        page.wait_for_function("m => document.getElementById('ev-error').textContent === m",
                               arg=refused.json()["message"])
        invalid = page.eval_on_selector_all("#ev-form [aria-invalid='true']", "els => els.map(e => e.id)")
        assert invalid == [{"coincidence": "ev-coincidence", "adoption_pct.step": "ev-step"}[field]]

    # Long studies (10 kW steps at every bus; 1 % adoption steps in 200 samples), cancelled while they run.
    page.get_by_label("Load pf (lagging)").fill("0.95")
    page.get_by_label("Load steps of (kW)").fill("10")
    page.get_by_label("Coincidence").fill("1")
    page.get_by_label("Adoption from (%)").fill("1")
    page.get_by_label("Adoption every (%)").fill("1")
    page.get_by_label("EV samples").fill("200")
    for section, run, cancel in (("lhc-section", "Run load hosting capacity", "Cancel the load hosting capacity study"),
                                 ("ev-section", "Run EV adoption", "Cancel the EV adoption study")):
        page.get_by_role("button", name=run).click()
        page.wait_for_selector(f"#{section}[data-status='running']", timeout=STUDY_TIMEOUT_MS)
        assert page.get_by_role("button", name=run).is_disabled()
        page.get_by_role("button", name=cancel).click()
        job_id = wait_for_study(page, section, "cancelled")
        assert get(server, f"/jobs/{job_id}")["job"]["status"] == "cancelled"
        prefix = section.split("-")[0]
        assert page.locator(f"#{prefix}-progress-text").inner_text().startswith("Cancelled at ")
        assert page.get_by_role("button", name=run).is_enabled() and page.locator(f"#{prefix}-results").is_hidden()
    assert page.locator("#map").get_attribute("data-colouring") == "voltage"
    assert [p for p in page.problems if "status of 422" not in p] == []
