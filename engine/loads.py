"""The feeder's loads: their set-points as compiled, and each neighbourhood's cumulative factor on them.

A neighbourhood scaling sets its loads to the compiled set-point x the product of every factor given so far, so
successive factors compound and an undo (a rebuild) gives the same numbers as the first time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.index import FeederIndex, values


class Loads:
    """Load set-points and neighbourhood factors of one compiled feeder (callers hold the circuit's lock)."""

    def __init__(self, engine: Any, batch: Any, index: FeederIndex, neighbourhood_buses: dict[int, list[str]]
                 ) -> None:
        self._engine, self._batch, self._index = engine, batch, index
        # The deck's loads alone, fixed at the compile: studies' trial loads come after them (`engine.trial_loads`).
        self._deck = batch.Load.batch(idx=list(range(len(index.load_names))))
        self._neighbourhood_buses = neighbourhood_buses
        self._base = self.setpoints()
        self._factor = {nb: 1.0 for nb in neighbourhood_buses}

    def setpoints(self) -> np.ndarray:
        """kW and kvar set-points now, 2 x loads in the engine's order."""
        return np.stack([np.asarray(values(self._deck.kW), dtype=float),
                         np.asarray(values(self._deck.kvar), dtype=float)])

    def put_setpoints(self, setpoints: np.ndarray) -> None:
        """Every load at these set-points (from `setpoints`, or scaled from them)."""
        self._deck.kW = setpoints[0]
        self._deck.kvar = setpoints[1]

    # ------------------------------------------------------------------ neighbourhoods
    def neighbourhood_ids(self) -> list[int]:
        return sorted(self._neighbourhood_buses)

    def has_neighbourhood(self, neighbourhood: int) -> bool:
        return neighbourhood in self._neighbourhood_buses

    def factor(self, neighbourhood: int) -> float:
        return self._factor[neighbourhood]

    def factors(self) -> dict[int, float]:
        return dict(self._factor)

    def put_factors(self, factors: dict[int, float]) -> None:
        """The cumulative factors a checkpoint kept (the set-points are put back with `put_setpoints`)."""
        self._factor = dict(factors)

    def record_factor(self, neighbourhood: int, cumulative: float) -> None:
        self._factor[neighbourhood] = cumulative

    def scale(self, neighbourhood: int, cumulative: float) -> None:
        """The neighbourhood's loads at their compiled set-points x `cumulative` (in the engine; not recorded)."""
        engine = self._engine
        for i in self._index.neighbourhood_loads[neighbourhood]:
            engine.Loads.Name(self._index.load_names[i])
            engine.Loads.kW(float(self._base[0, i] * cumulative))
            engine.Loads.kvar(float(self._base[1, i] * cumulative))

    def neighbourhood_rows(self) -> list[dict[str, Any]]:
        """Each neighbourhood: buses, loads, base and current kW/kvar set-points, cumulative factor."""
        rows = []
        for nb, buses in sorted(self._neighbourhood_buses.items()):
            loads = self._index.neighbourhood_loads[nb]
            base_kw = float(self._base[0, loads].sum())
            base_kvar = float(self._base[1, loads].sum())
            factor = self._factor[nb]
            rows.append({"id": nb, "buses": buses, "loads": [self._index.load_names[i] for i in loads],
                         "base_kW": base_kw, "base_kVAR": base_kvar, "kW": base_kw * factor,
                         "kVAR": base_kvar * factor, "cumulative_factor": factor})
        return rows

    def load_neighbourhoods(self) -> list[int | None]:
        """The neighbourhood of each load, in the engine's load order."""
        return [self._index.bus_neighbourhood.get(bus) for bus in self._index.load_bus]

    def on_bus(self, bus: str) -> list[dict[str, Any]]:
        """The loads on one bus with their set-points now."""
        setpoints = self.setpoints()
        return [{"name": self._index.load_names[i], "kW": float(setpoints[0, i]), "kVAR": float(setpoints[1, i])}
                for i, load_bus in enumerate(self._index.load_bus) if load_bus == bus]
