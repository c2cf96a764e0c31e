"""The feeders a server serves, as the scenario registry sees them: each one's name, the hash its scenarios and
documents are bound to, the engine settings its engines compile, and how to make one of its engines.

The first feeder is the default: the `default` scenario's, and a new scenario's when the request names none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from engine.interface import Circuit
from engine.settings import EngineSettings
from scenarios.journal import feeder_sha256

OUR_FEEDER = "ieee123"  #: the name our IEEE 123-bus deck is served under when no --feeder is given


@dataclass(frozen=True)
class ServedFeeder:
    """`ours`: our IEEE 123-bus deck, whose files change only with this code (its scenarios are not refused when
    its hash moves between releases)."""

    name: str
    sha256: str
    settings: EngineSettings
    make_circuit: Callable[[], Circuit]
    ours: bool

    @classmethod
    def of(cls, settings: EngineSettings, make_circuit: Callable[[], Circuit]) -> "ServedFeeder":
        feeder = settings.feeder
        return cls(feeder.name if feeder else OUR_FEEDER, feeder_sha256(feeder), settings, make_circuit,
                   ours=feeder is None)

    def holds(self, name: str, sha256: str) -> bool:
        """Whether a scenario made on feeder `name` with deck hash `sha256` rebuilds on this feeder as it was."""
        return name == self.name and (self.ours or sha256 == self.sha256)


class ServedFeeders:
    """The served feeders by name, in the order the command line gave them (the first is the default)."""

    def __init__(self, feeders: Sequence[ServedFeeder]) -> None:
        if not feeders:
            raise ValueError("a server serves at least one feeder")
        self._by_name = {feeder.name: feeder for feeder in feeders}
        if len(self._by_name) != len(feeders):
            raise ValueError("feeder names must differ")
        self.default = feeders[0]

    def __iter__(self) -> Iterator[ServedFeeder]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> ServedFeeder | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def by_sha256(self, sha256: str) -> ServedFeeder | None:
        return next((feeder for feeder in self if feeder.sha256 == sha256), None)
