"""Never crash: inverter generators added, updated (changing mode), removed, undone, previewed, rebuilt, forked and
evicted in every order, and run through study trials, series and batch cases, in a process of their own
(`inverter_lifecycle.py`) so that an engine crash fails the test instead of killing pytest.

The sessions follow de Bruijn sequences: every ordered run of 3 lifecycle operations, and every ordered pair of
all 12 operations (studies included), each at least once; buses, kW, modes and curves vary with the seed.

The same sessions compare engine hosts (`--engine-hosts 2`) with the single process, with and without a host
SIGKILLed between requests (`inverter_lifecycle.compare_hosts` says what "the same answer" means after a rebuild).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from support.paths import TESTS

WORKER = TESTS / "support" / "inverter_lifecycle.py"
LIFECYCLE = ["add", "update", "delete", "undo", "dry", "rebuild", "fork", "evict"]


def run_session(spec: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(WORKER), json.dumps(spec)], capture_output=True, text=True,
                          timeout=timeout)


def report_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, (f"exit status {result.returncode} (a negative one is the signal that killed "
                                    f"the process)\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_order_of_three_lifecycle_operations_keeps_the_engine_alive_and_consistent():
    report = report_of(run_session({"seed": 1, "order": 3, "kinds": LIFECYCLE}))
    assert report["operations"] == 8 ** 3 + 2
    assert set(report["statuses"]) == set(LIFECYCLE)
    assert report["statuses"]["add"].get("200", 0) > 20 and report["statuses"]["fork"]["201"] > 20


@pytest.mark.parametrize("seed", [1, 2])
def test_every_pair_of_operations_studies_included_keeps_the_engine_alive_and_consistent(seed):
    """Hosting-capacity trials, series, batch cases and stochastic (customer) trials among the lifecycle's."""
    report = report_of(run_session({"seed": seed, "order": 2}))
    assert report["operations"] == 12 ** 2 + 1
    assert {"trial", "series", "batch", "customers"} <= set(report["statuses"])


def test_the_session_would_catch_a_crash():
    """The same session with the one forbidden sequence put in (an InvControl defined over its PVSystem switched
    off) kills the engine's process: the harness sees the signal, so the tests above can fail."""
    result = run_session({"seed": 1, "order": 2, "kinds": ["add", "update"], "sabotage": True}, timeout=120)
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stderr[-2000:])


HOSTED_LIFECYCLE = ["add", "update", "delete", "undo", "rebuild", "evict", "kill"]


def test_engine_hosts_answer_every_order_of_operations_byte_for_byte_like_one_process():
    """Every ordered pair of the lifecycle's operations, inverters included, in one process and on 2 engine hosts:
    the same bytes for every answer."""
    report = report_of(run_session({"seed": 4, "order": 2, "compare_hosts": True, "kinds": LIFECYCLE}))
    assert report["operations"] == 8 ** 2 + 1 and report["byte_identical"] == report["answers"] > 50


@pytest.mark.slow
def test_hosts_killed_in_every_order_of_three_operations_answer_as_one_process():
    """Plain generators, with a host SIGKILLed between requests in every ordered run of 3 operations: its scenarios
    are rebuilt from their journals and answer as the single process does, to the solver's noise."""
    report = report_of(run_session({"seed": 3, "order": 3, "compare_hosts": True, "plain": True,
                                    "kinds": HOSTED_LIFECYCLE}))
    assert report["operations"] == 7 ** 3 + 2 and report["restarts"] > 20
    assert report["statuses"]["rebuild"].get("201", 0) > 10


def test_hosts_killed_among_inverter_changes_stay_within_the_controls_tolerance():
    report = report_of(run_session({"seed": 5, "order": 2, "compare_hosts": True, "kinds": LIFECYCLE + ["kill"]}))
    assert report["operations"] == 9 ** 2 + 1 and report["restarts"] > 5
