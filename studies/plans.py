"""Study plans: how a study splits into tasks and how the tasks' results make its answer.

A plan gives its first tasks, takes each result (and may answer with further tasks: a time series runs its
chunks one after the other, each from the taps the last one left), and assembles the result at the end.
Plans run in the server (or the command line); tasks run wherever the executor sends them.
"""

from __future__ import annotations

from typing import Any

from studies import batch, ev_adoption, hosting_capacity, hours, load_hosting_capacity, stochastic, time_series
from studies.hosting_capacity import Criteria
from studies.limits import Limits, default_rated_limits
from engine.settings import EngineSettings

CASES_PER_TASK = 10


class Plan:
    kind = ""
    tables: tuple[str, ...] = ()  # a result with several tables: their names (the first is the CSV's default)

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int) -> None:
        self.engine, self.ops, self.scenario, self.sequence = engine, ops, scenario, sequence
        self.total = 0

    def task(self, work: dict[str, Any]) -> dict[str, Any]:
        return {"kind": self.kind, "engine": self.engine, "ops": self.ops, "work": work}

    def first_tasks(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def take(self, task: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def flat_rows(result: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError


class HostingCapacityPlan(Plan):
    """One task per bus and starting state (the scenario's, or each hour's); buses that cannot host a generator
    get a row with the reason and no task. The result lists each starting state's pre-existing overloads once."""

    kind = "hosting_capacity"

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int,
                 buses: list[dict[str, Any]], phases: int, criteria: Criteria,
                 hours: list[dict[str, Any]] | None = None, shapes: dict[str, Any] | None = None,
                 inverter: dict[str, Any] | None = None, refused: dict[str, str] | None = None,
                 deck: time_series.DeckShapes | None = None, load_shapes: dict[str, Any] | None = None) -> None:
        """`refused`: the buses that cannot host a generator, with the reason (`circuit.generator_refusals`)."""
        super().__init__(engine, ops, scenario, sequence)
        refused = refused or {}
        self.criteria, self.phases, self.hours, self.shapes = criteria, phases, hours, shapes
        self.deck, self.load_shapes = deck, load_shapes  # (`studies.requests.series_shapes`)
        self.trial = {"inverter": inverter} if inverter is not None else {}  # (absent: the answer as before)
        # Each distinct hour once (a named hour may fall on one also given by number); None: the scenario's state.
        self.starts: list[int | None] = list(dict.fromkeys(h["hour_of_year"] for h in hours)) if hours else [None]
        self.rows: list[dict[str, Any] | None] = []
        self.work: list[tuple[int, str, int]] = []
        for position, bus in enumerate(buses):
            if bus["name"] in refused:
                self.rows.append({"bus": bus["name"], "phases": None, "nodes": [], "hosting_capacity_kW": None,
                                  "limited_by": None, "trials": 0, "reason": refused[bus["name"]],
                                  "binding_hour": None, "by_hour": None})
                continue
            three = phases == 3 and {1, 2, 3} <= set(bus["nodes"])
            self.rows.append(None)
            self.work.append((position, bus["name"], 3 if three else 1))
        self.by_start: dict[int, dict[int | None, dict[str, Any]]] = {}
        self.preexisting: dict[int | None, list[dict[str, Any]]] = {}
        self.total = len(self.work) * len(self.starts)

    def first_tasks(self) -> list[dict[str, Any]]:
        hour_works = {h: None if h is None else hours.hour_work(self.shapes or hours.DEFAULT_SHAPES, h, self.deck)
                      for h in self.starts}
        return [self.task({"index": position, "buses": [[bus, phases]], "criteria": self.criteria.describe(),
                           "hour": hour_works[h], **self.trial})
                for position, bus, phases in self.work for h in self.starts]

    def take(self, task: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
        hour = task["work"]["hour"]
        start = None if hour is None else hour["hour_of_year"]
        (row,) = result["rows"]
        self.by_start.setdefault(task["work"]["index"], {})[start] = row
        self.preexisting.setdefault(start, result["preexisting"])
        return []

    def result(self) -> dict[str, Any]:
        for position, by_start in self.by_start.items():
            self.rows[position] = hosting_capacity.least_over_hours(by_start) if self.hours else \
                {**by_start[None], "binding_hour": None, "by_hour": None}
        described = {"buses": self.rows, "criteria": {**self.criteria.describe(), "phases": self.phases, **self.trial},
                     "preexisting": [entry for start in self.starts for entry in self.preexisting.get(start, [])],
                     "default_rated_limits": default_rated_limits(
                         ((row["bus"], row["limited_by"]) for row in self.rows if row), "buses"),
                     "hours": self.hours, "scenario": self.scenario, "sequence": self.sequence}
        if self.hours:
            described["shapes"] = self.shapes
            described["load_shapes"] = self.load_shapes
        return described

    @staticmethod
    def flat_rows(result: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        return [hosting_capacity.flat_row(row) for row in result["buses"]]


class LoadHostingCapacityPlan(HostingCapacityPlan):
    """Hosting capacity's plan for new load (`studies.load_hosting_capacity`): the same tasks, rows and result, each
    trial a constant-power load at power factor `pf` (lagging) instead of a generator; `criteria` says the pf."""

    kind = "load_hosting_capacity"

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int,
                 buses: list[dict[str, Any]], phases: int, criteria: Criteria, pf: float,
                 hours: list[dict[str, Any]] | None = None, shapes: dict[str, Any] | None = None,
                 refused: dict[str, str] | None = None, deck: time_series.DeckShapes | None = None,
                 load_shapes: dict[str, Any] | None = None) -> None:
        super().__init__(engine, ops, scenario, sequence, buses, phases, criteria, hours, shapes, None, refused, deck,
                         load_shapes)
        self.trial = {"pf": pf}


class TimeSeriesPlan(Plan):
    """Chunks of hours, one after the other."""

    kind = "time_series"

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int,
                 spec: dict[str, Any], deck: time_series.DeckShapes | None = None,
                 load_shapes: dict[str, Any] | None = None, chunk_hours: int | None = None) -> None:
        """`deck`: the deck's shapes when `load_shape` is "deck"; `load_shapes`: what the result says the loads
        follow (`time_series.shapes_followed`); `chunk_hours`: hours per chunk (`time_series.chunk_hours` of the
        feeder; default CHUNK_HOURS)."""
        super().__init__(engine, ops, scenario, sequence)
        self.spec, self.deck, self.load_shapes = spec, deck, load_shapes
        self.chunk_hours = chunk_hours or time_series.CHUNK_HOURS
        self.starts = list(range(0, spec["hours"], self.chunk_hours))
        self.total = len(self.starts)
        self.rows: list[dict[str, Any]] = []
        self.initial_taps: dict[str, int] | None = None

    def _chunk(self, number: int, start: dict[str, Any] | None) -> dict[str, Any]:
        """Chunk `number`, starting from the controls (taps and capacitor banks) the chunk before left."""
        first = self.starts[number]
        count = min(self.chunk_hours, self.spec["hours"] - first)
        return self.task({**time_series.chunk_work(self.spec, first, count, self.deck), "chunk": number,
                          "start": start})

    def first_tasks(self) -> list[dict[str, Any]]:
        return [self._chunk(0, None)]

    def take(self, task: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
        number = task["work"]["chunk"]
        if number == 0:
            self.initial_taps = result["initial_taps"]
        self.rows += result["rows"]
        return [self._chunk(number + 1, result["final"])] if number + 1 < self.total else []

    def result(self) -> dict[str, Any]:
        named = {k: v if isinstance(v, str) else "inline" for k, v in self.spec.items()
                 if k in ("load_shape", "generator_shape")}
        return {"hours": time_series.hour_rows_with_year_hour(self.rows, self.spec["start_hour"]),
                "totals": time_series.totals(self.rows, self.initial_taps or {}),
                "spec": {"hours": self.spec["hours"], "start_hour": self.spec["start_hour"], **named,
                         "neighbourhood_shapes": {nb: s if isinstance(s, str) else "inline"
                                                  for nb, s in self.spec["neighbourhood_shapes"].items()}},
                "load_shapes": self.load_shapes, "scenario": self.scenario, "sequence": self.sequence}

    @staticmethod
    def flat_rows(result: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        return [time_series.flat_row(row) for row in result["hours"]]


class BatchPlan(Plan):
    """Groups of cases, each case from the scenario's state."""

    kind = "batch"

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int,
                 cases: list[dict[str, Any]]) -> None:
        super().__init__(engine, ops, scenario, sequence)
        self.cases = cases
        self.groups = [list(range(i, min(i + CASES_PER_TASK, len(cases)))) for i in range(0, len(cases),
                                                                                         CASES_PER_TASK)]
        self.total = len(self.groups)
        self.rows: list[dict[str, Any] | None] = [None] * len(cases)

    def first_tasks(self) -> list[dict[str, Any]]:
        return [self.task({"positions": group, "cases": [self.cases[i] for i in group]}) for group in self.groups]

    def take(self, task: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
        for position, row in zip(task["work"]["positions"], result["rows"]):
            self.rows[position] = row
        return []

    def result(self) -> dict[str, Any]:
        return {"cases": self.rows, "scenario": self.scenario, "sequence": self.sequence}

    @staticmethod
    def flat_rows(result: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        return [batch.flat_row(row) for row in result["cases"]]


class SamplesPlan(Plan):
    """A study of seeded random samples, one task each (stochastic hosting capacity, EV adoption): each task walks
    its sample upward from every starting state; the plan keeps each sample's result, and the starting states'
    pre-existing violations once (they are the same for every sample)."""

    hours: list[dict[str, Any]] | None
    shapes: dict[str, Any] | None
    deck: time_series.DeckShapes | None
    samples: list[dict[str, Any] | None]
    preexisting: list[dict[str, Any]] | None

    def hour_works(self) -> list[dict[str, Any]] | None:
        """Each distinct hour once, earliest first (a sample's failure binds at the earliest hour of equals)."""
        starts = sorted({h["hour_of_year"] for h in self.hours}) if self.hours else []
        return [hours.hour_work(self.shapes or hours.DEFAULT_SHAPES, h, self.deck) for h in starts] or None

    def take(self, task: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
        self.samples[task["work"]["sample"]] = {k: v for k, v in result.items() if k != "preexisting"}
        if self.preexisting is None:
            self.preexisting = result["preexisting"]
        return []

    def finished_samples(self) -> list[dict[str, Any]]:
        return [sample for sample in self.samples if sample is not None]


class StochasticHostingCapacityPlan(SamplesPlan):
    """One task per sample: its customer order (seeded), walked upward through the penetrations from each starting
    state (the scenario's, or each hour's). The result lists each starting state's pre-existing overloads once."""

    kind = "stochastic_hosting_capacity"
    tables = ("levels", "samples")

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int,
                 spec: dict[str, Any], customers: list[dict[str, Any]], limits: Limits,
                 hours: list[dict[str, Any]] | None = None, shapes: dict[str, Any] | None = None,
                 inverter: dict[str, Any] | None = None,
                 deck: time_series.DeckShapes | None = None, load_shapes: dict[str, Any] | None = None) -> None:
        super().__init__(engine, ops, scenario, sequence)
        self.spec, self.limits, self.hours, self.shapes = spec, limits, hours, shapes
        self.deck, self.load_shapes = deck, load_shapes  # (`studies.requests.series_shapes`)
        self.trial = {"inverter": inverter} if inverter is not None else {}  # (absent: the answer as before)
        self.total_load_kw = sum(customer["kW"] for customer in customers)
        self.sizes = [customer["kW"] * spec["size_ratio"] for customer in customers]
        self.pcts = stochastic.levels(**spec["penetration_pct"])
        self.pv_kw = [stochastic.penetration_kw(pct, self.total_load_kw) for pct in self.pcts]
        self.customers = len(customers)
        self.total = spec["samples"]
        self.samples: list[dict[str, Any] | None] = [None] * self.total
        self.preexisting: list[dict[str, Any]] | None = None

    def first_tasks(self) -> list[dict[str, Any]]:
        hour_works = self.hour_works()
        return [self.task({"sample": sample, "levels": [list(x) for x in zip(self.pcts, self.pv_kw)],
                           "order": [[c, self.sizes[c]] for c in stochastic.sample_order(self.spec["seed"], sample,
                                                                                           self.customers)
                                     if self.sizes[c] > 0],
                           "limits": self.limits.describe(), "hours": hour_works, **self.trial})
                for sample in range(self.total)]

    def result(self) -> dict[str, Any]:
        samples = self.finished_samples()
        described = {**stochastic.hosting_range(samples, self.total_load_kw),
                     "levels": stochastic.level_rows(self.pcts, self.pv_kw, samples), "samples": samples,
                     "preexisting": self.preexisting or [],
                     "default_rated_limits": default_rated_limits(
                         ((s["sample"], (s["first_failure"] or {}).get("limited_by")) for s in samples), "samples"),
                     "hours": self.hours,
                     "spec": {**self.spec, "total_load_kW": self.total_load_kw, "customers": self.customers,
                              "limits": self.limits.describe(), **self.trial},
                     "scenario": self.scenario, "sequence": self.sequence}
        if self.hours:
            described["shapes"] = self.shapes
            described["load_shapes"] = self.load_shapes
        return described

    @staticmethod
    def flat_rows(result: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        if table == "samples":
            return [stochastic.flat_sample(row) for row in result["samples"]]
        return [stochastic.flat_level(row) for row in result["levels"]]


class EvAdoptionPlan(SamplesPlan):
    """One task per sample (`studies.ev_adoption`): its customer order (seeded), walked upward through the adoptions
    from each starting state (the scenario's, or each hour's). The result lists each starting state's pre-existing
    violations once."""

    kind = "ev_adoption"
    tables = ("levels", "samples")

    def __init__(self, engine: EngineSettings, ops: list[dict[str, Any]], scenario: str, sequence: int,
                 spec: dict[str, Any], customers: int, limits: Limits, hours: list[dict[str, Any]] | None = None,
                 shapes: dict[str, Any] | None = None, deck: time_series.DeckShapes | None = None,
                 load_shapes: dict[str, Any] | None = None) -> None:
        """`spec`: `adoption_pct` (start, stop, step), `samples`, `seed`, `charger_kW`, `coincidence`, `pf`."""
        super().__init__(engine, ops, scenario, sequence)
        self.spec, self.limits, self.hours, self.shapes = spec, limits, hours, shapes
        self.deck, self.load_shapes = deck, load_shapes  # (`studies.requests.series_shapes`)
        self.customers = customers
        self.pcts = stochastic.levels(**spec["adoption_pct"])
        self.counts = [ev_adoption.charger_count(pct, customers) for pct in self.pcts]
        self.charger = {"kW": round(spec["charger_kW"] * spec["coincidence"], 9), "pf": spec["pf"]}
        self.total = spec["samples"]
        self.samples: list[dict[str, Any] | None] = [None] * self.total
        self.preexisting: list[dict[str, Any]] | None = None

    def first_tasks(self) -> list[dict[str, Any]]:
        hour_works = self.hour_works()
        return [self.task({"sample": sample, "levels": [list(x) for x in zip(self.pcts, self.counts)],
                           "order": stochastic.sample_order(self.spec["seed"], sample, self.customers),
                           "charger": self.charger, "limits": self.limits.describe(), "hours": hour_works})
                for sample in range(self.total)]

    def result(self) -> dict[str, Any]:
        samples = self.finished_samples()
        described = {**ev_adoption.adoption_range(samples, self.customers),
                     "levels": ev_adoption.level_rows(self.pcts, self.counts, self.charger["kW"], samples),
                     "samples": samples, "preexisting": self.preexisting or [],
                     "default_rated_limits": default_rated_limits(
                         ((s["sample"], (s["first_failure"] or {}).get("limited_by")) for s in samples), "samples"),
                     "hours": self.hours,
                     "spec": {**self.spec, "charger_kW_each": self.charger["kW"], "customers": self.customers,
                              "limits": self.limits.describe()},
                     "scenario": self.scenario, "sequence": self.sequence}
        if self.hours:
            described["shapes"] = self.shapes
            described["load_shapes"] = self.load_shapes
        return described

    @staticmethod
    def flat_rows(result: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        if table == "samples":
            return [ev_adoption.flat_sample(row) for row in result["samples"]]
        return [ev_adoption.flat_level(row) for row in result["levels"]]


PLANS: dict[str, type[Plan]] = {plan.kind: plan for plan in (HostingCapacityPlan, TimeSeriesPlan, BatchPlan,
                                                             StochasticHostingCapacityPlan, LoadHostingCapacityPlan,
                                                             EvAdoptionPlan)}
