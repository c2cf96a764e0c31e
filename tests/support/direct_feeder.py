"""The reference engine of the studies: our deck in a bare opendssdirect context, changed with OpenDSS commands
(nobody here wrote its answers), with a brute-force hosting-capacity scan and the named hours read from the shape
files."""

from __future__ import annotations

from support.bare_feeder import LIMITS, BareFeeder, Found, generator_connection, shape  # noqa: F401 (LIMITS: tests)
from support.bare_feeder import named_hours as deck_named_hours

STEP = 100.0
SHAPES = {name: shape(name) for name in ("residential", "commercial", "pv")}


class DirectFeeder(BareFeeder):
    """Our deck in a bare opendssdirect context, changed with OpenDSS commands: the reference engine (its
    compile, taps, hours, judgement and trials are support.bare_feeder's, which the bench's floors time too)."""

    def trial(self, bus: str, nodes: list[int], kv: float, kw: float, limits: dict, conn: str = "") -> Found | None:
        """A generator at the bus, judged and rolled back: the kind, the worst elements and the worst value
        (`conn`: "delta" for a 3-phase one in delta)."""
        name = f"t_{bus}_{''.join(map(str, nodes))}"
        return self.try_generators([(name, generator_connection(bus, nodes, kv, conn), kw)], limits)

    def overloaded(self, limits: dict) -> dict[str, float]:
        """The starting state's pre-existing overloads: element -> loading %."""
        return {e: float(x) for e, x in zip(self.element_names, self.own["loading"]) if x > limits["thermal_pct"]}

    def scan(self, bus: str, nodes: list[int], kv: float, limits: dict, top_kw: float, conn: str = ""
             ) -> tuple[float, tuple[str, set[str], float] | None]:
        """Brute force: every step from STEP up until a trial violates; the capacity and what bounded it."""
        kw, found = STEP, None
        while kw <= top_kw and found is None:
            found = self.trial(bus, nodes, kv, kw, limits, conn)
            kw += STEP
        return (kw - 2 * STEP if found else top_kw), found


def named_hours(client) -> dict[str, int]:
    """peak_load and daytime_minimum of the base case under the default shapes, from the shape files and the
    deck's load set-points (OpenDSS driven directly): earliest hour on a tie; and the deck's total kW."""
    return deck_named_hours()
