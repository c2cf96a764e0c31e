"""`python -m studies`: run a study without a web server, from an exported scenario document (or the base case).

    python -m studies hosting-capacity --scenario my.json --out hc.csv [--dask-scheduler tcp://…] [--workers N]
    python -m studies hosting-capacity --hours daytime_minimum,peak_load,4320 --out hc.csv
    python -m studies hosting-capacity --inverter volt_var --out hc-volt-var.csv   (or --inverter '{"mode": …}')
    python -m studies time-series --scenario my.json --hours 8760 --out ts.csv
    python -m studies batch --scenario my.json --cases cases.json --out batch.parquet
    python -m studies stochastic-hosting-capacity --samples 20 --seed 1 --out levels.csv --samples-out samples.csv
    python -m studies load-hosting-capacity --buses 85,114 --pf 0.95 --hours evening_peak,peak_load --out lhc.csv
    python -m studies ev-adoption --samples 20 --seed 1 --charger-kw 7.2 --out ev-levels.csv --samples-out ev.csv

The options are the API's fields; the plans, tasks and executors are the server's, so the numbers are the same.
Writes CSV, or Parquet when the file name ends in .parquet (needs pyarrow). A progress bar shows on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scenarios.journal import feeder_sha256
from web.scenario_schemas import ScenarioDocument
from web.schemas import describe_validation_error
from web.study_schemas import (BatchBody, EvAdoptionBody, HostingCapacityBody, LoadHostingCapacityBody,
                               StochasticHostingCapacityBody, TimeSeriesBody)
from engine.circuit import OpenDSSCircuit
from engine.deck import DeckError
from engine.errors import FeederError, SimulationError
from engine.feeder import Feeder, feeder_option
from engine.settings import ANSI_RANGE_A_PU, EngineSettings
from studies.executors import ExecutorUnavailable, LocalPool
from studies.jobs import JobManager, StudyError
from studies.plans import Plan
from studies.requests import (ScenarioInput, batch_plan, ev_adoption_plan, hosting_capacity_plan,
                              load_hosting_capacity_plan, stochastic_hosting_capacity_plan, time_series_plan)


class UsageError(Exception):
    """A bad option or input file: printed as one line, exit status 2."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m studies", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="study", required=True)

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument("--scenario", type=Path, help="a scenario document (GET …/export); default: base case")
        command.add_argument("--feeder", metavar="[NAME=]PATH", help="the OpenDSS deck whose master file is PATH, as "
                             "python api.py --feeder takes it (default: our IEEE 123-bus deck)")
        command.add_argument("--neighbourhoods", type=int, metavar="N", help="neighbourhoods to derive for a deck "
                             "without a neighbourhoods.json beside its master, as python api.py takes it")
        command.add_argument("--out", type=Path, required=True, help="output file: .csv, or .parquet (pyarrow)")
        command.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT", help="run the tasks on this Dask cluster")
        command.add_argument("--workers", type=int, help="local worker processes (default: the usable cores)")

    def limits(command: argparse.ArgumentParser) -> None:
        command.add_argument("--voltage-high-pu", type=float, default=ANSI_RANGE_A_PU[1])
        command.add_argument("--voltage-low-pu", type=float, default=ANSI_RANGE_A_PU[0])
        command.add_argument("--thermal-pct", type=float, default=100.0)
        command.add_argument("--reverse-power", action="store_true",
                             help="count the substation exporting as a violation")
        command.add_argument("--preexisting", choices=["exclude", "worsened"], default="exclude",
                             help="overloads already in the starting state: never a limit (exclude), or a limit "
                                  "once worse by --worsened-by-pct points")
        command.add_argument("--worsened-by-pct", type=float, default=1.0)

    def inverter(command: argparse.ArgumentParser) -> None:
        command.add_argument("--inverter", metavar="MODE|JSON", help="the trial generators as smart inverters: a "
                             "mode (volt_var, volt_watt, volt_var_volt_watt, unity) or the API's object as JSON")

    def hours(command: argparse.ArgumentParser, named: str = "peak_load, daytime_minimum") -> None:
        command.add_argument("--hours", help=f"comma-separated hours of the year (0-8759) or {named} (default: the "
                                             f"scenario's state)")
        shapes(command)

    def shapes(command: argparse.ArgumentParser) -> None:
        command.add_argument("--load-shape", default=None, help="residential, commercial, pv or deck (default: the "
                             "deck's own load shapes when its loads have them, else residential)")
        command.add_argument("--neighbourhood-shape", action="append", default=[], metavar="N=SHAPE",
                             help="a neighbourhood's own shape, e.g. 3=commercial (repeatable)")
        command.add_argument("--generator-shape", default="pv")

    hc = commands.add_parser("hosting-capacity", help="hosting capacity per bus and what bounds it")
    common(hc)
    hc.add_argument("--buses", default="all", help='"all" or comma-separated bus names (default all)')
    hc.add_argument("--phases", type=int, default=3, choices=[1, 3])
    hc.add_argument("--step-kw", type=float, default=10.0)
    hc.add_argument("--max-kw", type=float, default=10_000.0)
    limits(hc)
    hours(hc)
    inverter(hc)

    lhc = commands.add_parser("load-hosting-capacity", help="new load (EV chargers, heat pumps) each bus takes "
                                                            "and what bounds it")
    common(lhc)
    lhc.add_argument("--buses", default="all", help='"all" or comma-separated bus names (default all)')
    lhc.add_argument("--phases", type=int, default=3, choices=[1, 3])
    lhc.add_argument("--step-kw", type=float, default=10.0)
    lhc.add_argument("--max-kw", type=float, default=10_000.0)
    lhc.add_argument("--pf", type=float, default=0.95, help="the new load's power factor, lagging (default 0.95)")
    limits(lhc)
    hours(lhc, "peak_load, evening_peak")

    shc = commands.add_parser("stochastic-hosting-capacity",
                              help="the feeder's hosting-capacity range over random customer PV (EPRI 1026640)")
    common(shc)
    shc.add_argument("--start", type=float, default=10.0, help="first penetration, %% of the load kW (default 10)")
    shc.add_argument("--stop", type=float, default=200.0, help="last penetration, %% (default 200)")
    shc.add_argument("--step", type=float, default=10.0, help="penetration step, %% (default 10)")
    shc.add_argument("--samples", type=int, default=20, help="random placements (default 20)")
    shc.add_argument("--seed", type=int, default=1)
    shc.add_argument("--size-ratio", type=float, default=None,
                     help="each system's kW / its load's kW (default max(1, stop / 100))")
    shc.add_argument("--samples-out", type=Path, help="also write the samples table here (.csv or .parquet)")
    limits(shc)
    hours(shc)
    inverter(shc)

    ev = commands.add_parser("ev-adoption", help="the feeder's range of EV charger adoption over random customers")
    common(ev)
    ev.add_argument("--start", type=float, default=10.0, help="first adoption, %% of the customers (default 10)")
    ev.add_argument("--stop", type=float, default=100.0, help="last adoption, %% (default 100)")
    ev.add_argument("--step", type=float, default=10.0, help="adoption step, %% (default 10)")
    ev.add_argument("--samples", type=int, default=20, help="random placements (default 20)")
    ev.add_argument("--seed", type=int, default=1)
    ev.add_argument("--charger-kw", type=float, default=7.2, help="each charger's kW (default 7.2, J1772 level 2)")
    ev.add_argument("--coincidence", type=float, default=1.0, help="share of each charger's kW drawn (default 1)")
    ev.add_argument("--pf", type=float, default=0.95, help="the chargers' power factor, lagging (default 0.95)")
    ev.add_argument("--samples-out", type=Path, help="also write the samples table here (.csv or .parquet)")
    limits(ev)
    hours(ev, "peak_load, evening_peak")

    ts = commands.add_parser("time-series", help="hours of measured load and PV shapes")
    common(ts)
    ts.add_argument("--hours", type=int, default=24)
    ts.add_argument("--start-hour", type=int, default=4320)
    shapes(ts)

    batch = commands.add_parser("batch", help="what-if cases from a JSON file")
    common(batch)
    batch.add_argument("--cases", type=Path, required=True, help='JSON: {"cases": [{"name", "changes": [...]}]}')
    return parser.parse_args(argv)


