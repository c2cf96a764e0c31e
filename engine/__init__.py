"""Everything about one compiled feeder below the web layer: the circuit and its parts, the readers of a solved
state, the results it answers, inverter settings, errors, and the engine-host processes with their pool.

Kept empty of imports so that `python -m engine.host` starts without loading more than the circuit."""
