"""Solving one circuit's engine and deciding whether the answer can be trusted; putting a refused change back.

A solve that fails is tried once more from the base case's starting point: taps and voltages left far out by an
earlier state (a large generator since turned down) can keep the power flow from converging where the same grid
converges from the base case. Only if both fail is the state refused, so no state reached by accepted changes
traps the user (docs/feeder.md).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import opendssdirect

from engine.controls import Controls, ControlState
from engine.deck import Deck
from engine.errors import NotConvergedError
from engine.generators import GeneratorSlots


#: At least as generous as our deck's (the IEEE 8500-node feeder does not converge in OpenDSS's default 15):
#: a solve that converges within fewer iterations answers the same either way.
MIN_ITERATIONS = 1000
MIN_CONTROL_ITERATIONS = 100
#: Our deck's power-flow tolerance, used where a deck sets none: with OpenDSS's default 1e-4 a meshed network's
#: answer after a change can sit ~1e-3 pu from the converged one.
TOLERANCE_PU = 1e-7


def solve_settings(engine: Any, deck: Deck) -> None:
    """The deck's own solution settings, with iteration limits at least ours and our tolerance unless it sets one."""
    solution = engine.Solution
    solution.MaxIterations(max(solution.MaxIterations(), MIN_ITERATIONS))
    solution.MaxControlIterations(max(solution.MaxControlIterations(), MIN_CONTROL_ITERATIONS))
    if not deck.sets("tolerance"):
        solution.Convergence(TOLERANCE_PU)


class Solver:
    """Solves and rolls back for one compiled feeder; `compiled` (the taps and capacitors the deck compiled with)
    is where a failed solve starts again."""

    def __init__(self, engine: Any, controls: Controls, generators: GeneratorSlots) -> None:
        self._engine, self._controls, self._generators = engine, controls, generators
        self.compiled = controls.state()

    def solve(self, what: str) -> np.ndarray:
        """Solve; return the node voltage magnitudes (pu) or raise NotConvergedError naming `what`."""
        try:
            return self._solve_once(what)
        except NotConvergedError:
            self._settle_from_compiled_taps()
            return self._solve_once(what)

    def _settle_from_compiled_taps(self) -> None:
        """The regulators back at the taps the deck compiled with, the capacitors as compiled, and the feeder solved
        without its generators' output: the state a fresh compile of these loads would settle in, from which the
        generators' output is then solved again. The voltages start from a direct solve (loads as admittances), as
        a fresh compile's do. Inverter generators are switched off meanwhile (their controls would still set vars at
        no irradiance), control first (`engine.inverters`). The result need not converge (nor their controls
        settle); the solve that follows decides."""
        self._controls.restore(self.compiled)
        with self._generators.without_output():
            try:
                self._engine.Solution.SolveDirect()  # node voltages from scratch, whatever the failed solve left
                self._engine.Solution.Solve()
            except opendssdirect.DSSException:
                pass

    def _solve_once(self, what: str) -> np.ndarray:
        engine = self._engine
        try:
            engine.Solution.Solve()
            converged = engine.Solution.Converged()
        except opendssdirect.DSSException as error:
            if "Max Control Iterations" in str(error):  # OpenDSS #485: regulators or inverter controls
                raise NotConvergedError(f"the controls did not settle within {engine.Solution.MaxControlIterations()}"
                                        f" control iterations for {what}") from error
            raise NotConvergedError(f"the power flow failed for {what}: {error}") from error
        if not converged:
            raise NotConvergedError(f"the power flow did not converge for {what}")
        magnitudes = np.asarray(engine.Circuit.AllBusMagPu())
        if not np.all(np.isfinite(magnitudes)) or magnitudes.max() > 2.0:
            raise NotConvergedError(f"the power flow for {what} gave implausible voltages "
                                    f"(max {magnitudes.max():.3g} pu)")
        return magnitudes

    def roll_back(self, undo: Callable[[], None], kept: ControlState) -> None:
        """Undo the change and solve the state before it again, from its own taps and capacitors (`kept`). A
        failed solve can leave the node voltages far out (NaN even), so when the re-solve does not converge it
        starts again from a direct solve: the engine must hold the state it answers with, or the next change would
        start from garbage. Inverter controls can fail to settle from where the refused change left them: that is
        tried the same way, and never raised (the change's own error is the answer)."""
        undo()
        self._controls.restore(kept)
        engine = self._engine
        try:
            engine.Solution.Solve()
            settled = engine.Solution.Converged() and np.all(np.isfinite(engine.Circuit.AllBusMagPu()))
        except opendssdirect.DSSException:
            settled = False
        if not settled:
            self._controls.restore(kept)
            try:
                engine.Solution.SolveDirect()
                engine.Solution.Solve()
            except opendssdirect.DSSException:
                pass
