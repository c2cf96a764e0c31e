"""An OpenDSS deck read once, as the files it compiles: the master and every file it reaches.

The server reads a user's deck at start-up and never again: each engine compiles its own copy, written into a
scratch folder of its own (`Deck.write`), so
- no engine ever writes into the user's folder (decks with monitors, meters or a regulator's `debugtrace=yes`
  write files beside the master as they compile or solve, and two engines on one deck would share them),
- a scenario rebuilt or evicted later, or a study worker on another machine, compiles the deck as it was when the
  server started, whatever the operator's folder holds by then (the deck's bytes travel with the work),
- the deck has one hash (`sha256`) over exactly the files it compiles.

Which files: read as OpenDSS reads them. `Redirect`, `Compile`, `BusCoords` and `LatLongCoords` name files, and so
do the `file=`, `sngfile=`, `dblfile=`, `csvfile=` and `pqcsvfile=` values of shapes and curves
(`mult=(file=a.csv)`); a relative name is relative to the folder of the file that names it (OpenDSS runs a
redirected file from its own folder). A name whose case differs from the file on disk finds it, as on Windows,
where most decks are written. Comments (`!`, `//`, `/* … */`) are skipped. A referenced file that does not exist is
left for OpenDSS to report at the compile, with its own words, file and line.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

QUOTED = r"\"[^\"]*\"|'[^']*'|\[[^\]]*\]"  # "name", 'name' or [name]
#: Commands whose first argument is a file, and properties whose value is one.
FILE_COMMAND = re.compile(rf"^(?:redirect|compile|buscoords|latlongcoords)\s+({QUOTED}|\([^)]*\)|\S+)", re.IGNORECASE)
FILE_PROPERTY = re.compile(rf"\b(?:file|sngfile|dblfile|csvfile|pqcsvfile)\s*=\s*({QUOTED}|[^\s)]+)", re.IGNORECASE)
MAX_DECK_FILES = 10_000
MAX_DECK_BYTES = 512 * 1024 * 1024


class DeckError(Exception):
    """The deck cannot be read (its master is missing, or it is larger than a server should hold)."""


@dataclass(frozen=True)
class Deck:
    """A deck's files by path relative to their common folder (`root`, where they were read), and its master's."""

    master: str
    files: tuple[tuple[str, bytes], ...]
    root: str
    sha256: str

    def write(self, folder: Path) -> Path:
        """Write the files into `folder` as laid out in the user's folder; returns the master's path there."""
        for relative, content in self.files:
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return folder / self.master

    def sets(self, option: str) -> bool:
        """Whether a script of the deck sets this solution option (`Set Tolerance=…`, `Set tolerance=…`)."""
        return _sets(self, option)


@functools.lru_cache(maxsize=64)
def _sets(deck: Deck, option: str) -> bool:
    """Deck.sets, read once per deck and option: every compile asks (60 ms of a rebuild on the 8500-node feeder)."""
    wanted = re.compile(rf"^\s*set\b.*\b{re.escape(option)}\s*=", re.IGNORECASE)
    return any(wanted.search(line) for relative, content in deck.files if _is_script(Path(relative))
               for line in _commands(content.decode("utf-8", errors="replace")))


def read_deck(master: Path | str) -> Deck:
    """Read the master and every file it reaches (see the module's docstring)."""
    master = Path(master).expanduser().resolve()
    if not master.is_file():
        raise DeckError(f"master file {master} does not exist")
    found: dict[Path, bytes] = {}  # by the path OpenDSS will open (as the deck spells it)
    todo = [(master, master)]
    while todo:
        path, real = todo.pop()
        if path in found:
            continue
        content = real.read_bytes()
        found[path] = content
        if len(found) > MAX_DECK_FILES or sum(map(len, found.values())) > MAX_DECK_BYTES:
            raise DeckError(f"{master}: the deck reaches more than {MAX_DECK_FILES} files or "
                            f"{MAX_DECK_BYTES // 2**20} MiB")
        if _is_script(path):
            todo += [(named, on_disk) for named, on_disk in
                     referenced_files(content.decode("utf-8", errors="replace"), path.parent) if named not in found]
    root = Path(os.path.commonpath([str(p.parent) for p in found]))
    files = tuple(sorted((p.relative_to(root).as_posix(), content) for p, content in found.items()))
    digest = hashlib.sha256()
    for relative, content in files:
        digest.update(relative.encode() + b"\0" + content.replace(b"\r\n", b"\n") + b"\0")
    return Deck(master.relative_to(root).as_posix(), files, str(root), digest.hexdigest())


def referenced_files(text: str, folder: Path) -> list[tuple[Path, Path]]:
    """The existing files a script's text names, in order: each as the path the deck names (relative names from
    `folder`) and the file on disk that path means."""
    names: list[str] = []
    for line in _commands(text):
        command = FILE_COMMAND.match(line)
        if command:
            names.append(_unquote(command.group(1)))
        names += [_unquote(value) for value in FILE_PROPERTY.findall(line)]
    found = []
    for name in names:
        if not name:
            continue
        named = Path(name) if Path(name).is_absolute() else folder / name
        named = Path(os.path.normpath(named))
        on_disk = _on_disk(named)
        if on_disk is not None:
            found.append((named, on_disk))
    return found


def _commands(text: str) -> list[str]:
    """The script's lines without comments (`!` and `//` to the end of a line, `/* … */` blocks)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    lines = []
    for line in text.splitlines():
        line = line.split("//", 1)[0]
        line = line.split("!", 1)[0]
        if line.strip():
            lines.append(line.strip())
    return lines


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and (value[0], value[-1]) in (('"', '"'), ("'", "'"), ("[", "]"), ("(", ")")):
        value = value[1:-1].strip()
    return value.replace("\\", "/")


def _on_disk(path: Path) -> Path | None:
    """The file `path` means: itself, else the one in its folder whose name differs only in case."""
    if path.is_file():
        return path
    if path.parent.is_dir():
        wanted = path.name.lower()
        for candidate in sorted(path.parent.iterdir()):
            if candidate.name.lower() == wanted and candidate.is_file():
                return candidate
    return None


def _is_script(path: Path) -> bool:
    """Whether a reached file holds commands (data files — shapes, CSVs — are copied, not read for names)."""
    return path.suffix.lower() in (".dss", ".txt", "") or path.suffix.lower().startswith(".dss")
