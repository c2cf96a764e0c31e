"""The voltage profile and the summary panel: the API's numbers, drawn and written."""

from __future__ import annotations

from typing import Any

from .helpers import assert_summary_matches, get


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
