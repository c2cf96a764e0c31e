"""Engine-side primitives of studies: a kept state to come back to, and hour after hour of load and sun.

A study never journals anything: every trial, case or hour ends with the circuit back in the state it started from
(set-points, generators, regulator taps), solved again, so the next trial starts from the same place wherever it
runs. The circuit takes the checkpoint and puts it back; `HourRunner` solves hours between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.controls import Controls, ControlState
from engine.generators import GeneratorSlots, KeptGenerators
from engine.index import FeederIndex, read_limits, values
from engine.loads import Loads
from engine.regulators import Regulators
from engine.results import Snapshot
from engine.solver import Solver


class CheckpointLost(Exception):
    """The circuit was recompiled (a reset) since the checkpoint: rebuild it from its ops instead."""


@dataclass(frozen=True)
class Checkpoint:
    """One state of a circuit, enough to put it back without a rebuild (within one compile)."""

    compile_count: int
    sequence: int
    loads: np.ndarray  # kW and kvar set-points, 2 x loads
    controls: ControlState  # regulator taps and capacitor banks
    generators: KeptGenerators
    cumulative_factor: dict[int, float]
    snapshot: Snapshot


class HourRunner:
    """Solves one compiled feeder hour by hour from a checkpoint's set-points (callers hold the lock and put the
    checkpoint back afterwards)."""

    def __init__(self, engine: Any, batch: Any, index: FeederIndex, generators: GeneratorSlots, loads: Loads,
                 regulators: Regulators, controls: Controls, solver: Solver, voltage_limits_pu: tuple[float, float]
                 ) -> None:
        self._engine, self._batch, self._index = engine, batch, index
        self._generators, self._loads, self._regulators, self._solver = generators, loads, regulators, solver
        self._controls = controls
        self._voltage_limits_pu = voltage_limits_pu

    def run(self, kept: Checkpoint, load_multipliers: np.ndarray, generator_multipliers: np.ndarray,
            start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Each hour's row, and the controls after the last hour (see `OpenDSSCircuit.run_hours`)."""
        plain = self._generators.plain_setpoints()
        inverters = bool(self._generators.inverters.active_definitions())
        if start is not None:
            self._regulators.restore_steps(start["taps"])
            self._controls.put_banks(start.get("banks", []))
        rows = []
        for hour, (multipliers, generator_multiplier) in enumerate(zip(load_multipliers, generator_multipliers)):
            magnitudes = self._solve_hour(kept, plain, multipliers, float(generator_multiplier),
                                          f"hour {hour} of the series")
            reading = read_limits(self._engine, self._batch, self._index, bool(plain), magnitudes, inverters)
            row = hour_row(reading, self._voltage_limits_pu, self._regulators.steps(), self._index.phase_node_mask)
            if inverters:
                row.update(self._inverter_hour(bool(plain), float(generator_multiplier)))
            rows.append(row)
        return rows, {"taps": self._regulators.steps(), "banks": self._controls.banks()}

    def first_hour(self, kept: Checkpoint, load_multipliers: np.ndarray, generator_multiplier: float, what: str
                   ) -> dict[str, Any]:
        """The lean reading of one hour solved from the circuit's own taps: the first hour of `run`."""
        plain = self._generators.plain_setpoints()
        magnitudes = self._solve_hour(kept, plain, load_multipliers, generator_multiplier, what)
        return read_limits(self._engine, self._batch, self._index, bool(plain), magnitudes,
                           bool(self._generators.inverters.active_definitions()))

    def _solve_hour(self, kept: Checkpoint, plain: list[tuple[str, float]], multipliers: np.ndarray,
                    generator_multiplier: float, what: str) -> np.ndarray:
        """Loads at the kept set-points x their multipliers, generators at theirs x the generator multiplier and
        inverter generators at that irradiance (their kVA stays), solved (the regulators and inverter controls act
        from where the circuit is; the capacitor controls from its banks, an hour after any switching: see
        `engine.controls`). One hour of a series, one hour of a study."""
        self._controls.start_hour()
        self._loads.put_setpoints(kept.loads * multipliers)
        for name, kw in plain:
            self._engine.Generators.Name(name)
            self._engine.Generators.kW(kw * generator_multiplier)
        inverters = self._generators.inverters
        for definition in inverters.active_definitions().values():
            inverters.set_irradiance(definition, generator_multiplier)
        return self._solver.solve(what)

    def _inverter_hour(self, has_generators: bool, multiplier: float) -> dict[str, Any]:
        """The figures an hour adds when the scenario has inverter generators: the generators' kVAR (positive
        delivered) and the kW the inverters curtailed."""
        outputs = self._generators.inverters.outputs(multiplier)
        plain_kvar = -np.asarray(values(self._batch.Generator.TotalPowers)).imag.sum() if has_generators else 0.0
        return {"generation_kVAR": float(plain_kvar + outputs["kvar"]), "curtailed_kW": outputs["curtailed_kw"]}


def hour_row(reading: dict[str, Any], voltage_limits_pu: tuple[float, float], taps: dict[str, int],
             phase_node: np.ndarray | None = None) -> dict[str, Any]:
    """One hour of a series from a lean reading: the same figures and counts a snapshot's summary gives, the
    voltages judged on the phase nodes (`phase_node`, the index's mask; None: every node) as a snapshot's are."""
    vmag, (low, high) = reading["vmag_pu"], voltage_limits_pu
    if phase_node is not None and not phase_node.all():
        vmag = vmag[phase_node]  # a neutral reads near zero: no undervoltage, and no minimum voltage either
    overloaded = int((reading["line_loading_pct"] > 100.0).sum() + (reading["transformer_loading_pct"] > 100.0).sum())
    return {"substation_kW": reading["source_kw"], "substation_kVAR": reading["source_kvar"],
            "load_kW": reading["load_kw"], "generation_kW": reading["generation_kw"], "losses_kW": reading["losses_kw"],
            "min_voltage_pu": float(vmag.min()) if vmag.size else None,
            "max_voltage_pu": float(vmag.max()) if vmag.size else None,
            "voltage_violations": int(((vmag < low) | (vmag > high)).sum()), "thermal_violations": overloaded,
            "reverse_power": bool(reading["source_kw"] < 0), "taps": taps}
