"""A small Python client for the IEEE 123-bus power-flow API, speaking pandas.

    >>> from client import GridClient
    >>> grid = GridClient("http://127.0.0.1:5000")
    >>> pv = grid.new_scenario("pv at 67")
    >>> after = pv.add_generator("67", phases=3, kw=1500)
    >>> after.summary["total_generation_kW"]                       # doctest: +SKIP
    1499.99...
    >>> pv.hosting_capacity(step_kw=50).sort_values("hosting_capacity_kW").head()   # doctest: +SKIP

Every change is sent with an `Idempotency-Key`, so a retry after a dropped connection (automatic, a bounded
number of times, with backoff) is never applied twice. Errors raise `GridApiError` with the API's status,
message and field. No global state: a `GridClient` holds its URL, key and HTTP session.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import pandas as pd
import requests

__all__ = ["GridClient", "Scenario", "Results", "Diff", "StochasticHostingCapacity", "GridApiError"]


class GridApiError(Exception):
    """The API refused a request: `status` (HTTP), `message` and `field` from its error body.

    >>> try:
    ...     grid.add_generator("nowhere", phases=1, kw=10)          # doctest: +SKIP
    ... except GridApiError as error:
    ...     print(error.status, error.field)
    404 bus_name
    """

    def __init__(self, status: int, message: str, field: Optional[str] = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.field = status, message, field


@dataclass
class Results:
    """A solved state: `summary` (power_summary), `buses` (a row per node, indexed by Bus and Node), `lines`
    (indexed by Line), `violations`, plus `voltage_profile`, `losses`, the `action` that made it (for a change)
    and the state's `etag`.

    >>> grid.state().buses.loc[("67", 1), "VMag_pu"]                 # doctest: +SKIP
    1.0345...
    """

    summary: dict[str, Any]
    buses: pd.DataFrame
    lines: pd.DataFrame
    violations: dict[str, Any]
    voltage_profile: dict[str, Any] = field(default_factory=dict)
    losses: dict[str, Any] = field(default_factory=dict)
    action: Optional[dict[str, Any]] = None
    etag: Optional[str] = None

    @classmethod
    def from_body(cls, body: dict[str, Any], etag: Optional[str]) -> "Results":
        results = body["results"]
        buses = pd.DataFrame(results.get("bus_details", []))
        if not buses.empty:
            buses = buses.set_index(["Bus", "Node"])
        lines = pd.DataFrame(results.get("line_flows", []))
        if not lines.empty:
            lines = lines.set_index("Line")
        return cls(results.get("power_summary", {}), buses, lines, results.get("violations", {}),
                   results.get("voltage_profile", {}), results.get("losses", {}), body.get("action"), etag)


@dataclass
class Diff:
    """How a scenario differs from another: `summary` (this, other, delta per figure), `buses` (per node,
    largest change first), `lines`, and `violations` (`new`, `cleared`).

    >>> pv.diff("base").buses.head(3)                                  # doctest: +SKIP
    """

    summary: pd.DataFrame
    buses: pd.DataFrame
    lines: pd.DataFrame
    violations: dict[str, list[dict[str, Any]]]


@dataclass
class StochasticHostingCapacity:
    """A stochastic hosting-capacity study: the feeder's range (min and max, in % of the load and kW) and its two
    tables, `levels` (indexed by penetration_pct) and `samples` (indexed by sample; each end's `pv` list replays
    its trial)."""

    min_hc_pct: float
    min_hc_kW: float
    max_hc_pct: float
    max_hc_kW: float
    levels: pd.DataFrame
    samples: pd.DataFrame
    spec: dict[str, Any] = field(default_factory=dict)
    hours: Optional[list[dict[str, Any]]] = None
    preexisting: Optional[pd.DataFrame] = None


def _sample_row(row: dict[str, Any]) -> dict[str, Any]:
    passed, failed = row["last_pass"] or {}, row["first_failure"] or {}
    bound = failed.get("limited_by") or {}
    return {"sample": row["sample"], "last_pass_pct": passed.get("penetration_pct", 0.0),
            "last_pass_kW": passed.get("pv_kW", 0.0), "last_pass_pv": passed.get("pv", []),
            "first_failure_pct": failed.get("penetration_pct"), "first_failure_kW": failed.get("pv_kW"),
            "first_failure_pv": failed.get("pv"), **{f"limited_by_{k}": v for k, v in bound.items()},
            "trials": row["trials"]}



def _ev_sample_row(row: dict[str, Any]) -> dict[str, Any]:
    passed, failed = row["last_pass"] or {}, row["first_failure"] or {}
    bound = failed.get("limited_by") or {}
    return {"sample": row["sample"], "last_pass_pct": passed.get("adoption_pct", 0.0),
            "last_pass_chargers": passed.get("chargers", []), "first_failure_pct": failed.get("adoption_pct"),
            "first_failure_chargers": failed.get("chargers"), **{f"limited_by_{k}": v for k, v in bound.items()},
            "trials": row["trials"]}

class _Http:
    """One session, the API key, and the retry rules."""

    def __init__(self, base_url: str, api_key: Optional[str], retries: int, backoff_s: float,
                 timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s

    def request(self, method: str, path: str, *, json: Any = None, params: Optional[dict[str, Any]] = None,
                headers: Optional[dict[str, str]] = None, retry: bool = False) -> requests.Response:
        """Send, retrying dropped connections (and 409 "still running" answers) when `retry` is allowed:
        reads always, changes because they carry an idempotency key."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(method, self.base_url + path, json=json, params=params,
                                                headers=headers, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout):
                if not retry or last:
                    raise
                time.sleep(self.backoff_s * 2 ** attempt)
                continue
            if retry and not last and response.status_code == 409 and \
                    "still being processed" in response.text:
                time.sleep(self.backoff_s * 2 ** attempt)
                continue
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = {"message": response.text[:300]}
                raise GridApiError(response.status_code, body.get("message", response.reason), body.get("field"))
            return response
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}, retry=True)


