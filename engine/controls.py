"""What a solve's control actions move, kept and put back: the regulators' taps and the switched capacitors.

A change, a trial or an hour lets the controls act; when it is taken back (a dry run, a refused change, a
checkpoint put back) everything they moved must be put back too, or the next solve starts from another grid. A
CapControl switches a one-step bank by opening the bank's terminal and setting its step off (OpenDSS's
CapControl): on the IEEE 8500-node feeder a light-load hour opens capbank1 and capbank2, and with only the taps
put back the same loads and taps solved 0.04 pu lower (0.93 pu where the scenario has 0.975 pu), the regulators
then moving to other taps. So a bank's steps and the open or closed state of each of its conductors are kept
with the taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.regulators import Regulators


@dataclass(frozen=True)
class Bank:
    """One capacitor as the controls left it: its steps in service and each terminal conductor closed or not."""

    name: str
    steps: tuple[int, ...]
    closed: tuple[tuple[bool, ...], ...]  # per terminal, per conductor


@dataclass(frozen=True)
class ControlState:
    """The regulators' taps (per unit, in `Regulators` order) and every capacitor bank."""

    taps: list[float]
    banks: tuple[Bank, ...]


class Controls:
    """Reads and puts back what the controls of one compiled feeder move (callers hold the circuit's lock)."""

    def __init__(self, engine: Any, regulators: Regulators) -> None:
        self._engine, self._regulators = engine, regulators
        self._capacitors = list(engine.Capacitors.AllNames()) if engine.Capacitors.Count() else []

    def state(self) -> ControlState:
        return ControlState(self._regulators.taps(), tuple(self._bank(name) for name in self._capacitors))

    def restore(self, kept: ControlState) -> None:
        """Put back the taps and every bank that differs from `kept` (an unchanged bank is left alone, so its
        element is not rebuilt)."""
        self._regulators.restore(kept.taps)
        for bank in kept.banks:
            if self._bank(bank.name) != bank:
                self._put_bank(bank)

    def banks(self) -> list[list[Any]]:
        """Every bank as plain lists, `[name, steps, closed]`: what a time series carries from one chunk of hours to
        the next (a task's result travels as plain data)."""
        return [[bank.name, list(bank.steps), [list(terminal) for terminal in bank.closed]]
                for bank in (self._bank(name) for name in self._capacitors)]

    def put_banks(self, banks: list[list[Any]]) -> None:
        """Put back banks given as `banks()` gives them (an unchanged bank is left alone)."""
        for name, steps, closed in banks:
            bank = Bank(name, tuple(steps), tuple(tuple(terminal) for terminal in closed))
            if self._bank(name) != bank:
                self._put_bank(bank)

    def _bank(self, name: str) -> Bank:
        engine = self._engine
        engine.Capacitors.Name(name)
        steps = tuple(int(s) for s in engine.Capacitors.States())
        engine.Circuit.SetActiveElement(f"Capacitor.{name}")
        conductors = engine.CktElement.NumConductors()
        closed = tuple(tuple(not engine.CktElement.IsOpen(terminal, conductor)
                             for conductor in range(1, conductors + 1))
                       for terminal in range(1, engine.CktElement.NumTerminals() + 1))
        return Bank(name, steps, closed)

    def _put_bank(self, bank: Bank) -> None:
        engine = self._engine
        engine.Capacitors.Name(bank.name)
        engine.Capacitors.States(list(bank.steps))
        engine.Circuit.SetActiveElement(f"Capacitor.{bank.name}")
        for terminal, conductors in enumerate(bank.closed, start=1):
            for conductor, closed in enumerate(conductors, start=1):
                if closed:
                    engine.CktElement.Close(terminal, conductor)
                else:
                    engine.CktElement.Open(terminal, conductor)
