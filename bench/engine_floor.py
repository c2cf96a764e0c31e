"""The engine floor of bench.py: the latency phase's changes applied with opendssdirect alone, in-process
(no Flask, no simulation_core), on the tests' reference engine (tests/support/bare_feeder.py: the same compile and
generator text), and the workload both share: generator sites, neighbourhood factors.

Also what every part of the bench uses: BenchError and stats_ms (the figures of a set of timings); and it puts
tests/ on sys.path, for the reference engine every floor shares with the tests.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO / "tests"))  # support.bare_feeder, below the bench's own modules and the repository
from support.bare_feeder import GENERATOR, BareFeeder, generator_connection  # noqa: E402
MODEL_DIR = REPO / "Test_Systems" / "IEEE_123_Bus-G"
NEIGHBOURHOOD_FILE = MODEL_DIR / "neighbourhoods.json"

#: The fixed set of generator sites: the first pass over it creates, later passes update (bounded model size).
GENERATOR_SITES: list[tuple[str, int]] = [
    ("13", 3), ("16", 1), ("18", 3), ("9", 1), ("67", 3), ("19", 1), ("72", 3), ("20", 1), ("97", 3), ("33", 1),
    ("101", 3), ("34", 1), ("105", 3), ("37", 1), ("108", 3), ("39", 1), ("60", 3), ("41", 1), ("57", 3), ("45", 1),
]
WARMUP_SITE = ("46", 1)  # used only by the untimed warm-up, so every measured site is new exactly once
WARMUP_ROUNDS = 5
IDLE_BEFORE_STEP_S = 0.003  # the engine floor after idle: this long asleep before each of IDLE_STEPS changes
IDLE_STEPS = 200
LOAD_FACTOR = 1.05  # each neighbourhood alternates x1.05 and x1/1.05, so its cumulative factor stays 1 or 1.05


class BenchError(Exception):
    """A wrong answer or a broken server: the run stops and nothing is reported."""


# ----------------------------------------------------------------------------------------------------- statistics
def stats_ms(samples_ns: list[int] | np.ndarray) -> dict[str, Any]:
    """p50/p90/p99 (numpy linear interpolation), min/max/mean/stdev, in milliseconds."""
    a = np.asarray(samples_ns, dtype=float) / 1e6
    if a.size == 0:
        return {"n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "p50": float(p50), "p90": float(p90), "p99": float(p99), "min": float(a.min()),
            "max": float(a.max()), "mean": float(a.mean()), "stdev": float(a.std(ddof=1)) if a.size > 1 else 0.0}


# ----------------------------------------------------------------------------------------------------- workload
@dataclass
class GeneratorOp:
    bus: str
    phases: int
    kw: float
    new: bool

    @property
    def body(self) -> bytes:
        return orjson.dumps({"bus_name": self.bus, "phases": self.phases, "kw": self.kw})


@dataclass
class LoadOp:
    neighbourhood: int
    factor: float

    @property
    def body(self) -> bytes:
        return orjson.dumps({"neighbourhood": self.neighbourhood, "factor": self.factor})


def generator_kw(site: tuple[str, int], k: int) -> float:
    """Modest set-points: 50..300 kW three-phase, 10..100 kW single-phase."""
    return float(50 + (k * 37) % 251) if site[1] == 3 else float(10 + (k * 13) % 91)


def generator_ops(n: int) -> list[GeneratorOp]:
    """Alternate new and existing: even steps create the next unused site while any is left, odd steps (and
    every step once all sites exist) re-post an existing site round-robin with a different kW."""
    ops: list[GeneratorOp] = []
    created: list[tuple[str, int]] = []
    last_kw: dict[tuple[str, int], float] = {}
    update_turn = 0
    for i in range(n):
        if i % 2 == 0 and len(created) < len(GENERATOR_SITES):
            site, new = GENERATOR_SITES[len(created)], True
            created.append(site)
        else:
            site, new = created[update_turn % len(created)], False
            update_turn += 1
        kw = generator_kw(site, i)
        if kw == last_kw.get(site):
            kw += 1.0
        last_kw[site] = kw
        ops.append(GeneratorOp(site[0], site[1], kw, new))
    return ops


def warmup_generator_ops() -> list[GeneratorOp]:
    bus, phases = WARMUP_SITE
    return [GeneratorOp(bus, phases, 20.0 + 5 * i, i == 0) for i in range(WARMUP_ROUNDS)]


class FactorAlternator:
    """Per client: each neighbourhood alternates x1.05 and x1/1.05; close() lists the ops that bring it back."""

    def __init__(self, neighbourhoods: list[int], offset: int = 0) -> None:
        self.neighbourhoods, self.offset, self.i = neighbourhoods, offset, 0
        self.open: dict[int, bool] = {nb: False for nb in neighbourhoods}

    def next(self) -> LoadOp:
        nb = self.neighbourhoods[(self.i + self.offset) % len(self.neighbourhoods)]
        self.i += 1
        factor = 1 / LOAD_FACTOR if self.open[nb] else LOAD_FACTOR
        self.open[nb] = not self.open[nb]
        return LoadOp(nb, factor)

    def close(self) -> list[LoadOp]:
        ops = [LoadOp(nb, 1 / LOAD_FACTOR) for nb, is_open in self.open.items() if is_open]
        self.open = {nb: False for nb in self.neighbourhoods}
        return ops


def neighbourhood_ids() -> list[int]:
    return sorted(int(k) for k in json.loads(NEIGHBOURHOOD_FILE.read_text(encoding="utf-8"))["neighbourhoods"])


# ----------------------------------------------------------------------------------------------------- engine floor
class EngineFloor(BareFeeder):
    """The same changes with opendssdirect alone: no Flask, no simulation_core."""

    def __init__(self) -> None:
        super().__init__()
        d = self.dss
        raw = json.loads(NEIGHBOURHOOD_FILE.read_text(encoding="utf-8"))["neighbourhoods"]
        bus_nb = {b.lower(): int(nb) for nb, buses in raw.items() for b in buses}
        self.loads: dict[int, list[tuple[str, float, float]]] = {int(nb): [] for nb in raw}
        for name in d.Loads.AllNames():
            d.Loads.Name(name)
            d.Circuit.SetActiveElement(f"Load.{name}")
            bus = d.CktElement.BusNames()[0].split(".")[0].lower()
            if bus in bus_nb:
                self.loads[bus_nb[bus]].append((name, d.Loads.kW(), d.Loads.kvar()))
        self.cumulative = {nb: 1.0 for nb in self.loads}

    def _generator_command(self, op: GeneratorOp) -> tuple[str, str]:
        d = self.dss
        d.Circuit.SetActiveBus(op.bus)
        nodes = sorted(d.Bus.Nodes())
        kv_ln = d.Bus.kVBase()
        if op.phases == 3:
            if not {1, 2, 3} <= set(nodes):
                raise BenchError(f"bus {op.bus} has phases {nodes}; cannot host a 3-phase generator")
            use, kv = [1, 2, 3], kv_ln * 3 ** 0.5
        else:
            use, kv = [nodes[0]], kv_ln
        name = f"gen_{op.bus}_{''.join(map(str, use))}"
        return name, f"New Generator.{name} {generator_connection(op.bus, use, kv)} kw={op.kw!r} {GENERATOR}"

    def _solve_read(self) -> tuple[int, int, bytes]:
        d, batch = self.dss, self.batch
        t0 = time.perf_counter_ns()
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError("engine floor: the power flow did not converge")
        t1 = time.perf_counter_ns()
        line_currents = batch.Line.CurrentsMagAng
        body = orjson.dumps({
            "bus_volts": np.asarray(d.Circuit.AllBusVolts()),
            "bus_vmag_pu": np.asarray(d.Circuit.AllBusMagPu()),
            "line_powers": np.asarray(batch.Line.TotalPowers()).view(np.float64),  # complex -> re, im pairs
            "line_currents": np.asarray(line_currents() if callable(line_currents) else line_currents),
            "losses": d.Circuit.Losses(),
            "total_power": d.Circuit.TotalPower(),
        }, option=orjson.OPT_SERIALIZE_NUMPY)
        return t0, t1, body

    def generator_step(self, op: GeneratorOp) -> tuple[int, int, int, int]:
        """(total, change, solve, read+serialise) in ns."""
        name, command = self._generator_command(op)  # name and kV lookup: outside the timed step
        d = self.dss
        t0 = time.perf_counter_ns()
        if op.new:
            d.Text.Command(command)
        else:
            d.Generators.Name(name)
            d.Generators.kW(op.kw)
        t_solve, t_read, _ = self._solve_read()
        t_end = time.perf_counter_ns()
        return t_end - t0, t_solve - t0, t_read - t_solve, t_end - t_read

    def load_step(self, op: LoadOp) -> tuple[int, int, int, int]:
        d = self.dss
        t0 = time.perf_counter_ns()
        cumulative = self.cumulative[op.neighbourhood] * op.factor
        for name, kw, kvar in self.loads[op.neighbourhood]:
            d.Loads.Name(name)
            d.Loads.kW(kw * cumulative)
            d.Loads.kvar(kvar * cumulative)
        self.cumulative[op.neighbourhood] = cumulative
        t_solve, t_read, _ = self._solve_read()
        t_end = time.perf_counter_ns()
        return t_end - t0, t_solve - t0, t_read - t_solve, t_end - t_read

    def totals(self) -> dict[str, float]:
        p, q = self.dss.Circuit.TotalPower()
        losses_w, _ = self.dss.Circuit.Losses()
        return {"total_circuit_power_kW": -p, "total_circuit_power_kVAR": -q, "total_losses_kW": losses_w / 1000}


def run_floor(gen_warm: list[GeneratorOp], load_warm: list[LoadOp], gen_ops: list[GeneratorOp],
              load_ops: list[LoadOp]) -> dict[str, Any]:
    floor = EngineFloor()
    for g, l in zip(gen_warm, load_warm):
        floor.generator_step(g)
        floor.load_step(l)
    gen, load = [], []
    for g, l in zip(gen_ops, load_ops):  # interleaved, exactly as the HTTP latency phase sends them
        gen.append(floor.generator_step(g))
        load.append(floor.load_step(l))
    out: dict[str, Any] = {"totals": floor.totals()}
    # The same load changes, each after the CPU sat idle for a while, as a server's does between requests while
    # its client reads the last answer: on a virtual machine the first work after an idle spell runs slower.
    after_idle = []
    for op in load_ops[:IDLE_STEPS]:
        time.sleep(IDLE_BEFORE_STEP_S)
        after_idle.append(floor.load_step(op)[0])
    out["load_after_idle"] = {**stats_ms(after_idle), "idle_ms": IDLE_BEFORE_STEP_S * 1000}
    for kind, rows in (("generator", gen), ("load", load)):
        a = np.array(rows)
        out[kind] = stats_ms(a[:, 0])
        out[kind]["components_p50_ms"] = {part: float(np.percentile(a[:, j], 50) / 1e6)
                                          for j, part in ((1, "change"), (2, "solve"), (3, "read_serialise"))}
        out[kind]["samples_us"] = [round(x / 1e3, 1) for x in a[:, 0].tolist()]
    new = [r[0] for r, g in zip(gen, gen_ops) if g.new]
    existing = [r[0] for r, g in zip(gen, gen_ops) if not g.new]
    out["generator_new"], out["generator_existing"] = stats_ms(new), stats_ms(existing)
    out["mean_p50_ms"] = (out["generator"]["p50"] + out["load"]["p50"]) / 2
    return out
