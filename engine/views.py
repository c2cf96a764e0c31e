"""Read-only views of a circuit for the table routes: buses, one bus, generators, neighbourhoods, transformers.

Kept apart from the engine owner's changes so each reads in one sitting; `OpenDSSCircuit` inherits them and they
use its lock, index maps and last snapshot.
"""

from __future__ import annotations

from typing import Any

from engine.index import TAP_STEP_PU


class CircuitViews:
    """Tables built from the last solved state (every method takes the circuit's lock)."""

    def buses(self) -> list[dict[str, Any]]:
        """Every bus: nodes, base kV, coordinates, neighbourhood, distance, loads and generators on it."""
        with self._lock:
            on_bus: dict[str, list[str]] = {}
            for generator in self._generators.values():
                if generator.enabled:
                    on_bus.setdefault(generator.bus, []).append(generator.name)
            return [{**info, "generators": on_bus.get(bus, [])} for bus, info in self._index.bus_info.items()]

    def bus(self, name: str) -> dict[str, Any]:
        """One bus with its node voltages, loads, generators and the lines that touch it."""
        with self._lock:
            bus = self._check_bus(name, "name")
            snapshot = self._snapshot
            rows = [r for r in snapshot.bus_details if r["Bus"] == bus]
            lines = [r for r in snapshot.line_flows if bus in (r["Bus1"], r["Bus2"])]
            load_setpoints = self._load_setpoints()
            loads = [{"name": self._index.load_names[i], "kW": float(load_setpoints[0, i]),
                      "kVAR": float(load_setpoints[1, i])}
                     for i, load_bus in enumerate(self._index.load_bus) if load_bus == bus]
            generators = [g for g in self.generators() if g["bus"] == bus]
            return {**self._index.bus_info[bus], "voltages": rows, "loads": loads, "generators": generators,
                    "lines": lines, "sequence": snapshot.sequence}

    def generators(self) -> list[dict[str, Any]]:
        """Generators added through the API: setpoint and delivered power from the last solve. An inverter
        generator's row adds its settings, `mode`, `kva` and `curtailed_kW` (set-point less delivered)."""
        with self._lock:
            power = self._snapshot.arrays["generator_power"]
            inverter_power = self._snapshot.arrays["inverter_power"]
            delivered = {name: power[i] for i, name in enumerate(self._generator_order) if i < len(power)}
            return [{**g.describe(), "delivered_kW": float(delivered[g.name].real),
                     "delivered_kVAR": float(delivered[g.name].imag)} if g.inverter is None
                    else {**g.describe(), **self._inverter_row(g.name, inverter_power)}
                    for g in self._generators.values() if g.enabled]

    def neighbourhoods(self) -> list[dict[str, Any]]:
        """Each neighbourhood: buses, loads, base and current kW/kvar set-points, cumulative factor."""
        with self._lock:
            rows = []
            for nb, buses in sorted(self._neighbourhood_buses.items()):
                loads = self._index.neighbourhood_loads[nb]
                base_kw = float(self._load_base[0, loads].sum())
                base_kvar = float(self._load_base[1, loads].sum())
                factor = self._cumulative_factor[nb]
                rows.append({"id": nb, "buses": buses, "loads": [self._index.load_names[i] for i in loads],
                             "base_kW": base_kw, "base_kVAR": base_kvar, "kW": base_kw * factor,
                             "kVAR": base_kvar * factor, "cumulative_factor": factor})
            return rows

    def transformers(self) -> list[dict[str, Any]]:
        """The regulators and XFM1: where they sit, their rating, loading and regulator tap."""
        with self._lock:
            arrays = self._snapshot.arrays
            taps = dict(zip((t for t, _ in self._index.regulated_windings), self._regulator_taps()))
            return [{"name": name, "bus1": buses[0], "bus2": buses[1], "kva": kva,
                     "loading_pct": float(loading), "losses_kW": float(losses),
                     "tap": round((taps[name] - 1.0) / TAP_STEP_PU) if name in taps else None}
                    for name, buses, kva, loading, losses in zip(
                        self._index.transformer_names, self._index.transformer_buses, self._index.transformer_kva,
                        arrays["transformer_loading_pct"], arrays["transformer_losses_kw"])]

    @property
    def transformer_names(self) -> list[str]:
        """The transformers in the engine's order (the order of the snapshot's transformer arrays)."""
        return self._index.transformer_names

    def health(self) -> dict[str, Any]:
        snapshot = self._snapshot
        return {"ready": True, "converged": bool(snapshot.section("power_summary")["converged"]),
                "sequence": snapshot.sequence, "buses": len(self._index.bus_names),
                "generators": sum(g.enabled for g in self._generators.values())}