class Scenario:
    """One scenario: its state, changes, journal, studies. `GridClient` is the `default` scenario.

    >>> pv = grid.scenario("Yx3…")                                    # doctest: +SKIP
    >>> pv.scale_neighbourhood(5, 1.2, dry_run=True).summary          # doctest: +SKIP
    """

    def __init__(self, http: _Http, scenario_id: str, prefix: str) -> None:
        self._http, self.id, self._prefix = http, scenario_id, prefix

    def __repr__(self) -> str:
        return f"Scenario({self.id!r})"

    # ---------------------------------------------------------------- changes
    def _change(self, method: str, route: str, body: Optional[dict[str, Any]], dry_run: bool,
                if_match: Optional[str]) -> Results:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        if if_match:
            headers["If-Match"] = if_match
        response = self._http.request(method, self._prefix + route, json=body, headers=headers, retry=True,
                                      params={"dry_run": "true"} if dry_run else None)
        return Results.from_body(response.json(), response.headers.get("ETag"))

    def add_generator(self, bus: str, phases: int, kw: float, phase: Optional[int] = None, *,
                      inverter: Optional[dict[str, Any]] = None, dry_run: bool = False,
                      if_match: Optional[str] = None) -> Results:
        """Add a generator (or update the one at this bus and phases): `grid.add_generator("16", 1, 200)`; a smart
        inverter with `inverter={"mode": "volt_var"}` (README, "Smart inverters")."""
        body: dict[str, Any] = {"bus_name": bus, "phases": phases, "kw": kw}
        if phase is not None:
            body["phase"] = phase
        if inverter is not None:
            body["inverter"] = inverter
        return self._change("POST", "/add_generator", body, dry_run, if_match)

    def scale_neighbourhood(self, neighbourhood: int, factor: float, *, dry_run: bool = False,
                            if_match: Optional[str] = None) -> Results:
        """Scale a neighbourhood's loads (factors compound): `grid.scale_neighbourhood(5, 0.8)`."""
        body = {"neighbourhood": neighbourhood, "factor": factor}
        return self._change("POST", "/modify_load_neighbourhood", body, dry_run, if_match)

    def remove_generator(self, name: str, *, dry_run: bool = False, if_match: Optional[str] = None) -> Results:
        """Remove a generator added through the API: `grid.remove_generator("gen_16_3")`."""
        return self._change("DELETE", f"/generators/{name}", None, dry_run, if_match)

    def reset(self, *, dry_run: bool = False, if_match: Optional[str] = None) -> Results:
        """Back to the base case: `grid.reset()`."""
        return self._change("POST", "/reset", {}, dry_run, if_match)

    def undo(self, *, dry_run: bool = False, if_match: Optional[str] = None) -> Results:
        """Take back the last change: `pv.undo()`."""
        return self._change("POST", "/undo", {}, dry_run, if_match)

    # ---------------------------------------------------------------- reads
    def state(self) -> Results:
        """The current solved state: `grid.state().summary`."""
        response = self._http.get(self._prefix + "/state")
        return Results.from_body(response.json(), response.headers.get("ETag"))

    def buses(self) -> pd.DataFrame:
        """Every bus (nodes, base kV, coordinates, neighbourhood, distance), indexed by name: `grid.buses()`."""
        return pd.DataFrame(self._http.get(self._prefix + "/buses").json()["buses"]).set_index("name")

    def lines(self) -> pd.DataFrame:
        """Flow, current, loading and losses of every line, indexed by Line: `grid.lines()`."""
        return pd.DataFrame(self._http.get(self._prefix + "/lines").json()["lines"]).set_index("Line")

    def generators(self) -> pd.DataFrame:
        """Generators added through the API, indexed by name: `grid.generators()`."""
        rows = self._http.get(self._prefix + "/generators").json()["generators"]
        columns = ["name", "bus", "phases", "nodes", "kw", "delivered_kW", "delivered_kVAR"]
        if any("inverter" in row for row in rows):  # inverter generators' columns (empty for plain ones)
            columns += ["mode", "kva", "curtailed_kW", "inverter"]
        return pd.DataFrame(rows, columns=columns).set_index("name")

    def changes(self) -> pd.DataFrame:
        """The journal, indexed by sequence (`at`, `type`, `action`): `pv.changes()`."""
        rows = self._http.get(self._prefix + "/changes").json()["changes"]
        frame = pd.DataFrame([{"sequence": r["sequence"], "at": pd.Timestamp(r["at"]), "type": r["action"]["type"],
                               "action": r["action"]} for r in rows], columns=["sequence", "at", "type", "action"])
        return frame.set_index("sequence")

    def export(self) -> dict[str, Any]:
        """The scenario document (plain JSON to keep, edit or import): `pv.export()["changes"]`."""
        return self._http.get(self._prefix + "/export").json()

    def diff(self, against: str = "base") -> Diff:
        """Compare with the base case or another scenario: `pv.diff("base").summary`."""
        body = self._http.get(self._prefix + "/diff", against=against).json()
        summary = pd.DataFrame.from_dict(body["summary"], orient="index")
        return Diff(summary, pd.DataFrame(body["buses"]).set_index(["Bus", "Node"]),
                    pd.DataFrame(body["lines"]).set_index("Line"), body["violations"])

    # ---------------------------------------------------------------- studies
    def hosting_capacity(self, buses: Iterable[str] = ("all",), phases: int = 3, step_kw: float = 10,
                         max_kw: float = 10_000, limits: Optional[dict[str, Any]] = None,
                         hours: Optional[Iterable[Any]] = None, load_shape: str = "residential",
                         neighbourhood_shapes: Optional[dict[str, str]] = None, generator_shape: str = "pv", *,
                         inverter: Optional[dict[str, Any]] = None, progress: Optional[bool] = None,
                         timeout_s: float = 3600) -> pd.DataFrame:
        """Hosting capacity per bus, indexed by bus, with what bounds it: `pv.hosting_capacity(step_kw=50)`, or the
        least over hours: `grid.hosting_capacity(hours=["daytime_minimum", "peak_load", 4320])` (a column
        `kW_at_hour_<h>` per hour). `.attrs`: `criteria`, `hours` (resolved), `preexisting` (a DataFrame). With
        `inverter={"mode": "volt_var"}` the trial generator is a smart inverter rated at the trial's kW."""
        body: dict[str, Any] = {"buses": list(buses), "phases": phases, "step_kw": step_kw, "max_kw": max_kw,
                                "limits": limits or {}}
        if hours is not None:
            body.update(hours=list(hours), load_shape=load_shape, generator_shape=generator_shape,
                        neighbourhood_shapes={str(k): v for k, v in (neighbourhood_shapes or {}).items()})
        if inverter is not None:
            body["inverter"] = inverter
        return _bus_frame(self._study("hosting_capacity", body, progress, timeout_s))

    def load_hosting_capacity(self, buses: Iterable[str] = ("all",), phases: int = 3, step_kw: float = 10,
                              max_kw: float = 10_000, pf: float = 0.95, limits: Optional[dict[str, Any]] = None,
                              hours: Optional[Iterable[Any]] = None, load_shape: Optional[str] = None,
                              neighbourhood_shapes: Optional[dict[str, str]] = None, generator_shape: str = "pv", *,
                              progress: Optional[bool] = None, timeout_s: float = 3600) -> pd.DataFrame:
        """New load (EV chargers, heat pumps) per bus, indexed by bus, with what bounds it, as `hosting_capacity`:
        `grid.load_hosting_capacity(pf=0.95, hours=["evening_peak", "peak_load"])`. Each trial is a constant-power
        load at lagging power factor `pf`. `.attrs`: `criteria`, `hours`, `preexisting` (a DataFrame)."""
        body: dict[str, Any] = {"buses": list(buses), "phases": phases, "step_kw": step_kw, "max_kw": max_kw,
                                "pf": pf, "limits": limits or {}}
        if hours is not None:
            body.update(hours=list(hours), generator_shape=generator_shape,
                        neighbourhood_shapes={str(k): v for k, v in (neighbourhood_shapes or {}).items()})
            if load_shape is not None:
                body["load_shape"] = load_shape
        return _bus_frame(self._study("load_hosting_capacity", body, progress, timeout_s))

    def stochastic_hosting_capacity(self, start: float = 10, stop: float = 200, step: float = 10, samples: int = 20,
                                    seed: int = 1, size_ratio: Optional[float] = None,
                                    limits: Optional[dict[str, Any]] = None, hours: Optional[Iterable[Any]] = None,
                                    load_shape: str = "residential",
                                    neighbourhood_shapes: Optional[dict[str, str]] = None,
                                    generator_shape: str = "pv", *, inverter: Optional[dict[str, Any]] = None,
                                    progress: Optional[bool] = None,
                                    timeout_s: float = 3600) -> StochasticHostingCapacity:
        """The feeder's range over random customer PV (EPRI 1026640), with its levels and samples as DataFrames:
        `pv.stochastic_hosting_capacity(samples=20, seed=1).levels`; `hours=["daytime_minimum", "peak_load"]`
        judges every trial at each hour; `inverter={"mode": "volt_var"}` makes every system a smart inverter."""
        body: dict[str, Any] = {"penetration_pct": {"start": start, "stop": stop, "step": step}, "samples": samples,
                                "seed": seed, "limits": limits or {}}
        if inverter is not None:
            body["inverter"] = inverter
        if size_ratio is not None:
            body["size_ratio"] = size_ratio
        if hours is not None:
            body.update(hours=list(hours), load_shape=load_shape, generator_shape=generator_shape,
                        neighbourhood_shapes={str(k): v for k, v in (neighbourhood_shapes or {}).items()})
        result = self._study("stochastic_hosting_capacity", body, progress, timeout_s)
        levels = pd.DataFrame([{**{k: v for k, v in row.items() if k != "samples_failing"},
                                **{f"failing_{k}": v for k, v in row["samples_failing"].items()}}
                               for row in result["levels"]]).set_index("penetration_pct")
        table = pd.DataFrame([_sample_row(row) for row in result["samples"]]).set_index("sample")
        preexisting = pd.DataFrame(result.get("preexisting") or [], columns=["element", "value", "limit",
                                                                             "hour_of_year"])
        return StochasticHostingCapacity(result["min_hc_pct"], result["min_hc_kW"], result["max_hc_pct"],
                                         result["max_hc_kW"], levels, table, result["spec"], result.get("hours"),
                                         preexisting)

    def ev_adoption(self, start: float = 10, stop: float = 100, step: float = 10, samples: int = 20, seed: int = 1,
                    charger_kw: float = 7.2, coincidence: float = 1.0, pf: float = 0.95,
                    limits: Optional[dict[str, Any]] = None, hours: Optional[Iterable[Any]] = None, *,
                    progress: Optional[bool] = None, timeout_s: float = 3600) -> pd.DataFrame:
        """The feeder's range of EV charger adoption over random customers: the samples, indexed by sample (each
        end's `chargers` list replays its trial): `grid.ev_adoption(samples=20, seed=1, hours=["evening_peak"])`.
        `.attrs`: `min_adoption_pct`, `max_adoption_pct`, `levels` (a DataFrame by adoption_pct), `spec`, `hours`,
        `preexisting` (a DataFrame)."""
        body: dict[str, Any] = {"adoption_pct": {"start": start, "stop": stop, "step": step}, "samples": samples,
                                "seed": seed, "charger_kW": charger_kw, "coincidence": coincidence, "pf": pf,
                                "limits": limits or {}}
        if hours is not None:
            body["hours"] = list(hours)
        result = self._study("ev_adoption", body, progress, timeout_s)
        frame = pd.DataFrame([_ev_sample_row(row) for row in result["samples"]]).set_index("sample")
        frame.attrs.update({key: result[key] for key in ("min_adoption_pct", "max_adoption_pct", "spec")})
        frame.attrs["hours"] = result.get("hours")
        frame.attrs["levels"] = pd.DataFrame([{**{k: v for k, v in row.items() if k != "samples_failing"},
                                               **{f"failing_{k}": v for k, v in row["samples_failing"].items()}}
                                              for row in result["levels"]]).set_index("adoption_pct")
        frame.attrs["preexisting"] = pd.DataFrame(result.get("preexisting") or [],
                                                  columns=["element", "value", "limit", "hour_of_year"])
        return frame

    def time_series(self, hours: int = 24, start_hour: int = 4320, load_shape: Any = "residential",
                    neighbourhood_shapes: Optional[dict[str, Any]] = None, generator_shape: Any = "pv", *,
                    progress: Optional[bool] = None, timeout_s: float = 3600) -> pd.DataFrame:
        """Hours of load and sun, indexed by hour; totals in `.attrs["totals"]`: `pv.time_series(hours=24)`."""
        body = {"hours": hours, "start_hour": start_hour, "load_shape": load_shape,
                "neighbourhood_shapes": {str(k): v for k, v in (neighbourhood_shapes or {}).items()},
                "generator_shape": generator_shape}
        result = self._study("time_series", body, progress, timeout_s)
        rows = [{**{k: v for k, v in row.items() if k != "taps"}, **{f"tap_{k}": v for k, v in row["taps"].items()}}
                for row in result["hours"]]
        frame = pd.DataFrame(rows).set_index("hour")
        frame.attrs["totals"] = result["totals"]
        return frame

    def batch(self, cases: list[dict[str, Any]], *, progress: Optional[bool] = None,
              timeout_s: float = 3600) -> pd.DataFrame:
        """What-if cases, indexed by name (`error` set for a refused case):
        `grid.batch([{"name": "pv67", "changes": [{"op": "add_generator", "bus_name": "67", "phases": 3,
        "kw": 500}]}])`."""
        result = self._study("batch", {"cases": cases}, progress, timeout_s)
        rows = []
        for row in result["cases"]:
            flat = {"name": row["name"], "error": row["error"]["message"] if row["error"] else None}
            flat.update(row.get("power_summary") or {})
            flat.update(row.get("voltage_profile") or {})
            rows.append(flat)
        return pd.DataFrame(rows).set_index("name")

    def _study(self, kind: str, body: dict[str, Any], progress: Optional[bool], timeout_s: float) -> dict[str, Any]:
        """Submit a study, follow its job (with a tqdm bar on a terminal), return its result."""
        from tqdm import tqdm

        job = self._http.request("POST", f"{self._prefix}/studies/{kind}", json=body).json()["job"]
        show = sys.stderr.isatty() if progress is None else progress
        deadline = time.monotonic() + timeout_s
        with tqdm(total=1.0, desc=kind.replace("_", " "), disable=not show,
                  bar_format="{l_bar}{bar}| {elapsed}") as bar:
            while job["status"] in ("queued", "running"):
                if time.monotonic() > deadline:
                    self._http.request("DELETE", f"/jobs/{job['id']}")
                    raise TimeoutError(f"{kind} did not finish within {timeout_s:g} s; it was cancelled")
                time.sleep(0.2)
                job = self._http.get(f"/jobs/{job['id']}").json()["job"]
                bar.update(job["progress"] - bar.n)
        if job["status"] != "done":
            raise GridApiError(500, f"the {kind} study {job['status']}: {job['error']}")
        return job["result"]

    def delete(self) -> None:
        """Delete this scenario and its journal: `pv.delete()`."""
        self._http.request("DELETE", f"/scenarios/{self.id}")


