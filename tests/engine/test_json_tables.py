"""The JSON of bus_details and line_flows comes from templates cut once per compile (JsonTable).

The reference is orjson serialising the plain row dicts, built from the same arrays by ordinary Python: the
template path must give the same bytes, for the real feeder in several states and for awkward synthetic
tables (quotes and non-ASCII in names, NaN, infinities, -0.0, extreme magnitudes).
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings, strategies as st

from engine.results import NUMBER_SLOT, JsonTable, Snapshot
from simulation_core import OpenDSSCircuit


def assert_tables_match_rows(snapshot: Snapshot) -> None:
    assert snapshot.bus_details_json == orjson.dumps(snapshot.bus_details)
    assert snapshot.line_flows_json == orjson.dumps(snapshot.line_flows)
    assert orjson.loads(snapshot.results_json) == orjson.loads(orjson.dumps(snapshot.results))


def test_base_case_tables_equal_the_row_dicts(base_circuit: OpenDSSCircuit):
    snapshot = base_circuit.snapshot
    assert_tables_match_rows(snapshot)
    rows = orjson.loads(snapshot.bus_details_json)
    assert len(rows) == 278 and rows[0]["Bus"] == snapshot.layout.node_bus[0]
    lines = orjson.loads(snapshot.line_flows_json)
    assert len(lines) == 126
    assert [len(r["I_A"]) for r in lines] == [r["Phases"] for r in lines]


def test_tables_follow_changes_including_new_generators(circuit: OpenDSSCircuit):
    first = circuit.add_generator("16", 1, 150.0)
    assert_tables_match_rows(first.snapshot)
    for change in (lambda: circuit.add_generator("67", 3, 400.0),
                   lambda: circuit.scale_neighbourhood_loads(5, 1.7),
                   lambda: circuit.remove_generator(first["generator"])):
        snapshot = change().snapshot
        assert_tables_match_rows(snapshot)
    rows = orjson.loads(snapshot.bus_details_json)
    assert sum(r["Gen_kW"] for r in rows) == pytest.approx(400.0, rel=1e-3)


def test_every_number_lands_in_its_own_slot(base_circuit: OpenDSSCircuit):
    """Distinct numbers per array and position: a shifted or swapped slot would show."""
    layout = base_circuit.snapshot.layout
    n_nodes, n_lines = len(layout.node_bus), len(layout.line_names)
    n_currents = layout.line_current_ends[-1]
    arrays = {key: np.arange(size, dtype=float) + offset for key, size, offset in (
        ("vmag_pu", n_nodes, 0.125), ("vangle_deg", n_nodes, 1e4), ("load_kw", n_nodes, 2e4),
        ("load_kvar", n_nodes, 3e4), ("gen_kw", n_nodes, 4e4), ("gen_kvar", n_nodes, 5e4),
        ("line_p_kw", n_lines, 6e4), ("line_q_kvar", n_lines, 7e4), ("line_currents_a", n_currents, 8e4),
        ("line_loading_pct", n_lines, 9e4), ("line_losses_kw", n_lines, 1e5))}
    snapshot = Snapshot(0, layout, arrays, {})
    assert snapshot.bus_details_json == orjson.dumps(snapshot.bus_details)
    assert snapshot.line_flows_json == orjson.dumps(snapshot.line_flows)
    third = orjson.loads(snapshot.line_flows_json)[2]
    start = layout.line_current_starts[2]
    assert third["P_kW"] == 6e4 + 2 and third["Losses_kW"] == 1e5 + 2
    assert third["I_A"] == [8e4 + start + k for k in range(third["Phases"])]


#: Any text but the slot marker itself (a NUL-framed word no bus or line name can hold): a name equal to it would
#: be taken for a number's place, which is the template's one assumption about its rows.
names = st.text(min_size=0, max_size=12).filter(lambda name: name != NUMBER_SLOT)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, st.lists(numbers, min_size=0, max_size=4), numbers), max_size=20))
def test_synthetic_tables_serialise_like_orjson(rows):
    """Any names, any floats: template plus numbers gives orjson's own bytes for the same rows."""
    template = JsonTable([{"name": name, "values": [NUMBER_SLOT] * len(values), "x": NUMBER_SLOT}
                          for name, values, _ in rows])
    flat = np.array([v for _, values, x in rows for v in (*values, x)], dtype=float)
    expected = orjson.dumps([{"name": name, "values": values, "x": x} for name, values, x in rows],
                            option=orjson.OPT_SERIALIZE_NUMPY)
    assert template.render(flat) == expected


def test_nan_and_infinities_become_null():
    template = JsonTable([{"a": NUMBER_SLOT, "b": NUMBER_SLOT, "c": NUMBER_SLOT}])
    assert orjson.loads(template.render(np.array([math.nan, math.inf, -1.5]))) == [{"a": None, "b": None, "c": -1.5}]


def test_wrong_number_count_is_refused():
    template = JsonTable([{"a": NUMBER_SLOT}, {"a": NUMBER_SLOT}])
    with pytest.raises(ValueError, match="expected 2 numbers"):
        template.render(np.array([1.0]))
    assert JsonTable([]).render(np.array([])) == b"[]"


def test_the_engine_lock_is_free_while_a_response_is_serialised(circuit: OpenDSSCircuit, monkeypatch):
    """The lock guards the engine, not the serialisation: another thread can take it while a change's
    tables are being rendered for its response."""
    import threading

    from api import create_app

    observed: list[bool] = []
    render = JsonTable.render

    def render_and_probe(self: JsonTable, numbers: np.ndarray) -> bytes:
        def try_lock() -> None:
            got = circuit._lock.acquire(blocking=False)
            observed.append(got)
            if got:
                circuit._lock.release()

        probe = threading.Thread(target=try_lock)
        probe.start()
        probe.join()
        return render(self, numbers)

    monkeypatch.setattr(JsonTable, "render", render_and_probe)
    client = create_app({"CIRCUIT": circuit, "TESTING": True}).test_client()
    response = client.post("/modify_load_neighbourhood", json={"neighbourhood": 5, "factor": 1.1})
    assert response.status_code == 200
    assert observed == [True, True]  # bus_details and line_flows, each rendered with the lock free
