"""The engine's documented face: `OpenDSSCircuit`, one feeder compiled in its own OpenDSS engine.

    from simulation_core import OpenDSSCircuit
    circuit = OpenDSSCircuit()                     # the IEEE 123-bus feeder, solved
    change = circuit.add_generator("48", 3, 400)   # re-solved; change.snapshot has every number
    strict = OpenDSSCircuit(settings=EngineSettings.of((0.97, 1.03)))  # other voltage limits (or locked taps)

The class and its parts live in the `engine` package (docs/architecture.md has the module map); this module keeps
the name our users import.
"""

from engine.circuit import OpenDSSCircuit
from engine.ieee123 import DEFAULT_MASTER_FILE, DEFAULT_NEIGHBOURHOOD_FILE, MODEL_DIR, PUBLISHED_REGULATOR_TAPS
from engine.errors import NotConvergedError, NotFoundError, SimulationError
from engine.index import TAP_STEP_PU
from engine.settings import ANSI_RANGE_A_PU, EngineSettings

__all__ = ["ANSI_RANGE_A_PU", "DEFAULT_MASTER_FILE", "EngineSettings", "DEFAULT_NEIGHBOURHOOD_FILE", "MODEL_DIR",
           "PUBLISHED_REGULATOR_TAPS", "TAP_STEP_PU", "NotConvergedError", "NotFoundError", "OpenDSSCircuit",
           "SimulationError"]