class GridClient(Scenario):
    """The API at `base_url`; its grid methods act on the `default` scenario.

    >>> grid = GridClient("http://127.0.0.1:5000", api_key=None)
    >>> grid.scenarios()                                               # doctest: +SKIP
    """

    def __init__(self, base_url: str = "http://127.0.0.1:5000", api_key: Optional[str] = None, *,
                 retries: int = 3, backoff_s: float = 0.2, timeout_s: float = 60) -> None:
        super().__init__(_Http(base_url, api_key, retries, backoff_s, timeout_s), "default", "")

    def scenario(self, scenario_id: str) -> Scenario:
        """A scenario by id (checked): `grid.scenario("default")`."""
        self._http.get(f"/scenarios/{scenario_id}")
        return Scenario(self._http, scenario_id, f"/scenarios/{scenario_id}")

    def new_scenario(self, name: Optional[str] = None, from_: Optional[str] = None,
                     feeder: Optional[str] = None) -> Scenario:
        """A new scenario from the base case of `feeder` (default: the server's default feeder; `grid.feeders()`
        lists them), or a fork of `from_`'s current state: `grid.new_scenario("pv", feeder="north")`."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if from_ is not None:
            body["from"] = from_
        if feeder is not None:
            body["feeder"] = feeder
        created = self._http.request("POST", "/scenarios", json=body).json()["scenario"]
        return Scenario(self._http, created["id"], f"/scenarios/{created['id']}")

    def import_scenario(self, document: dict[str, Any]) -> Scenario:
        """A new scenario from a document (`Scenario.export()`): `grid.import_scenario(pv.export())`."""
        created = self._http.request("POST", "/scenarios/import", json=document).json()["scenario"]
        return Scenario(self._http, created["id"], f"/scenarios/{created['id']}")

    def scenarios(self) -> pd.DataFrame:
        """Every scenario, indexed by id: `grid.scenarios()`."""
        return pd.DataFrame(self._http.get("/scenarios").json()["scenarios"]).set_index("id")

    def health(self) -> dict[str, Any]:
        """Liveness, scenario counts and where studies run: `grid.health()["studies"]`."""
        return self._http.get("/health").json()

    def feeders(self) -> pd.DataFrame:
        """The feeders the server serves, indexed by name: counts, kV bases, where neighbourhoods and coordinates
        come from, warnings (`GET /feeders`)."""
        return pd.DataFrame(self._http.get("/feeders").json()["feeders"]).set_index("name")


def _bus_frame(result: dict[str, Any]) -> pd.DataFrame:
    """A per-bus study's rows indexed by bus: `limited_by` spread into columns, a `kW_at_hour_<h>` column per hour;
    `.attrs` `criteria`, `hours` and `preexisting` (a DataFrame)."""
    rows = [{**{k: v for k, v in row.items() if k not in ("limited_by", "by_hour")},
             **{f"limited_by_{k}": v for k, v in (row["limited_by"] or {}).items()},
             **{f"kW_at_hour_{h}": kw for h, kw in (row.get("by_hour") or {}).items()}}
            for row in result["buses"]]
    frame = pd.DataFrame(rows).set_index("bus")
    frame.attrs["criteria"] = result["criteria"]
    frame.attrs["hours"] = result.get("hours")
    frame.attrs["preexisting"] = pd.DataFrame(result.get("preexisting") or [],
                                              columns=["element", "value", "limit", "hour_of_year"])
    return frame
