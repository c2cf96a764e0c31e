"""EV adoption: how many of the feeder's customers can charge an electric vehicle before a limit is crossed.

EPRI's stochastic hosting-capacity method (J. Smith, M. Rylander et al., EPRI 1026640, 2012; `studies.stochastic`)
turned around, for new load: random customers get a charger at rising adoption, and the feeder gets a range. The
**minimum** adoption is the highest at which every placement passes, the **maximum** the highest at which any does.

- Customers are the deck's loads. A sample is a seeded random order of them (`studies.stochastic.sample_order`:
  `numpy.random.default_rng([seed, sample])`, so a sample does not depend on how many are asked for, nor on where
  it runs).
- At adoption P (% of customers) a sample has a charger at its first ceil(P x customers / 100) customers (at least
  one: P is above 0); a higher adoption keeps the lower one's chargers.
- A charger is a constant-power load (`engine.trial_loads`: OpenDSS load model 1, `status=fixed`) of `charger_kW`
  x `coincidence` kW at lagging power factor `pf`, connected where its customer's load connects
  (`engine.customer_pv.customer_connection`: across both legs at 240 V on a split-phase service, line to line
  for a line-to-line load, 3-phase at a 3-phase load).
- A trial is one power flow with every charger of a sample at one adoption, from the scenario's state (or each
  hour's, `studies.hours`), judged as load hosting capacity judges (`studies.limits`, nodes already below the low
  limit set apart as pre-existing, like overloads and high nodes). An adoption passes only when it passes at
  every hour. A sample walks its adoptions upward and stops at its first failure. Each sample is a task.

Orders are computed by the plan (here, in the server) and trials on the workers, from plain lists.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from engine.errors import NotConvergedError
from engine.interface import StudyEngine
from studies.hours import starting_reading
from studies.limits import Limits, StartingState, element_names, first_violation, preexisting_entries, starting_state
from studies.stochastic import FAILURE_KINDS

#: A charger's rating when the request gives none: 7.2 kW, an SAE J1772 AC Level 2 charger (J1772's Level 2 spans
#: 208-240 V up to 80 A, 19.2 kW) drawing 30 A at 240 V: the continuous load of a 40 A branch circuit, which the
#: NEC (NFPA 70, 625.41/625.42) sizes at 125 % of an EV charger's rating.
DEFAULT_CHARGER_KW = 7.2
#: The share of each charger's rating drawn at the studied hour when the request gives none: 1.0, every charger at
#: full power at once, the worst case. Published coincidence factors for residential charging fall with the number
#: of chargers sharing a feeder part (e.g. S. Carvalhosa et al., Energies 18(17) 4679, 2025, simulate 1 to 70 EVs),
#: so no one figure fits every feeder and hour; a planner who has one for theirs gives it.
DEFAULT_COINCIDENCE = 1.0
MAX_CHARGER_KW = 1000.0  # above any AC or DC charger sold (DC fast chargers reach 350 kW)
MIN_CHARGER_KW = 0.1
MAX_SAMPLES = 1000
MAX_LEVELS = 100


def charger_count(adoption_pct: float, customers: int) -> int:
    """The chargers at an adoption: the least whole number of customers that is at least `adoption_pct` % of them
    (at least one for any adoption above 0; the 1e-9 keeps 20 % of 85 at 17, not 18)."""
    return max(1, math.ceil(adoption_pct / 100.0 * customers - 1e-9))


def chargers_of(order: list[int], count: int, connections: list[Any], kw: float, pf: float) -> list[dict[str, Any]]:
    """The trial loads of the first `count` customers of `order`: each at its customer's connection (bus, nodes,
    conn), `kw` at lagging `pf`."""
    return [{"bus": connections[c].bus, "nodes": list(connections[c].nodes), "conn": connections[c].conn, "kw": kw,
             "pf": pf} for c in order[:count]]


def charger_list(order: list[int], count: int, connections: list[Any], kw: float, pf: float
                 ) -> list[dict[str, Any]]:
    """What a reader needs to replay a trial: each charger's customer (`load`), `bus`, `phases`, `nodes`, `conn`,
    rated `kv`, `kW` and `pf`, exactly as the trial connects it (`engine.trial_loads` orders a connection's nodes:
    a load on `76.3.1` connects across 1 and 3, the same load)."""
    return [{**connections[c].describe(), "nodes": sorted(connections[c].nodes), "kv": connections[c].kv, "kW": kw,
             "pf": pf} for c in order[:count]]


def trial(circuit: StudyEngine, loads: list[dict[str, Any]], start: StartingState, limits: Limits
          ) -> dict[str, Any] | None:
    """One trial from the state the circuit holds (`start`): the violation that bounds it, or None."""
    try:
        _, reading = circuit.preview_load_limits(loads)
    except NotConvergedError:
        return {"kind": "not_converged", "element": None, "value": sum(load["kw"] for load in loads), "limit": None}
    return first_violation(reading, start, limits, circuit.snapshot.layout)


def first_failure(circuit: StudyEngine, work: dict[str, Any], limits: Limits, start: StartingState, below: int
                  ) -> tuple[int, dict[str, Any] | None, int]:
    """Walk the sample's adoptions upward from the state the circuit holds, below position `below`: the position
    of the first failure (`below` when none), what bounds it, and the trials run."""
    connections = circuit.customer_connections()
    charger = work["charger"]
    for position, (_, count) in enumerate(work["levels"][:below]):
        found = trial(circuit, chargers_of(work["order"], count, connections, charger["kW"], charger["pf"]), start,
                      limits)
        if found:
            return position, found, position + 1
    return below, None, below


def run(circuit: StudyEngine, work: dict[str, Any]) -> dict[str, Any]:
    """A task: one sample walked upward through the adoptions until its first failure, from each starting state in
    turn (the scenario's, or each hour's, earliest first), each below the first failure found so far: an adoption
    passes only when it passes at every hour, and a failure binds at the earliest hour of equals."""
    limits = Limits(**work["limits"])
    layout = circuit.snapshot.layout
    elements = element_names(layout, circuit.transformer_names)
    failing, bound, trials, preexisting = len(work["levels"]), None, 0, []
    for hour in work.get("hours") or [None]:
        with starting_reading(circuit, hour) as reading:
            start = starting_state(reading, elements, limits, layout, low=True)
            preexisting += preexisting_entries(start, limits, hour and hour["hour_of_year"])
            position, found, count = first_failure(circuit, work, limits, start, failing)
        trials += count
        if found:
            failing, bound = position, {**found, **({"hour_of_year": hour["hour_of_year"]} if hour else {})}
    connections, charger = circuit.customer_connections(), work["charger"]

    def end(position: int) -> dict[str, Any]:
        pct, count = work["levels"][position]
        return {"adoption_pct": pct,
                "chargers": charger_list(work["order"], count, connections, charger["kW"], charger["pf"])}

    return {"sample": work["sample"], "last_pass": end(failing - 1) if failing > 0 else None,
            "first_failure": {**end(failing), "limited_by": bound} if bound else None, "trials": trials,
            "preexisting": preexisting}


# ---------------------------------------------------------------------------- the result, from the samples
def level_rows(pcts: list[float], counts: list[int], charger_kw: float, samples: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """One row per adoption: its chargers and their kW, samples passing it, and the samples failed by then (a
    sample stops at its first failure) by kind, with the element named most often among them (the first by name on
    a tie)."""
    rows = []
    for pct, count in zip(pcts, counts):
        failed = [s["first_failure"]["limited_by"] for s in samples
                  if s["first_failure"] and s["first_failure"]["adoption_pct"] <= pct]
        kinds = Counter(bound["kind"] for bound in failed)
        elements = Counter(bound["element"] for bound in failed if bound["element"])
        common = min(elements.items(), key=lambda item: (-item[1], item[0])) if elements else (None, 0)
        rows.append({"adoption_pct": pct, "chargers": count, "chargers_kW": round(count * charger_kw, 9),
                     "samples_passing": len(samples) - len(failed),
                     "samples_failing": {kind: kinds.get(kind, 0) for kind in FAILURE_KINDS},
                     "most_frequent_element": common[0], "most_frequent_element_samples": common[1]})
    return rows


def adoption_range(samples: list[dict[str, Any]], customers: int) -> dict[str, Any]:
    """min_adoption_pct: the least of the samples' last passing adoptions (0 for a sample failing at the first);
    max_adoption_pct: the greatest. With their numbers of chargers."""
    passing = [s["last_pass"]["adoption_pct"] if s["last_pass"] else 0.0 for s in samples]
    low, high = min(passing), max(passing)
    return {"min_adoption_pct": low, "min_adoption_chargers": charger_count(low, customers) if low else 0,
            "max_adoption_pct": high, "max_adoption_chargers": charger_count(high, customers) if high else 0}


def flat_level(row: dict[str, Any]) -> dict[str, Any]:
    """A levels row for CSV: the failing counts spread into columns."""
    return {**{k: v for k, v in row.items() if k != "samples_failing"},
            **{f"failing_{kind}": count for kind, count in row["samples_failing"].items()}}


def flat_sample(row: dict[str, Any]) -> dict[str, Any]:
    """A samples row for CSV: each end's adoption and chargers, and what bounds the sample (the chargers themselves
    are in the JSON result)."""
    passed, failed = row["last_pass"] or {}, row["first_failure"] or {}
    bound = failed.get("limited_by") or {}
    return {"sample": row["sample"], "last_pass_pct": passed.get("adoption_pct", 0.0),
            "last_pass_chargers": len(passed.get("chargers", [])),
            "first_failure_pct": failed.get("adoption_pct"),
            "first_failure_chargers": len(failed["chargers"]) if failed else None,
            "limited_by_kind": bound.get("kind"), "limited_by_element": bound.get("element"),
            "limited_by_value": bound.get("value"), "limited_by_limit": bound.get("limit"),
            "limited_by_hour_of_year": bound.get("hour_of_year"), "trials": row["trials"]}
