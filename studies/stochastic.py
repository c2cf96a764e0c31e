"""Stochastic hosting capacity: the feeder's range over many random placements of customer PV.

The method is EPRI's (J. Smith, M. Rylander et al., "Stochastic Analysis to Determine Feeder Hosting Capacity
for Distributed Solar PV", EPRI 1026640, 2012), which NREL's DISCO reproduces: as penetration grows, random
placements of customer PV are checked, and the feeder gets a range. The **minimum** hosting capacity is the
highest penetration at which every placement passes, the **maximum** the highest at which any passes.

- Customers are the loads. A sample is a seeded random order of them (`numpy.random.default_rng([seed,
  sample])`, so a sample's order does not depend on how many samples are asked for, nor on where it runs).
- At a penetration P (% of the scenario's total load kW set-points) a sample has PV at its first customers, each
  system its load kW x `size_ratio`, the last one partial so the total is exactly P; a higher penetration keeps
  the lower one's systems.
- A trial is one power flow with every system of the sample at one penetration, from the scenario's state (or
  from each hour's, `studies.hours`), judged as a hosting-capacity trial (`studies.limits`: the same limits and
  pre-existing rule). A penetration passes only when it passes at every hour. A sample walks its penetrations
  upward and stops at its first failure. Each sample is a task.

Placements are computed by the plan (here, in the server) and trials on the workers, from plain lists.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from engine.errors import NotConvergedError
from engine.interface import StudyEngine
from studies.hours import starting_reading
from studies.limits import (KIND_ORDER, Limits, StartingState, element_names, first_violation, preexisting_entries,
                            starting_state)

FAILURE_KINDS = (*KIND_ORDER, "not_converged")
MAX_SAMPLES = 1000
MAX_LEVELS = 100
MAX_SIZE_RATIO = 10.0


def levels(start: float, stop: float, step: float) -> list[float]:
    """The penetrations from start to stop (included when on the grid) by step, as written (no float drift)."""
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    return [round(start + k * step, 9) for k in range(count)]


def penetration_kw(pct: float, total_load_kw: float) -> float:
    """A penetration's PV kW (rounded to 1e-9 kW, so 110 % of 3490 kW is 3839 kW, not 3839.0000000000005)."""
    return round(pct / 100.0 * total_load_kw, 9)


def default_size_ratio(stop: float) -> float:
    """A customer's system as large as its load (EPRI sizes customer PV from the customer's load), or larger when
    `stop` asks more than every customer's load: the least ratio at which every customer together reaches stop."""
    return max(1.0, stop / 100.0)


def sample_order(seed: int, sample: int, customers: int) -> list[int]:
    """The customers of one sample in its random order."""
    return np.random.default_rng([seed, sample]).permutation(customers).tolist()


def placements(order: list[list[float]], target_kw: float) -> list[tuple[int, float]]:
    """The systems at a penetration: `(customer, kW)` for the first customers of `order` (`[customer, full
    kW]`, customers without load left out), the last one cut so the total is `target_kw`."""
    systems: list[tuple[int, float]] = []
    placed = 0.0
    for customer, full_kw in order:
        if placed + full_kw >= target_kw:
            rest = target_kw - placed
            if rest > 1e-9:
                systems.append((int(customer), rest))
            return systems
        systems.append((int(customer), full_kw))
        placed += full_kw
    return systems