def request_body(args: argparse.Namespace) -> Any:
    """The API's request body made from the options (validated by the same models)."""
    if args.study == "hosting-capacity":
        return HostingCapacityBody(
            buses=["all"] if args.buses == "all" else args.buses.split(","), phases=args.phases,
            step_kw=args.step_kw, max_kw=args.max_kw, limits=limits_of(args), **hours_of(args), **inverter_of(args))
    if args.study == "load-hosting-capacity":
        return LoadHostingCapacityBody(
            buses=["all"] if args.buses == "all" else args.buses.split(","), phases=args.phases,
            step_kw=args.step_kw, max_kw=args.max_kw, pf=args.pf, limits=limits_of(args), **hours_of(args))
    if args.study == "stochastic-hosting-capacity":
        return StochasticHostingCapacityBody(
            penetration_pct={"start": args.start, "stop": args.stop, "step": args.step}, samples=args.samples,
            seed=args.seed, size_ratio=args.size_ratio, limits=limits_of(args), **hours_of(args), **inverter_of(args))
    if args.study == "ev-adoption":
        return EvAdoptionBody(
            adoption_pct={"start": args.start, "stop": args.stop, "step": args.step}, samples=args.samples,
            seed=args.seed, charger_kW=args.charger_kw, coincidence=args.coincidence, pf=args.pf,
            limits=limits_of(args), **hours_of(args))
    if args.study == "time-series":
        return TimeSeriesBody(hours=args.hours, start_hour=args.start_hour, load_shape=args.load_shape,
                              neighbourhood_shapes=neighbourhood_shapes(args), generator_shape=args.generator_shape)
    return BatchBody.model_validate(read_json(args.cases, "--cases"))


