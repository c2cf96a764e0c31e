"""The report of bench/studies_bench.py: its targets (each a ratio to a floor measured in the same run) and the
table on stdout."""

from __future__ import annotations

from typing import Any

from report import verdict
from hours_bench import print_hours
from inverter_bench import print_inverters
from studies_floor import STEP_KW

# Targets (value <= target).
TARGET_POOL = 1.2    # API wall time / (floor wall time / workers)
TARGET_DASK = 1.25   # Dask wall time / local pool wall time, same number of workers
TARGET_SERIES = 1.3  # API wall time / floor wall time
TARGET_LATENCY = 1.5  # GET /state during a study / idle, p50 and p90


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    floor_s, hc, lat = r["floor"]["hosting_capacity"]["wall_s"], r["hosting_capacity"], r["latency"]
    rows = [
        ("HC --workers 1 / floor", hc["workers_1"]["wall_s"] / floor_s, TARGET_POOL),
        ("HC --workers 2 / (floor / 2)", hc["workers_2"]["wall_s"] / (floor_s / 2), TARGET_POOL),
        ("HC Dask 2 workers / --workers 2", hc["dask_2"]["wall_s"] / hc["workers_2"]["wall_s"], TARGET_DASK),
        ("time series API / floor", r["time_series"]["wall_s"] / r["floor"]["time_series"]["wall_s"], TARGET_SERIES),
        ("GET /state p50 study / idle", lat["during_study"]["p50"] / lat["idle"]["p50"], TARGET_LATENCY),
        ("GET /state p90 study / idle", lat["during_study"]["p90"] / lat["idle"]["p90"], TARGET_LATENCY),
    ]
    out = [{"name": name, "value": value, "target": f"<= {target:g}", "result": verdict(value <= target)}
           for name, value, target in rows]
    differ = sum(len(run["differ_from_floor"]) + len(run["missing"]) for run in hc.values())
    out.append({"name": "HC buses differing from floor", "value": differ, "target": "0",
                "result": verdict(differ == 0)})
    hours = r["hours"]
    out.append({"name": "HC 2 hours --workers 2 / (floor / 2)", "value": hours["ratio_to_floor_over_2"],
                "target": f"<= {hours['target']:g}", "result": hours["result"]})
    change, study = r["inverters"]["change"], r["inverters"]["study"]
    out.append({"name": "volt-var change p50 / engine floor", "value": change["in_process_over_floor"],
                "target": f"<= {change['target']:g}", "result": change["result"]})
    out.append({"name": "HC volt-var --workers 2 / (floor / 2)", "value": study["ratio_to_floor_over_2"],
                "target": f"<= {study['target']:g}", "result": study["result"]})
    return out


def print_report(r: dict[str, Any]) -> None:
    env, fl, hc = r["environment"], r["floor"], r["hosting_capacity"]
    print(f"\nMachine: {env['cpu']}, {env['cpus_usable']} usable of {env['cpu_count']} CPUs, Python {env['python']}, "
          f"OpenDSSDirect.py {env['opendssdirect']} ({env['engine'].split(' revision')[0]})")
    f = fl["hosting_capacity"]
    runs = ", ".join(f"{run:.2f}" for run in f["runs"])
    print(f"\nHosting capacity, {f['buses']} buses, step {STEP_KW:g} kW      wall s   trials  CPU ms/trial")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {f['wall_s']:7.2f} {f['trials']:>8} {f['ms_per_trial']:>13.2f}"
          f"   (mean of {runs})")
    for key, label in (("workers_1", "API --workers 1"), ("workers_2", "API --workers 2"),
                       ("dask_2", "API --dask-scheduler, 2 workers")):
        run = hc[key]
        print(f"  {label:<36} {run['wall_s']:7.2f} {run['trials']:>8} {run['worker_cpu_ms_per_trial']:>13.2f}"
              f"   (job {run['job_s']:.2f} s, 4-bus warm-up {run['warm_up_s']:.2f} s, "
              f"{len(run['differ_from_floor'])} buses differ from the floor)")
        for d in run["differ_from_floor"]:
            print(f"      bus {d['bus']}: API {d['api_kW']} kW ({d['api_kind']}), floor {d['floor_kW']} kW "
                  f"({d['floor_kind']})")
    fts = fl["time_series"]
    print_hours(r["hours"])
    print_inverters(r["inverters"])
    print(f"\nTime series, {fts['hours']} hours        wall s   (floor: mean of "
          f"{', '.join(f'{run:.2f}' for run in fts['runs'])})")
    print(f"  {'floor (opendssdirect, 1 process)':<36} {fts['wall_s']:7.2f}")
    for key, label in (("time_series", "API, fresh workers"), ("time_series_after_studies", "API, after HC + batch")):
        ts = r[key]
        print(f"  {label:<36} {ts['wall_s']:7.2f}   (job {ts['job_s']:.2f} s, {ts['tasks']} chunks; max |API - floor|: "
              f"{ts['max_abs_diff_substation_kW']:.1e} kW, {ts['max_abs_diff_voltage_pu']:.1e} pu; "
              f"{ts['hours_taps_differ']} hours with other taps)")
    b = r["batch"]
    print(f"\nBatch, {b['cases']} cases (--workers 2, after the HC study): {b['wall_s']:.2f} s, "
          f"{b['ms_per_case']:.2f} ms per case ({b['tasks']} tasks)")
    lat = r["latency"]
    print(f"\nGET /state, ms            {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8}")
    for key in ("idle", "during_study"):
        s = lat[key]
        print(f"  {key:<22} {s['n']:>6} {s['p50']:>8.3f} {s['p90']:>8.3f} {s['p99']:>8.3f}")
    if not lat["study_ran_throughout"]:
        print("  [the study finished before the sample did]")
    o = r["dask_overhead"]
    print(f"\nPer-task time, ms ({o['tasks']} tasks, 2 workers)   one at a time   all at once")
    for kind in ("trivial", "one_trial_hc"):
        for executor in ("dask", "process_pool"):
            s = o[executor][kind]
            print(f"  {kind + ', ' + executor:<40} {s['one_at_a_time_ms']:>10.3f} {s['all_at_once_ms']:>12.3f}")
    print(f"\nTargets:\n  {'figure':<34} {'value':>8}  {'target':<8} result")
    for t in r["targets"]:
        value = f"{t['value']:.3f}" if isinstance(t["value"], float) else str(t["value"])
        print(f"  {t['name']:<34} {value:>8}  {t['target']:<8} {t['result']}")
    noisy = {phase: pct for phase, pct in r["other_processes_cpu_pct"].items() if pct > 5}
    print("\nOther processes used " + (", ".join(f"{pct:.0f} % of the CPUs during {phase}" for phase, pct in
                                               noisy.items()) + ": those figures are disturbed" if noisy
                                     else "under 5 % of the CPUs in every phase"))
    print(f"Total run {r['total_s']:.0f} s; JSON: {r['out']}")
