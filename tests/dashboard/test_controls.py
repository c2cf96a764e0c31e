"""The "Change the grid" panel: changes made with the forms and buttons (and the keyboard), the API's errors next to the
control that caused them, the API key, and changes made by other clients showing up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from support.server import start_server, stop_server

from .conftest import csp_violations, open_tab
from .helpers import (
    assert_summary_matches,
    fill_generator_form,
    get,
    post,
    screenshot,
    sequence,
    summary_values,
    wait_for_change,
    wait_until_idle,
    worst_phase,
)
from .mapview import click_bus, drawn_buses


def test_adding_a_generator_through_the_form_updates_summary_and_colour(page: Any, server: str) -> None:
    screenshot(page, "01-base-case.png")
    click_bus(page, "67")
    assert page.get_by_label("Bus", exact=True).input_value() == "67"
    assert drawn_buses(page)["67"]["selected"]
    colour_before = drawn_buses(page)["67"]["fill"]

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
    colour_after = drawn_buses(page)["67"]["fill"]
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
    assert drawn_buses(page)["48"]["selected"]
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


def test_the_api_key_field_is_sent_with_changes(browser: Any, tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--no-access-log", "--api-key", "s3cret", env={"IEEE123_API_KEY": ""})
    context, tab = open_tab(browser, f"{url}/")
    try:
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
        assert csp_violations(tab) == []
    finally:
        context.close()
        stop_server(process)
