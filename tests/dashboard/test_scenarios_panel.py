"""Scenarios on the page: the picker (new, fork, delete), the journal and undo, the preview of a dry run, the diff
view, and the poll that follows changes made elsewhere."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from .helpers import (
    REPO,
    add_generator_in_page,
    assert_summary_matches,
    create_scenario_in_page,
    fill_generator_form,
    get,
    journal,
    post,
    screenshot,
    sequence,
    summary_values,
    summary_values_of,
    wait_for_change,
    wait_until_idle,
    worst_phase,
)
from .mapview import drawn_buses


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
    assert drawn_buses(page)["67"]["fill"] == page.evaluate(
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
    return {name: [bus["fill"], bus["delta"]] for name, bus in drawn_buses(tab).items()}


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
    first = diff["violations"]["cleared"][0]  # 1.5 MW at 67 relieves the overloaded head lines
    assert {v["element"] for v in diff["violations"]["cleared"]} >= {"Line.l115", "Line.l10"}
    assert page.locator("#diff-cleared li").first.inner_text() == \
        f"Line {first['element'].split('.', 1)[1]}: {first['value_pct']:.1f} % of its rating"
    assert page.locator("#diff-new li").inner_text() == "none"
    legend = page.locator("#legend-voltage").text_content()
    assert "Δ voltage vs the base case (pu)" in legend and "0 (no change)" in legend
    generation = page.locator("#diff-summary tr[data-key='total_generation_kW'] .delta").inner_text()
    assert generation == f"+{diff['summary']['total_generation_kW']['delta']:,.1f} kW"
    if os.environ.get("DASHBOARD_DOCS_SCREENSHOT") == "1":  # regenerate the README's picture from this state
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"), full_page=True, animations="disabled")
    screenshot(page, "05-diff-against-base.png")

    # A change while comparing: the diff follows it, and the overvoltages it causes are listed as new, with the
    # overloads of the 1/0 ACSR lateral (230 A) that carries its ~375 A from 114 to the mains at 108.
    add_generator_in_page(page, "114", "1", "900", "1")
    wait_until_idle(page)
    diff = get(server, f"/scenarios/{sid}/diff?against=base")
    assert diff["sequence"] == 2 and {v["type"] for v in diff["violations"]["new"]} == {"voltage", "thermal"}
    assert {v["element"] for v in diff["violations"]["new"] if v["type"] == "thermal"} == {
        "Line.l107", "Line.l109", "Line.l111", "Line.l112", "Line.l113"}
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
    mismatches = page.evaluate("""worst => window.dashboard.scene.buses
        .filter(b => b.fill !== window.voltageColour(worst[b.name])).map(b => b.name)""",
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
