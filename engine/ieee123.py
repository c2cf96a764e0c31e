"""Facts of our default feeder, the IEEE 123-node test feeder as modelled in `Test_Systems/IEEE_123_Bus-G/`
(docs/feeder.md gives its provenance). Nothing else in the engine assumes this deck."""

from __future__ import annotations

import functools
from pathlib import Path

from engine.feeder import Feeder, load_feeder

MODEL_DIR = Path(__file__).resolve().parent.parent / "Test_Systems" / "IEEE_123_Bus-G"
DEFAULT_MASTER_FILE = MODEL_DIR / "Master.dss"
DEFAULT_NEIGHBOURHOOD_FILE = MODEL_DIR / "neighbourhoods.json"

#: Regulator taps published by the IEEE for the 123-node feeder (one step = 0.00625 pu): `--published-taps`.
PUBLISHED_REGULATOR_TAPS: dict[str, int] = {
    "reg1a": 7, "reg2a": -1, "reg3a": 0, "reg3c": -1, "reg4a": 8, "reg4b": 1, "reg4c": 5,
}

#: Buses that exist in the model but cannot host a generator, with the reason given to the user.
NO_GENERATOR_BUSES = {
    "94_open": "94_open is the far side of the normally open switch Sw8 and is not energised",
    "300_open": "300_open is the far side of the normally open switch Sw7 and is not energised",
    "610": "610 is the ungrounded 480 V delta secondary of XFM1",
}


@functools.lru_cache(maxsize=1)
def default_feeder() -> Feeder:
    """Our deck and its neighbourhoods, read once per process (what `EngineSettings(feeder=None)` means)."""
    return load_feeder(DEFAULT_MASTER_FILE, neighbourhood_file=DEFAULT_NEIGHBOURHOOD_FILE)
