"""Where things are: the repository, the tests' data, and the shared references beside the repository."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DATA = TESTS / "data"
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