def limits_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"voltage_high_pu": args.voltage_high_pu, "voltage_low_pu": args.voltage_low_pu,
            "thermal_pct": args.thermal_pct, "reverse_power": args.reverse_power,
            "preexisting": args.preexisting, "worsened_by_pct": args.worsened_by_pct}


def inverter_of(args: argparse.Namespace) -> dict[str, Any]:
    """--inverter: a mode name, or the API's inverter object as JSON (checked as the API checks it)."""
    if args.inverter is None:
        return {}
    if args.inverter.lstrip().startswith("{"):
        try:
            return {"inverter": json.loads(args.inverter)}
        except ValueError as error:
            raise UsageError(f"--inverter: not JSON: {error}") from error
    return {"inverter": {"mode": args.inverter}}


def hours_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"hours": None if args.hours is None else [int(h) if h.strip().isdigit() else h.strip()
                                                      for h in args.hours.split(",")],
            "load_shape": args.load_shape, "neighbourhood_shapes": neighbourhood_shapes(args),
            "generator_shape": args.generator_shape}


def neighbourhood_shapes(args: argparse.Namespace) -> dict[str, str]:
    try:
        return dict(pair.split("=", 1) for pair in args.neighbourhood_shape)
    except ValueError as error:
        raise UsageError("--neighbourhood-shape: expected N=SHAPE, e.g. 3=commercial") from error


