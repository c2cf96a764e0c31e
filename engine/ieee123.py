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

#: Stub buses of our deck that stand for the far side of a normally open switch. The deck models Sw7 and Sw8
#: closed onto 1 ft stubs that carry nothing (Switches.dss), so that the open point's voltage can be read: in our
#: model they are energised, in the feeder they stand for they are not. No generator goes there.
OPEN_POINT_STUBS = {
    "94_open": "94_open is the far side of the normally open switch Sw8 (in this deck a stub kept energised "
               "only to show the open point's voltage): not energised in the feeder",
    "300_open": "300_open is the far side of the normally open switch Sw7 (in this deck a stub kept energised "
                "only to show the open point's voltage): not energised in the feeder",
}


def deck_refusals(feeder: Feeder) -> dict[str, str]:
    """Buses a feeder's model energises that still cannot host a generator, with the reason: our deck's
    open-point stubs when `feeder` is our deck byte for byte (served by default or with --feeder), else none."""
    if feeder.sha256 != default_feeder().sha256:
        return {}
    return dict(OPEN_POINT_STUBS)


@functools.lru_cache(maxsize=1)
def default_feeder() -> Feeder:
    """Our deck and its neighbourhoods, read once per process (what `EngineSettings(feeder=None)` means)."""
    return load_feeder(DEFAULT_MASTER_FILE, neighbourhood_file=DEFAULT_NEIGHBOURHOOD_FILE)
