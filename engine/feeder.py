"""A feeder as a server serves it: a name, its deck as read at start-up, and its neighbourhoods' source.

It is part of `EngineSettings`, so it travels with every engine the server makes: in this process, in an engine
host, in a study worker here or on a Dask cluster on another machine. Workers need nothing but our code: the deck's
bytes come with it. Two feeders are the same feeder when their names and decks' hashes are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.deck import Deck, DeckError, read_deck
from engine.neighbourhoods import DEFAULT_NEIGHBOURHOODS

NEIGHBOURHOOD_FILE = "neighbourhoods.json"  #: beside the master: our format, used when present
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
CIRCUIT = re.compile(rb"^\s*new\s+(?:object\s*=\s*)?circuit\.([^\s~]+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, eq=False)
class Feeder:
    """`neighbourhoods`: bus groups by id as read from `neighbourhoods.json` beside the master, or None (derived
    from the compiled feeder, `neighbourhood_count` of them: `engine.neighbourhoods`)."""

    name: str
    deck: Deck = field(repr=False)
    neighbourhoods: tuple[tuple[int, tuple[str, ...]], ...] | None = field(default=None, repr=False)
    neighbourhood_count: int = DEFAULT_NEIGHBOURHOODS

    @property
    def sha256(self) -> str:
        return self.deck.sha256

    @property
    def master(self) -> str:
        """The master file's name, as the user gave it (no folder: the server never shows its paths)."""
        return Path(self.deck.master).name

    def neighbourhood_buses(self) -> dict[int, list[str]] | None:
        return None if self.neighbourhoods is None else {nb: list(buses) for nb, buses in self.neighbourhoods}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Feeder) and (self.name, self.sha256, self.neighbourhoods, self.neighbourhood_count) \
            == (other.name, other.sha256, other.neighbourhoods, other.neighbourhood_count)

    def __hash__(self) -> int:
        return hash((self.name, self.sha256, self.neighbourhood_count))


def load_feeder(master: Path | str, name: str | None = None, neighbourhood_file: Path | str | None | bool = True,
                neighbourhood_count: int = DEFAULT_NEIGHBOURHOODS) -> Feeder:
    """Read a feeder. `name`: default the deck's circuit name (`New Circuit.ieee8500` → `ieee8500`).
    `neighbourhood_file`: True looks for `neighbourhoods.json` beside the master; a path reads that file; None or
    False derives them from the compiled feeder (`neighbourhood_count` of them)."""
    if neighbourhood_count < 1:
        raise DeckError(f"--neighbourhoods: expected a whole number of at least 1, got {neighbourhood_count}")
    deck = read_deck(master)
    name = (name or circuit_name(deck) or Path(deck.master).stem).lower()
    if not NAME.match(name):
        raise DeckError(f"feeder name {name!r}: expected 1 to 64 of a-z, 0-9, '_', '.', '-' (name it: "
                        f"--feeder NAME=PATH)")
    if neighbourhood_file is True:
        beside = Path(deck.root) / Path(deck.master).parent / NEIGHBOURHOOD_FILE
        neighbourhood_file = beside if beside.is_file() else None
    groups = read_neighbourhoods(Path(neighbourhood_file)) if neighbourhood_file else None
    return Feeder(name, deck, groups, neighbourhood_count)


def circuit_name(deck: Deck) -> str | None:
    """The name in the deck's `New Circuit.NAME` (the master's first, then any file's)."""
    ordered = sorted(deck.files, key=lambda item: item[0] != deck.master)
    for _, content in ordered:
        found = CIRCUIT.search(content)
        if found:
            return found.group(1).decode("utf-8", errors="replace").strip("\"'").lower()
    return None


def read_neighbourhoods(path: Path) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Our format: `{"neighbourhoods": {"1": ["bus", …], …}}`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["neighbourhoods"]
        return tuple(sorted((int(k), tuple(str(b).lower() for b in v)) for k, v in raw.items()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DeckError(f"{path}: expected {{\"neighbourhoods\": {{\"1\": [bus names], …}}}} ({error})") from error


def feeder_option(text: str, neighbourhood_count: int | None = None) -> Feeder:
    """`--feeder PATH` or `--feeder NAME=PATH` (the server's and `python -m studies`'): the deck read now;
    `neighbourhood_count` (`--neighbourhoods N`) for a deck whose neighbourhoods are derived."""
    name, equals, path = text.partition("=")
    if not equals or not NAME.match(name.lower()):
        name, path = "", text
    try:
        return load_feeder(path, name or None, neighbourhood_count=neighbourhood_count or DEFAULT_NEIGHBOURHOODS)
    except DeckError as error:
        raise DeckError(f"--feeder {text}: {error}") from error
