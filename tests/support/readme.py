"""Running the README's shell sessions verbatim against a live server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO

README = REPO / "README.md"


def readme_scripts() -> list[str]:
    """The README's `sh` blocks: each is one shell session (variables carry from line to line)."""
    return re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)


def run_readme_script(live_server: str, tmp_path: Path, marker: str) -> str:
    """Run the README's `sh` block containing `marker` whole, every curl required to succeed (2xx, or a 304 it
    asks for); return what it printed."""
    port = live_server.rsplit(":", 1)[1]
    script = next(s for s in readme_scripts() if marker in s)
    prelude = "set -euo pipefail\ncurl() { command curl -sS --fail-with-body \"$@\"; echo; }\n"
    output = subprocess.run(["bash", "-c", prelude + script.replace("127.0.0.1:5000", f"127.0.0.1:{port}")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert output.returncode == 0, output.stdout[-2000:] + output.stderr[-2000:]
    return output.stdout


NEEDS_CURL = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                                reason="curl or bash is not installed")
