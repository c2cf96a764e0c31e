"""The smart inverter gain: one click runs hosting capacity with a volt-var trial generator and the same study without
it (from the hosting capacity panel's settings), and the table shows each bus without, with and the gain, as the
two jobs' results give them."""

from __future__ import annotations

from typing import Any

from .helpers import create_scenario_in_page, get, post, screenshot, wait_until_idle
from .test_studies_panel import wait_for_study


def test_one_click_runs_both_studies_and_tables_the_gain_per_bus(page: Any, server: str) -> None:
    sid = create_scenario_in_page(page, "smart")
    for neighbourhood in range(1, 15):  # light load, where the curves act (a change made elsewhere: the page follows)
        assert post(server, f"/scenarios/{sid}/modify_load_neighbourhood",
                    {"neighbourhood": neighbourhood, "factor": 0.25}).status_code == 200
    page.wait_for_function("() => document.body.dataset.sequence === '14'", timeout=30_000)
    wait_until_idle(page)
    sent: list[Any] = []
    page.on("request", lambda r: "/studies/" in r.url and sent.append(r.post_data_json))
    page.get_by_label("Generator phases").select_option("1")
    page.get_by_label("Step (kW)").fill("50")
    page.get_by_label("Inverter", exact=True).select_option("volt_var")
    page.get_by_role("button", name="Run with and without the inverter").click()
    smart_id = wait_for_study(page, "hcg-section")
    plain_id = wait_for_study(page, "hc-section")
    page.wait_for_selector("#hcg-results:not([hidden])")
    assert sorted(sent, key=lambda b: "inverter" in b) == [
        {"buses": ["all"], "phases": 1, "step_kw": 50},
        {"buses": ["all"], "phases": 1, "step_kw": 50, "inverter": {"mode": "volt_var"}}]

    smart = get(server, f"/jobs/{smart_id}")["job"]["result"]
    plain = get(server, f"/jobs/{plain_id}")["job"]["result"]
    assert smart["criteria"]["inverter"]["mode"] == "volt_var" and "inverter" not in plain["criteria"]
    without = {r["bus"]: r["hosting_capacity_kW"] for r in plain["buses"] if r["hosting_capacity_kW"] is not None}
    with_inverter = {r["bus"]: r["hosting_capacity_kW"] for r in smart["buses"]}
    rows = page.eval_on_selector_all("#hcg-rows tr", "els => els.map(e => [e.dataset.bus, Number(e.dataset.gain), "
                                                     "[...e.cells].map(c => c.textContent)])")
    assert {bus for bus, _, _ in rows} == set(without)
    for bus, gain, cells in rows:
        assert gain == with_inverter[bus] - without[bus], bus
        assert cells[1].replace(",", "") == f"{without[bus]:.0f}" and cells[2].replace(",", "") == f"{with_inverter[bus]:.0f}"
    gains = [gain for _, gain, _ in rows]
    assert gains == sorted(gains, reverse=True), "largest gain first"
    assert max(gains) > 0, "volt-var raises some buses' capacity at light load"
    figures = dict(zip(page.locator("#hcg-figures dt").all_inner_texts(), page.locator("#hcg-figures dd").all_inner_texts()))
    ordered = sorted(gains)
    median = ordered[(len(ordered) - 1) // 2]
    assert figures["Median gain"] == f"{'+' if median > 0 else ''}{median:,.0f} kW"
    assert figures["Most"].startswith(f"+{ordered[-1]:,.0f} kW at ")
    screenshot(page, "07-inverter-gain.png")

    # Run again with the same settings: the plain study is not run a second time.
    sent.clear()
    page.get_by_label("Inverter", exact=True).select_option("volt_watt")
    page.get_by_role("button", name="Run with and without the inverter").click()
    wait_for_study(page, "hcg-section")
    page.wait_for_selector("#hcg-results:not([hidden])")
    assert sent == [{"buses": ["all"], "phases": 1, "step_kw": 50, "inverter": {"mode": "volt_watt"}}]
    assert "volt-watt inverter" in page.locator("#hcg-note").inner_text()
    assert page.problems == []
