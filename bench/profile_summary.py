"""Share of py-spy's samples (raw format) per part of a request, the first part a stack reaches deciding.

    python bench/profile_summary.py /tmp/spy.txt
"""

from __future__ import annotations

import collections
import sys

#: (part, what in a stack marks it), in order: a sample counts for the first part whose mark its stack holds.
PARTS = [
    ("engine: solve and convergence check", "_solve_once"),
    ("engine: regulator taps saved", "engine/regulators.py"),
    ("engine: rollback", "roll_back"),
    ("engine: batch reads and numpy", "read_snapshot"),
    ("results JSON", "change_body"),
    ("results JSON", "results_json"),
    ("journal in SQLite", "store.py"),
    ("journal", "journal.py"),
    ("flask-openapi3 validation", "_validate_request"),
    ("JSON body check (before_request)", "require_json_object_body"),
    ("engine: the change itself", "engine/circuit.py"),
    ("scenario registry", "registry.py"),
    ("our routes", "/api.py"),
    ("Flask and werkzeug", "flask/"),
    ("Flask and werkzeug", "werkzeug/"),
    ("waitress", "waitress/"),
]


def summarise(lines: list[str]) -> list[tuple[str, int]]:
    counts: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack:
            continue
        part = next((name for name, mark in PARTS if mark in stack), "other")
        counts[part] += int(n)
    return counts.most_common()


def main(path: str) -> None:
    with open(path, encoding="utf-8") as raw:
        counts = summarise(raw.readlines())
    total = sum(n for _, n in counts) or 1
    for part, n in counts:
        print(f"  {part:<40} {n:>7} samples {100 * n / total:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1])
