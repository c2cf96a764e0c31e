"""A state file whose disk fills up: 507 naming the file, nothing applied, `durable: false`, one log line per
episode, and every acknowledged change still there after the disk has room again and after SIGKILL.

The disk is a real one: a 2 MiB tmpfs mounted for the test (root only; CI runs as root and must run it), with
the state file on it and a ballast file that takes the rest of its space."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from support.server import start_server, stop_server

needs_root = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                                reason="mounting a tmpfs needs root (CI runs as root and runs this test)")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk refuses another byte."""
    ballast = disk / "ballast"
    with open(ballast, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    return ballast


def change(url: str, kw: float) -> requests.Response:
    return requests.post(f"{url}/add_generator", json={"bus_name": "67", "phases": 3, "kw": kw}, timeout=30)


@needs_root
def test_a_full_disk_answers_507_and_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    state = small_disk / "state.db"
    process, url = start_server(tmp_path, "--no-access-log", "--state", str(state))
    acknowledged: list[float] = []
    try:
        for kw in (100.0, 110.0, 120.0):
            assert change(url, kw).status_code == 200
            acknowledged.append(kw)
        assert requests.get(f"{url}/health", timeout=10).json()["durable"] is True
        ballast = fill(small_disk)
        before = requests.get(f"{url}/state", timeout=10).content
        refused = [change(url, 500.0 + i) for i in range(40)]  # some may still fit in SQLite's free pages
        full = [r for r in refused if r.status_code == 507]
        acknowledged += [500.0 + i for i, r in enumerate(refused) if r.status_code == 200]
        assert full, [r.status_code for r in refused]
        assert {r.status_code for r in refused} <= {200, 507}
        body = full[-1].json()
        assert body["status"] == "error" and str(state) in body["message"] and "nothing was applied" in body["message"]
        if len(full) == len(refused):
            assert requests.get(f"{url}/state", timeout=10).content == before
        assert requests.get(f"{url}/health", timeout=10).json()["durable"] is False
        created = requests.post(f"{url}/scenarios", json={"name": "x"}, timeout=10)
        assert created.status_code == 507, created.text
        ballast.unlink()
        assert change(url, 130.0).status_code == 200
        acknowledged.append(130.0)
        assert requests.get(f"{url}/health", timeout=10).json()["durable"] is True
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        log = process.stderr.read()
        assert log.count("cannot be written") == 1, log  # once per episode, not once per refused request
        assert log.count("is written again") == 1, log
        process, url = start_server(tmp_path, "--no-access-log", "--state", str(state))
        kept = [entry["action"]["kw"] for entry in requests.get(f"{url}/changes", timeout=10).json()["changes"]]
        assert kept == acknowledged
    finally:
        stop_server(process)
