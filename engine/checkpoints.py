"""Engine-side primitives of studies: come back to a kept state, and solve hour after hour of load and sun.

`OpenDSSCircuit` inherits these. A study never journals anything: every trial, case or hour ends with the circuit
back in the state it started from (set-points, generators, regulator taps), solved again, so the next trial
starts from the same place wherever it runs.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from engine.customer_pv import CUSTOMER_PV_PREFIX, CustomerPV
from engine.index import TAP_STEP_PU, read_limits, values
from engine.results import Snapshot


class CheckpointLost(Exception):
    """The circuit was recompiled (a reset) since the checkpoint: rebuild it from its ops instead."""


@dataclass(frozen=True)
class Checkpoint:
    compile_count: int
    sequence: int
    loads: np.ndarray  # kW and kvar set-points, 2 x loads
    taps: list[float]
    generators: dict[str, Any]  # name -> Generator (copies)
    inverters: dict[str, Any]  # name -> the inverter definition on (engine.inverters.Definition)
    cumulative_factor: dict[int, float]
    snapshot: Snapshot


class CircuitStudies(CustomerPV):
    """Checkpoints and hour-by-hour runs (every method takes the circuit's lock); customer PV trials inherited."""

    def checkpoint(self) -> Checkpoint:
        with self._lock:
            return Checkpoint(self._compile_count, self.sequence, self._load_setpoints(), self._regulator_taps(),
                              {name: copy.copy(g) for name, g in self._generators.items()},
                              self.active_definitions(), dict(self._cumulative_factor), self._snapshot)

    def restore(self, kept: Checkpoint) -> None:
        """Put back the set-points, generators and taps of `kept` and solve: the state it was taken in."""
        with self._lock:
            if kept.compile_count != self._compile_count:
                raise CheckpointLost("the circuit was recompiled since the checkpoint")
            self._batch.Load.kW = kept.loads[0]
            self._batch.Load.kvar = kept.loads[1]
            for name in self._generators:
                self._put_slot(name, kept.generators.get(name), kept.inverters.get(name))
            self._generators = {name: copy.copy(kept.generators.get(name, generator))
                                for name, generator in self._generators.items()}
            for generator in self._generators.values():
                if generator.name not in kept.generators:
                    generator.enabled = False
            self._restore_regulator_taps(kept.taps)
            self._engine.Solution.Solve()
            self._cumulative_factor = dict(kept.cumulative_factor)
            self.sequence, self._snapshot = kept.sequence, kept.snapshot

    def disabled_generators(self) -> int:
        """Generators kept disabled in the engine (removed, refused, or a study's trials): each slows a solve.
        Customer PV generators are not counted: at most one per load, reused by every stochastic trial."""
        return sum(not generator.enabled and not generator.name.startswith(CUSTOMER_PV_PREFIX)
                   for generator in self._generators.values())

    def _inverter_hour(self, has_generators: bool, multiplier: float) -> dict[str, Any]:
        """The figures an hour adds when the scenario has inverter generators: the generators' kVAR (positive
        delivered) and the kW the inverters curtailed."""
        outputs = self._inverter_outputs(multiplier)
        plain_kvar = -np.asarray(values(self._batch.Generator.TotalPowers)).imag.sum() if has_generators else 0.0
        return {"generation_kVAR": float(plain_kvar + outputs["kvar"]), "curtailed_kW": outputs["curtailed_kw"]}

    def load_neighbourhoods(self) -> list[int | None]:
        """The neighbourhood of each load, in the engine's load order."""
        index = self._index
        return [index.bus_neighbourhood.get(bus) for bus in index.load_bus]

    def regulator_tap_steps(self) -> dict[str, int]:
        """Each regulator's tap position in steps (0 = neutral)."""
        with self._lock:
            return {transformer: round((tap - 1.0) / TAP_STEP_PU)
                    for (transformer, _), tap in zip(self._index.regulated_windings, self._regulator_taps())}

    def run_hours(self, load_multipliers: np.ndarray, generator_multipliers: np.ndarray,
                  start_taps: dict[str, int] | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Solve hour after hour: each load at its set-point x its multiplier of the hour (rows: hours, columns:
        loads), each generator at its set-point x the generator multiplier; regulators act from the taps of the
        hour before (`start_taps`, in steps, for the first hour; default the circuit's own). Returns one row per
        hour and the taps after the last hour; the circuit is back in its own state afterwards. An inverter
        generator's irradiance is the multiplier (its kVA stays); with any, each hour adds generation_kVAR and
        curtailed_kW."""
        with self._lock:
            kept = self.checkpoint()
            generators = self._enabled_generator_setpoints()
            inverters = list(self._active.values())
            if start_taps is not None:
                self._restore_regulator_taps([1.0 + TAP_STEP_PU * start_taps[transformer]
                                              for transformer, _ in self._index.regulated_windings])
            rows = []
            try:
                for hour, (multipliers, generator_multiplier) in enumerate(zip(load_multipliers,
                                                                              generator_multipliers)):
                    magnitudes = self._solve_hour(kept, generators, multipliers, float(generator_multiplier),
                                                  f"hour {hour} of the series")
                    reading = read_limits(self._engine, self._batch, self._index, bool(generators), magnitudes,
                                          bool(inverters))
                    row = _hour_row(reading, self.voltage_limits_pu, self.regulator_tap_steps())
                    if inverters:
                        row.update(self._inverter_hour(bool(generators), float(generator_multiplier)))
                    rows.append(row)
                final_taps = self.regulator_tap_steps()
            finally:
                self.restore(kept)
            return rows, final_taps

    @contextlib.contextmanager
    def hour_state(self, load_multipliers: np.ndarray, generator_multiplier: float, what: str
                   ) -> Iterator[dict[str, Any]]:
        """The circuit held in one hour's state while the caller works on it (a study's trials start from it):
        exactly the first hour of `run_hours` from the circuit's own taps. Yields the lean reading of that
        state; the circuit is back in its own state afterwards, whatever the caller left."""
        with self._lock:
            kept = self.checkpoint()
            generators = self._enabled_generator_setpoints()
            try:
                magnitudes = self._solve_hour(kept, generators, load_multipliers, generator_multiplier, what)
                yield read_limits(self._engine, self._batch, self._index, bool(generators), magnitudes,
                                  bool(self._active))
            finally:
                self.restore(kept)

    def _enabled_generator_setpoints(self) -> list[tuple[str, float]]:
        """The plain generators on, with their set-points (inverter generators follow by their irradiance)."""
        return [(name, g.kw) for name, g in self._generators.items() if g.enabled and g.inverter is None]

    def _solve_hour(self, kept: Checkpoint, generators: list[tuple[str, float]], multipliers: np.ndarray,
                    generator_multiplier: float, what: str) -> np.ndarray:
        """Loads at the kept set-points x their multipliers, generators at theirs x the generator multiplier and
        inverter generators at that irradiance (their kVA stays), solved (the regulators and inverter controls act
        from where the circuit is). One hour of a series, one hour of a study."""
        self._batch.Load.kW = kept.loads[0] * multipliers
        self._batch.Load.kvar = kept.loads[1] * multipliers
        for name, kw in generators:
            self._engine.Generators.Name(name)
            self._engine.Generators.kW(kw * generator_multiplier)
        for definition in self._active.values():
            self._set_irradiance(definition, generator_multiplier)
        return self._solve_or_raise(what)

    def load_setpoints_kw(self) -> list[float]:
        """Each load's kW set-point in the engine's order (what a series or a study's hours multiply)."""
        with self._lock:
            return self._load_setpoints()[0].tolist()


def _hour_row(reading: dict[str, Any], voltage_limits_pu: tuple[float, float], taps: dict[str, int]
              ) -> dict[str, Any]:
    """One hour of a series from a lean reading: the same figures and counts a snapshot's summary gives."""
    vmag, (low, high) = reading["vmag_pu"], voltage_limits_pu
    overloaded = int((reading["line_loading_pct"] > 100.0).sum() + (reading["transformer_loading_pct"] > 100.0).sum())
    return {"substation_kW": reading["source_kw"], "substation_kVAR": reading["source_kvar"],
            "load_kW": reading["load_kw"], "generation_kW": reading["generation_kw"], "losses_kW": reading["losses_kw"],
            "min_voltage_pu": float(vmag.min()), "max_voltage_pu": float(vmag.max()),
            "voltage_violations": int(((vmag < low) | (vmag > high)).sum()), "thermal_violations": overloaded,
            "reverse_power": bool(reading["source_kw"] < 0), "taps": taps}
