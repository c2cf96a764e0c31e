"""Trial loads in a fuzzed sequence of changes (issue 30): whatever trial loads a study tries between a scenario's
adds, updates, removals, scalings, undos and rebuilds (any bus, any size, refused or not converging), the engine
never crashes and its state stays the one its changes make: after every step it equals a fresh engine rebuilt from
the same surviving changes within the power flow's tolerance (1e-7 pu: a trial's roll-back re-solves from the
trial's voltages, as every dry run does, so a later change may converge ~1e-9 pu away from a fresh engine's), and a
trial never changes the answer of the next change beyond that.

On IEEE 13 (public deck, `../shared/reference/feeders/`) with a delta 480 V bus and a split-phase service added, as
tests/engine/test_trial_loads.py builds it; one engine per example, its trial loads kept between steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.circuit import OpenDSSCircuit
from engine.errors import SimulationError
from support.bare_feeder import SITES_DECK_TEXT

STATE_PU = 1e-7  # the solver's convergence tolerance on this deck (engine.solver.TOLERANCE_PU)
DECK = SITES_DECK_TEXT  # IEEE 13 with a delta-delta 480 V bus and a split-phase service
BUSES = ["671", "675", "652", "611", "634", "d480", "svc", "house", "650", "rg60"]

trial = st.fixed_dictionaries({"bus": st.sampled_from(BUSES), "phases": st.sampled_from([1, 3]),
                               "kw": st.floats(min_value=0.0, max_value=5000.0), "pf": st.floats(0.5, 1.0)})
step = st.one_of(
    st.tuples(st.just("trial"), st.lists(trial, min_size=1, max_size=4)),
    st.tuples(st.just("add"), st.fixed_dictionaries({"op": st.just("add_generator"), "bus_name": st.sampled_from(BUSES),
                                                     "phases": st.sampled_from([1, 3]),
                                                     "kw": st.floats(min_value=0.0, max_value=800.0)})),
    st.tuples(st.just("scale"), st.fixed_dictionaries({"op": st.just("modify_load_neighbourhood"),
                                                       "neighbourhood": st.integers(1, 3),
                                                       "factor": st.floats(0.2, 2.0)})),
    st.tuples(st.just("undo"), st.none()),
    st.tuples(st.just("rebuild"), st.none()),
)


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    master = tmp_path_factory.mktemp("decks") / "sites.dss"
    master.write_text(DECK)
    return master


def test_trial_loads_among_changes_never_crash_nor_change_the_state(deck: Path) -> None:
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(step, min_size=3, max_size=10))
    def run(steps: list[tuple[str, Any]]) -> None:
        circuit = OpenDSSCircuit(deck, None)
        ops: list[dict[str, Any]] = []
        try:
            for kind, value in steps:
                if kind == "trial":
                    try:
                        circuit.preview_load_limits(value)
                    except SimulationError:
                        pass  # refused (a dead or unsuitable bus) or not converging: rolled back
                elif kind in ("add", "scale"):
                    try:
                        circuit.apply(value)
                        ops.append(value)
                    except SimulationError:
                        pass
                elif kind == "undo" and ops:
                    ops.pop()
                    circuit.rebuild(ops)
                elif kind == "rebuild":
                    circuit.rebuild(ops)
                fresh = OpenDSSCircuit(deck, None)
                try:
                    fresh.rebuild(ops)
                    np.testing.assert_allclose(circuit.snapshot.arrays["vmag_pu"], fresh.snapshot.arrays["vmag_pu"],
                                               rtol=0, atol=STATE_PU, err_msg=f"after {kind} {value}")
                    assert circuit.load_setpoints_kw() == pytest.approx(fresh.load_setpoints_kw(), rel=1e-12)
                finally:
                    fresh.close()
            # the next change after all the trials answers as on the fresh engine
            change = {"op": "add_generator", "bus_name": "675", "phases": 3, "kw": 123.0}
            fresh = OpenDSSCircuit(deck, None)
            try:
                fresh.rebuild(ops)
                ours, theirs = circuit.apply(change, dry_run=True), fresh.apply(change, dry_run=True)
                np.testing.assert_allclose(ours.snapshot.arrays["vmag_pu"], theirs.snapshot.arrays["vmag_pu"],
                                           rtol=0, atol=STATE_PU)
            finally:
                fresh.close()
        finally:
            circuit.close()

    run()
