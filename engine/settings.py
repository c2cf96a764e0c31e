"""The engine settings of a server: one frozen value, built once from the command line (or `create_app`'s config)
and handed to everything that compiles a feeder: the scenario registry, the engine hosts, the local study workers,
the Dask workers' plugin and `python -m studies`. It travels with every study task, so it is small and picklable.

Each default is written here once; request models and the command lines read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from engine.feeder import Feeder

#: ANSI C84.1 Range A service voltage: 0.95 to 1.05 pu of nominal (the limits utilities plan to).
ANSI_RANGE_A_PU: tuple[float, float] = (0.95, 1.05)


@dataclass(frozen=True)
class EngineSettings:
    """How an engine judges and holds its feeder.

    `voltage_limits_pu`: a node outside (low, high) is a voltage violation in every answer.
    `locked_taps`: regulator (transformer name) and tap position in steps, each held fixed at that tap with its
    control unable to move it; empty, the regulators act as the deck defines them.
    `feeder`: the feeder every engine compiles (`engine.feeder`, its deck's bytes with it); None, our IEEE 123-bus
    deck."""

    voltage_limits_pu: tuple[float, float] = ANSI_RANGE_A_PU
    locked_taps: tuple[tuple[str, int], ...] = ()
    feeder: Feeder | None = None

    @classmethod
    def of(cls, voltage_limits_pu: tuple[float, float] | list[float] = ANSI_RANGE_A_PU,
           locked_taps: Mapping[str, int] | None = None, feeder: Feeder | None = None) -> "EngineSettings":
        """From the shapes a command line gives: a pair of limits, a mapping of taps (or None), a feeder."""
        low, high = voltage_limits_pu
        return cls((float(low), float(high)), tuple(sorted((locked_taps or {}).items())), feeder)

    @property
    def taps(self) -> dict[str, int]:
        """The locked taps as a mapping (empty: none locked)."""
        return dict(self.locked_taps)