def read_json(path: Path, option: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{option} {path}: {error}") from error


def scenario_ops(path: Path | None, feeder: Feeder | None) -> tuple[str, list[dict[str, Any]]]:
    """The name and ops of a scenario document, checked as POST /scenarios/import checks it."""
    if path is None:
        return "base case", []
    document = ScenarioDocument.model_validate(read_json(path, "--scenario"))
    if document.feeder.sha256 != feeder_sha256(feeder):
        raise UsageError(f"--scenario {path}: made on another feeder model (feeder.sha256 differs)")
    return document.name or path.stem, [change.model_dump(exclude_none=True) for change in document.changes]


def make_plan(args: argparse.Namespace, body: Any, settings: EngineSettings) -> Plan:
    name, ops = scenario_ops(args.scenario, settings.feeder)
    # the feeder's buses, neighbourhoods and load set-points, as the server reads them
    circuit = OpenDSSCircuit(settings=settings)
    stochastic = args.study in ("stochastic-hosting-capacity", "ev-adoption")
    per_bus = args.study in ("hosting-capacity", "load-hosting-capacity")
    if ops and (stochastic or (getattr(args, "hours", None) is not None and per_bus)):
        try:
            circuit.rebuild(ops)  # named hours and penetrations are found from the scenario's own set-points
        except SimulationError as error:
            raise UsageError(f"--scenario {args.scenario}: {error}") from error
    given = ScenarioInput(settings, name, ops, len(ops), circuit.buses(), [n["id"] for n in circuit.neighbourhoods()],
                          circuit.load_setpoints_kw(), circuit.load_neighbourhoods(),
                          circuit.customers() if stochastic else None, circuit.generator_refusals(),
                          load_shapes=circuit.load_shapes())
    circuit.close()
    build = {"hosting-capacity": hosting_capacity_plan, "time-series": time_series_plan, "batch": batch_plan,
             "stochastic-hosting-capacity": stochastic_hosting_capacity_plan,
             "load-hosting-capacity": load_hosting_capacity_plan, "ev-adoption": ev_adoption_plan}
    return build[args.study](body, given)


def run(plan: Plan, executor: Any, progress: bool) -> dict[str, Any]:
    """Run the plan as the server does, with a tqdm bar while it goes."""
    from tqdm import tqdm

    jobs = JobManager(executor, max_jobs=1)
    job = jobs.submit(plan)
    unit = "sample" if plan.kind in ("stochastic_hosting_capacity", "ev_adoption") else "task"
    with tqdm(total=plan.total, unit=unit, desc=plan.kind.replace("_", " "), disable=not progress) as bar:
        while not job.finished.wait(0.1):
            bar.update(job.tasks_done - bar.n)
        bar.update(job.tasks_done - bar.n)
    jobs.close()
    if job.status != "done":
        raise StudyError(500, f"the study {job.status}: {job.error}")
    return job.result


def write_rows(rows: list[dict[str, Any]], out: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if out.suffix == ".parquet":
        try:
            frame.to_parquet(out, index=False)
        except ImportError as error:
            raise UsageError(f"--out {out}: Parquet needs pyarrow (pip install pyarrow), or use .csv") from error
    else:
        frame.to_csv(out, index=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        # the server's defaults: the regulators act, ANSI C84.1 Range A; the feeder read once, here
        settings = EngineSettings(feeder=feeder_option(args.feeder, args.neighbourhoods) if args.feeder else None)
        body = request_body(args)
        plan = make_plan(args, body, settings)
        if args.dask_scheduler:
            from studies.cluster import DaskExecutor

            executor: Any = DaskExecutor(args.dask_scheduler, settings)
        else:
            executor = LocalPool(settings, args.workers)
        result = run(plan, executor, progress=sys.stderr.isatty())
        write_rows(plan.flat_rows(result), args.out)
        if getattr(args, "samples_out", None):
            write_rows(plan.flat_rows(result, "samples"), args.samples_out)
    except ValidationError as error:
        print(f"error: {describe_validation_error(error)[0]}", file=sys.stderr)
        return 2
    except (UsageError, StudyError, ExecutorUnavailable, DeckError, FeederError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = len(plan.flat_rows(result))
    print(f"{plan.kind}: {rows} rows to {args.out} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if "totals" in result:
        print(json.dumps(result["totals"], indent=2))
    if "preexisting" in result:
        print(json.dumps({"hours": result["hours"], "preexisting": result["preexisting"]}, indent=2))
    if "min_hc_pct" in result:
        print(json.dumps({k: result[k] for k in ("min_hc_pct", "min_hc_kW", "max_hc_pct", "max_hc_kW")}, indent=2))
    if "min_adoption_pct" in result:
        print(json.dumps({k: result[k] for k in ("min_adoption_pct", "min_adoption_chargers", "max_adoption_pct",
                                                 "max_adoption_chargers")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
