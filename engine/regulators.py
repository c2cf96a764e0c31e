"""The feeder's voltage regulators: the taps of their regulated windings, read, put back, in steps, or locked.

A change saves the taps before it and puts them back when it is refused or previewed, so the next change starts
from the same place; a study's hour starts from the taps the hour before left.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.index import TAP_STEP_PU


def lock_taps(engine: Any, locked_taps: Mapping[str, int]) -> None:
    """Hold each named regulator's transformer at its tap (in steps) and stop every control from moving a tap."""
    for transformer, tap in locked_taps.items():
        engine.Transformers.Name(transformer)
        engine.Transformers.Wdg(2)
        engine.Transformers.Tap(1.0 + TAP_STEP_PU * tap)
    for control in engine.RegControls.AllNames():
        engine.RegControls.Name(control)
        engine.RegControls.MaxTapChange(0)


class Regulators:
    """The regulated (transformer, winding) pairs of one compiled feeder, in the engine's RegControl order."""

    def __init__(self, engine: Any, windings: list[tuple[str, int]]) -> None:
        self._engine = engine
        self.windings = windings

    def taps(self) -> list[float]:
        """Each regulated winding's tap (per unit)."""
        engine = self._engine
        taps = []
        for transformer, winding in self.windings:
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            taps.append(engine.Transformers.Tap())
        return taps

    def restore(self, taps: list[float]) -> None:
        """Put back taps read by `taps`."""
        engine = self._engine
        for (transformer, winding), tap in zip(self.windings, taps):
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            engine.Transformers.Tap(tap)

    def steps(self) -> dict[str, int]:
        """Each regulator's tap position in steps (0 = neutral), by transformer."""
        return {transformer: round((tap - 1.0) / TAP_STEP_PU)
                for (transformer, _), tap in zip(self.windings, self.taps())}

    def restore_steps(self, steps: Mapping[str, int]) -> None:
        """Put every regulator at a tap given in steps (a series' hour starting from the hour before)."""
        self.restore([1.0 + TAP_STEP_PU * steps[transformer] for transformer, _ in self.windings])
