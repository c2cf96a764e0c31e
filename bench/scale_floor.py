"""The engine floor of bench/scale.py, for any deck: each request path's engine work with opendssdirect alone, in
this process (none of the product's code), timed. What the server does for a path, the floor does with OpenDSS's own
commands and batch reads:

- start-up: a new context, the deck compiled, the solution settings the server uses, the first solve;
- a change (a new generator, a generator's new kW, a neighbourhood's loads scaled): the change, `Solve()`, the batch
  reads an answer needs (bench/engine_floor.py's: every bus voltage and per-unit magnitude, every line's powers and
  currents, losses, total power) and `orjson.dumps` of them;
- a dry run: the same, then the change taken back and solved again (as the server rolls one back);
- a read (GET /state, GET /buses): the batch reads and `orjson.dumps`, no solve;
- a rebuild from the journal (undo, a resting scenario used again): a fresh compile and first solve, the journal's
  ops applied in turn, each solved, then the reads and `orjson.dumps` once.

The generator text is the tests' reference engine's (tests/support/bare_feeder.py), the same as every floor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect
import orjson

from engine_floor import BenchError
from support.bare_feeder import GENERATOR, generator_connection

#: The server's solution settings at least (engine/solver.py: iterations 1000, control iterations 100, tolerance
#: 1e-7 pu), as tests/support/bare_feeder.solved_directly sets them.
MAX_ITERATIONS, MAX_CONTROL_ITERATIONS, TOLERANCE = 1000, 100, 1e-7
Op = dict[str, Any]  # an API op: {"op": "add_generator", "bus_name", "phases", "kw"} or a neighbourhood's


def now() -> int:
    return time.perf_counter_ns()


def compiled(master: Path) -> Any:
    """A new context with the deck compiled and solved once, as the server starts an engine."""
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    dss.Text.Command(f"Compile [{master}]")
    solution = dss.Solution
    solution.MaxIterations(max(solution.MaxIterations(), MAX_ITERATIONS))
    solution.MaxControlIterations(max(solution.MaxControlIterations(), MAX_CONTROL_ITERATIONS))
    solution.Convergence(TOLERANCE)
    solution.Solve()
    if not solution.Converged():
        raise BenchError(f"engine floor: {master} did not converge")
    return dss


class DeckFloor:
    """One compiled deck and the loads of each neighbourhood (load names, as GET /neighbourhoods lists them)."""

    def __init__(self, master: Path, neighbourhood_loads: dict[int, list[str]]) -> None:
        self.master = master
        started = now()
        self.dss = compiled(master)
        self.startup_ns = now() - started
        self.batch = self.dss.to_altdss()
        self.neighbourhood_loads = neighbourhood_loads

    # ------------------------------------------------------------------ the parts
    def solve(self) -> None:
        self.dss.Solution.Solve()
        if not self.dss.Solution.Converged():
            raise BenchError("engine floor: the power flow did not converge")

    def read_dump(self) -> bytes:
        """The batch reads a full answer needs, serialised by orjson (bench/engine_floor.py's reads)."""
        d, batch = self.dss, self.batch
        currents = batch.Line.CurrentsMagAng
        return orjson.dumps({
            "bus_volts": np.asarray(d.Circuit.AllBusVolts()),
            "bus_vmag_pu": np.asarray(d.Circuit.AllBusMagPu()),
            "line_powers": np.asarray(batch.Line.TotalPowers()).view(np.float64),
            "line_currents": np.asarray(currents() if callable(currents) else currents),
            "losses": d.Circuit.Losses(),
            "total_power": d.Circuit.TotalPower(),
        }, option=orjson.OPT_SERIALIZE_NUMPY)

    def generator_command(self, op: Op) -> tuple[str, str]:
        """The generator's name and its `New Generator` text, as add_generator names and types one."""
        d = self.dss
        d.Circuit.SetActiveBus(op["bus_name"])
        nodes = sorted(d.Bus.Nodes())
        if op["phases"] == 3:
            use, kv = [1, 2, 3], d.Bus.kVBase() * 3 ** 0.5
        else:
            use, kv = [nodes[0]], d.Bus.kVBase()
        name = f"gen_{op['bus_name']}_{''.join(map(str, use))}"
        return name, f"New Generator.{name} {generator_connection(op['bus_name'], use, kv)} kw={op['kw']!r} {GENERATOR}"

    def change(self, op: Op, created: set[str]) -> None:
        """Apply one op (untimed lookups inside are part of what the server does too)."""
        d = self.dss
        if op["op"] == "add_generator":
            name, command = self.generator_command(op)
            if name in created:
                d.Generators.Name(name)
                d.Generators.kW(op["kw"])
            else:
                d.Text.Command(command)
                created.add(name)
        else:
            self.scale(op["neighbourhood"], op["factor"])

    def scale(self, neighbourhood: int, factor: float) -> None:
        d = self.dss
        for name in self.neighbourhood_loads[neighbourhood]:
            d.Loads.Name(name)
            d.Loads.kW(d.Loads.kW() * factor)
            d.Loads.kvar(d.Loads.kvar() * factor)

    # ------------------------------------------------------------------ the paths, timed (ns)
    def timed_change(self, op: Op, created: set[str]) -> int:
        started = now()
        self.change(op, created)
        self.solve()
        self.read_dump()
        return now() - started

    def timed_dry_run(self, neighbourhood: int, factor: float) -> int:
        started = now()
        self.scale(neighbourhood, factor)
        self.solve()
        self.read_dump()
        self.scale(neighbourhood, 1 / factor)
        self.solve()
        return now() - started

    def timed_read(self) -> int:
        started = now()
        self.read_dump()
        return now() - started

    def timed_rebuild(self, ops: list[Op]) -> int:
        """A fresh engine of the deck with these ops replayed, each solved, then read once (this floor's own engine
        is left as it was)."""
        started = now()
        fresh = DeckFloor.__new__(DeckFloor)
        fresh.master, fresh.neighbourhood_loads = self.master, self.neighbourhood_loads
        fresh.dss = compiled(self.master)
        fresh.batch = fresh.dss.to_altdss()
        created: set[str] = set()
        for op in ops:
            fresh.change(op, created)
            fresh.solve()
        fresh.read_dump()
        return now() - started

    def timed_startup(self) -> int:
        """Compile and first solve in a new context."""
        started = now()
        compiled(self.master)
        return now() - started
