"""What a solve's control actions move, kept and put back: the regulators' taps and the switched capacitors.

A change, a trial or an hour lets the controls act; when it is taken back (a dry run, a refused change, a
checkpoint put back) everything they moved must be put back too, or the next solve starts from another grid. A
CapControl switches a one-step bank by opening the bank's terminal and setting its step off (OpenDSS's
CapControl): on the IEEE 8500-node feeder a light-load hour opens capbank1 and capbank2, and with only the taps
put back the same loads and taps solved 0.04 pu lower (0.93 pu where the scenario has 0.975 pu), the regulators
then moving to other taps. So a bank's steps and the open or closed state of each of its conductors are kept
with the taps.

A CapControl also keeps a clock of its own: the time its bank last opened, and a bank opened less than its dead time
(DeadTime, 300 s by default) ago closes only after that dead time plus its delay (DSS C-API's CapControl.pas,
Sample and DoPendingAction). Our solves are snapshots at a clock that never moves, so once a control has opened its
bank, every later close of it waits those 300 s more in the order the controls act, for the life of the engine.
That order decides where the feeder settles: on the IEEE 8500-node feeder a day's series answered hours 36-39
several tap steps and up to 0.0016 pu apart depending on whether the engine had itself run hours 0-23 (a chunk on
another worker had not). An hour of a study is an hour after the one before it, past any dead time, so each hour
starts with every CapControl's clock reset (`start_hour`): exactly what OpenDSS answers with its clock moved an
hour per hour (`Solution.Hour`), whatever the engine solved before.
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
        self._capacitor_controls = list(engine.CapControls.AllNames()) if engine.CapControls.Count() else []

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

    def start_hour(self) -> None:
        """The capacitor controls as an hour after any switching: none inside its dead time, none with a change
        pending, the banks left as they are. OpenDSS's CapControl Reset clears its clock and pending change but also
        puts its bank back as compiled, so the banks are put back as they were afterwards."""
        if not self._capacitor_controls:
            return
        banks = self.banks()
        for name in self._capacitor_controls:
            self._engine.CapControls.Name(name)
            self._engine.CapControls.Reset()
        self.put_banks(banks)

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
