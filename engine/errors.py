"""The errors a change can end in, apart from the engine owner so that the checks of its inputs (generators, inverter
settings) can live in their own modules and raise them too. `simulation_core` re-exports them."""

from __future__ import annotations


class SimulationError(Exception):
    """A change the grid cannot take (HTTP 422 at the API)."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(SimulationError):
    """A bus, neighbourhood or generator the circuit does not have (HTTP 404)."""


class NotConvergedError(SimulationError):
    """The power flow did not converge after a change; the change was rolled back."""


class FeederError(Exception):
    """A feeder the server cannot serve: its deck does not compile, or its base case does not converge. The server
    does not start (exit status 2), and says which feeder, which file and line, in OpenDSS's own words."""
