"""The docs' examples, as tests read them: README.md and docs/*.md, their fenced blocks, and running a shell
session block verbatim against a live server.

Every fenced block of a language in RUN_LANGUAGES must be run by a test: tests/docs/test_blocks.py finds them all
and fails on one that no test runs (its CLAIMS say which test runs which block).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.paths import REPO

DOCS = REPO / "docs"
RUN_LANGUAGES = ("bash", "sh", "python", "powershell", "dss")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.S | re.M)

#: Off CI, a machine without curl or bash skips the docs' shell examples; on CI (CI set) they run, and fail loudly.
NEEDS_CURL = pytest.mark.skipif(
    not os.environ.get("CI") and (shutil.which("curl") is None or shutil.which("bash") is None),
    reason="curl or bash is not installed (on CI they must be)")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository: README.md, docs/api.md, …
    language: str
    text: str
    line: int  # of its opening fence

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.language or 'no language'})"


def pages() -> list[Path]:
    """README.md and every page of docs/."""
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def page_text(page: str) -> str:
    return (REPO / page).read_text(encoding="utf-8")


def blocks(language: str | None = None, page: str | None = None) -> list[Block]:
    """Every fenced block of the pages (or of one), in order; only those of `language` if given."""
    found = []
    for path in pages():
        name = path.relative_to(REPO).as_posix()
        if page is not None and name != page:
            continue
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if language is None or match.group(1) == language:
                found.append(Block(name, match.group(1), match.group(2), text.count("\n", 0, match.start()) + 1))
    return found


def section(page: str, heading: str) -> str:
    """A page's text from `heading` (a whole heading line, e.g. "## Running on a cluster") to the next heading of
    the same or a higher level."""
    text = page_text(page)
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n") + 1
    ends = [m.start() for m in re.finditer(r"^(#+) ", text[start + len(heading):], flags=re.M)
            if len(m.group(1)) <= len(level)]
    return text[start:start + len(heading) + ends[0]] if ends else text[start:]


def curl_lines() -> list[tuple[Block, str]]:
    """Every `curl` line of every `bash` block, in order, with its block."""
    return [(block, line.strip()) for block in blocks("bash")
            for line in block.text.replace("\\\n", " ").splitlines() if line.strip().startswith("curl ")]


def script(page: str, marker: str) -> Block:
    """The one `sh` block of `page` containing `marker`."""
    (found,) = [block for block in blocks("sh", page) if marker in block.text]
    return found


def run_script(live_server: str, tmp_path: Path, page: str, marker: str) -> str:
    """Run the `sh` block of `page` containing `marker` whole, as one shell session (variables carry from line to
    line), every curl required to succeed (2xx, or a 304 it asks for); return what it printed."""
    port = live_server.rsplit(":", 1)[1]
    text = script(page, marker).text
    prelude = "set -euo pipefail\ncurl() { command curl -sS --fail-with-body \"$@\"; echo; }\n"
    output = subprocess.run(["bash", "-c", prelude + text.replace("127.0.0.1:5000", f"127.0.0.1:{port}")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert output.returncode == 0, output.stdout[-2000:] + output.stderr[-2000:]
    return output.stdout


def figures_renderer():
    """docs/figures/render.py, the script that writes the docs' figures from their data files, as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_figures_render", DOCS / "figures" / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