def pv_list(systems: list[tuple[int, float]], customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a reader needs to replay a trial: each system's bus, phases, nodes and kW."""
    return [{"bus": customers[c]["bus"], "phases": customers[c]["phases"], "nodes": customers[c]["nodes"], "kW": kw}
            for c, kw in systems]


def trial(circuit: StudyEngine, systems: list[tuple[int, float]], start: StartingState, limits: Limits,
          target_kw: float, inverter: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """One trial from the state the circuit holds (`start`): the violation that bounds it, or None. With
    `inverter`, every system is a smart inverter rated at its own kW (a trial whose controls do not settle is
    not_converged)."""
    try:
        reading = circuit.preview_customer_pv_limits(systems, inverter)
    except NotConvergedError:
        return {"kind": "not_converged", "element": None, "value": target_kw, "limit": None}
    return first_violation(reading, start, limits, circuit.snapshot.layout)


def first_failure(circuit: StudyEngine, work: dict[str, Any], limits: Limits, start: StartingState, below: int
                  ) -> tuple[int, dict[str, Any] | None, int]:
    """Walk the sample's penetrations upward from the state the circuit holds, below position `below`: the
    position of the first failure (`below` when none), what bounds it, and the trials run."""
    for position, (_, target_kw) in enumerate(work["levels"][:below]):
        found = trial(circuit, placements(work["order"], target_kw), start, limits, target_kw, work.get("inverter"))
        if found:
            return position, found, position + 1
    return below, None, below


def run(circuit: StudyEngine, work: dict[str, Any]) -> dict[str, Any]:
    """A task: one sample walked upward through the penetrations until its first failure, from each starting
    state in turn (the scenario's, or each hour's, earliest first), each below the first failure found so far: a
    penetration passes only when it passes at every hour, and a failure binds at the earliest hour of equals."""
    limits = Limits(**work["limits"])
    elements = element_names(circuit.snapshot.layout, circuit.transformer_names)
    failing, bound, trials, preexisting = len(work["levels"]), None, 0, []
    for hour in work.get("hours") or [None]:
        with starting_reading(circuit, hour) as reading:
            start = starting_state(reading, elements, limits, circuit.snapshot.layout)
            preexisting += preexisting_entries(start, limits, hour and hour["hour_of_year"])
            position, found, count = first_failure(circuit, work, limits, start, failing)
        trials += count
        if found:
            failing, bound = position, {**found, **({"hour_of_year": hour["hour_of_year"]} if hour else {})}
    customers = [connection.describe() for connection in circuit.customer_connections()]

    def end(position: int) -> dict[str, Any]:
        pct, target_kw = work["levels"][position]
        return {"penetration_pct": pct, "pv_kW": target_kw,
                "pv": pv_list(placements(work["order"], target_kw), customers)}

    return {"sample": work["sample"], "last_pass": end(failing - 1) if failing > 0 else None,
            "first_failure": {**end(failing), "limited_by": bound} if bound else None, "trials": trials,
            "preexisting": preexisting}


# ---------------------------------------------------------------------------- the result, from the samples
def level_rows(pcts: list[float], pv_kw: list[float], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per penetration: samples passing it, and the samples failed by then (a sample stops at its first
    failure) by kind, with the element named most often among them (the first by name on a tie)."""
    rows = []
    for pct, kw in zip(pcts, pv_kw):
        failed = [s["first_failure"]["limited_by"] for s in samples
                  if s["first_failure"] and s["first_failure"]["penetration_pct"] <= pct]
        kinds = Counter(bound["kind"] for bound in failed)
        elements = Counter(bound["element"] for bound in failed if bound["element"])
        common = min(elements.items(), key=lambda item: (-item[1], item[0])) if elements else (None, 0)
        rows.append({"penetration_pct": pct, "pv_kW": kw, "samples_passing": len(samples) - len(failed),
                     "samples_failing": {kind: kinds.get(kind, 0) for kind in FAILURE_KINDS},
                     "most_frequent_element": common[0], "most_frequent_element_samples": common[1]})
    return rows


def hosting_range(samples: list[dict[str, Any]], total_load_kw: float) -> dict[str, float]:
    """min_hc_pct: the least of the samples' last passing penetrations (0 for a sample failing at the first
    level); max_hc_pct: the greatest. With their kW."""
    passing = [s["last_pass"]["penetration_pct"] if s["last_pass"] else 0.0 for s in samples]
    low, high = min(passing), max(passing)
    return {"min_hc_pct": low, "min_hc_kW": penetration_kw(low, total_load_kw),
            "max_hc_pct": high, "max_hc_kW": penetration_kw(high, total_load_kw)}


def flat_level(row: dict[str, Any]) -> dict[str, Any]:
    """A levels row for CSV: the failing counts spread into columns."""
    return {"penetration_pct": row["penetration_pct"], "pv_kW": row["pv_kW"],
            "samples_passing": row["samples_passing"],
            **{f"failing_{kind}": count for kind, count in row["samples_failing"].items()},
            "most_frequent_element": row["most_frequent_element"],
            "most_frequent_element_samples": row["most_frequent_element_samples"]}


def flat_sample(row: dict[str, Any]) -> dict[str, Any]:
    """A samples row for CSV: each end's penetration, kW and count of systems, and what bounds the sample (the
    systems themselves are in the JSON result)."""
    passed, failed = row["last_pass"] or {}, row["first_failure"] or {}
    bound = failed.get("limited_by") or {}
    return {"sample": row["sample"], "last_pass_pct": passed.get("penetration_pct", 0.0),
            "last_pass_kW": passed.get("pv_kW", 0.0), "last_pass_systems": len(passed.get("pv", [])),
            "first_failure_pct": failed.get("penetration_pct"), "first_failure_kW": failed.get("pv_kW"),
            "first_failure_systems": len(failed["pv"]) if failed else None,
            "limited_by_kind": bound.get("kind"), "limited_by_element": bound.get("element"),
            "limited_by_value": bound.get("value"), "limited_by_limit": bound.get("limit"), "trials": row["trials"]}
