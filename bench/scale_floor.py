"""The engine floor of bench/scale.py, for any deck: each request path's engine work with opendssdirect alone, in
this process (none of the product's code), timed. What the server does for a path, the floor does with OpenDSS's own
commands and batch reads:

- start-up: a new context, the deck compiled, the solution settings the server uses, the first solve;
- a change (a new generator, a generator's new kW, a neighbourhood's loads scaled): the change, `Solve()`, the batch
  reads a full answer needs (every node's voltage and per-unit magnitude; the loads', generators', lines' and
  transformers' powers; the lines' and transformers' currents; losses, total power) and `orjson.dumps` of them;
- a dry run: the same, then the change taken back and solved again (as the server rolls one back);
- a read (GET /state, GET /buses): the batch reads and `orjson.dumps`, no solve;
- a rebuild from the journal (undo, a resting scenario used again): the deck compiled again in a context of its
  own (cleared, as the server clears a scenario's engine) and solved, the journal's ops applied in turn, each
  solved, then the reads and `orjson.dumps` once.

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


def new_context() -> Any:
    dss = opendssdirect.NewContext()
    dss.Basic.AllowChangeDir(False)
    return dss


def compiled(master: Path, dss: Any = None) -> Any:
    """The deck compiled and solved once, as the server starts an engine: in a new context, or in `dss` cleared
    first, as the server recompiles a scenario's engine to rebuild it."""
    if dss is None:
        dss = new_context()
    else:
        dss.Text.Command("Clear")
    dss.Text.Command(f"Compile [{master}]")
    solution = dss.Solution
    solution.MaxIterations(max(solution.MaxIterations(), MAX_ITERATIONS))
    solution.MaxControlIterations(max(solution.MaxControlIterations(), MAX_CONTROL_ITERATIONS))
    solution.Convergence(TOLERANCE)
    solution.Solve()
    if not solution.Converged():
        raise BenchError(f"engine floor: {master} did not converge")
    return dss


def complex_pairs(batch_property: Any) -> np.ndarray:
    """A batch read of complex numbers as (re, im) pairs of floats, what orjson serialises."""
    value = batch_property() if callable(batch_property) else batch_property
    return np.asarray(value, dtype=complex).view(np.float64)


class DeckFloor:
    """One compiled deck and the loads of each neighbourhood (load names, as GET /neighbourhoods lists them)."""

    def __init__(self, master: Path, neighbourhood_loads: dict[int, list[str]]) -> None:
        self.master = master
        started = now()
        self.dss = compiled(master)
        self.startup_ns = now() - started
        self.batch = self.dss.to_altdss()
        self.neighbourhood_loads = neighbourhood_loads
        self.spare = new_context()  # where rebuilds compile again

    # ------------------------------------------------------------------ the parts
    def solve(self) -> None:
        self.dss.Solution.Solve()
        if not self.dss.Solution.Converged():
            raise BenchError("engine floor: the power flow did not converge")

    def read_dump(self) -> bytes:
        """The batch reads a full answer needs (every node's voltage, every load's, generator's, line's and
        transformer's powers, the lines' and transformers' currents, the totals), serialised by orjson."""
        d, batch = self.dss, self.batch
        numbers = {
            "bus_volts": np.asarray(d.Circuit.AllBusVolts()),
            "bus_vmag_pu": np.asarray(d.Circuit.AllBusMagPu()),
            "load_powers": complex_pairs(batch.Load.Powers),
            "line_powers": complex_pairs(batch.Line.TotalPowers),
            "line_currents": complex_pairs(batch.Line.Currents),
            "transformer_powers": complex_pairs(batch.Transformer.TotalPowers),
            "transformer_currents": complex_pairs(batch.Transformer.Currents),
            "losses": d.Circuit.Losses(),
            "total_power": d.Circuit.TotalPower(),
        }
        if d.Generators.Count():
            numbers["generator_powers"] = complex_pairs(batch.Generator.Powers)
        return orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY)

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
        """The deck compiled again in the spare context (cleared first), these ops replayed, each solved, then read
        once; this floor's own engine is left as it was."""
        started = now()
        fresh = DeckFloor.__new__(DeckFloor)
        fresh.master, fresh.neighbourhood_loads = self.master, self.neighbourhood_loads
        fresh.dss = compiled(self.master, self.spare)
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
