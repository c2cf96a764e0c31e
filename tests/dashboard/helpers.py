"""What the dashboard tests share besides their fixtures: the API read directly, the page's state read back, and
the steps a person takes on the page (fill a form, create a scenario), each waiting until the page is at rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from support.paths import REPO

ARTIFACTS = REPO / "test-artifacts" / "dashboard"
STATIC = REPO / "static"
SUMMARY_IDS = {
    "summary-source-kw": "total_circuit_power_kW",
    "summary-load-kw": "total_load_kW",
    "summary-gen-kw": "total_generation_kW",
    "summary-losses-kw": "total_losses_kW",
    "summary-voltage-violations": "voltage_violations",
    "summary-thermal-violations": "thermal_violations",
}


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


def summary_values_of(state: dict) -> dict[str, float]:
    """What summary_values() should read for this state."""
    summary, profile = state["results"]["power_summary"], state["results"]["voltage_profile"]
    return {**{k: summary[v] for k, v in SUMMARY_IDS.items()},
            "summary-vmin": profile["min_voltage_pu"], "summary-vmax": profile["max_voltage_pu"]}
