"""Every example in the docs runs: each fenced `bash`, `sh`, `python`, `powershell` and `dss` block of README.md and
docs/*.md is run by a test, so a new example cannot go untested.

CLAIMS says which test runs which block (a block is known by its page, its language and a marker in its text).
test_every_block_is_run_by_a_test fails on a block no claim covers, on a claim that covers no block, and on a claim
naming a test that does not exist. The blocks no other test runs are run here: the README's Python, its PowerShell
(translated: see below), and the `python -m studies` lines of docs/studies.md.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

from support.docs import RUN_LANGUAGES, Block, blocks, page_text
from support.paths import REPO

HERE = "tests/docs/test_blocks.py"
E2E = "tests/server/test_e2e.py"

# (page, language, a marker in the block's text, "test file::test or fixture that runs it")
CLAIMS = [
    ("README.md", "bash", "pip install -r requirements.txt && python api.py",
     f"{HERE}::test_the_readme_opens_with_the_two_commands"),
    ("README.md", "bash", "pip install -r requirements-dev.txt && python -m pytest",
     f"{HERE}::test_the_readme_opens_with_the_two_commands"),
    ("README.md", "bash", "curl ", f"{E2E}::test_the_docs_curl_examples_work_verbatim"),
    ("README.md", "powershell", "Invoke-RestMethod", f"{HERE}::test_the_readme_powershell_lines_work"),
    ("README.md", "python", "import requests", f"{HERE}::test_the_readme_python_blocks_run"),
    ("README.md", "python", "GridClient", f"{HERE}::test_the_readme_python_blocks_run"),
    ("docs/api.md", "bash", "curl ", f"{E2E}::test_the_docs_curl_examples_work_verbatim"),
    ("docs/scenarios.md", "sh", "/scenarios", f"{E2E}::test_the_scenarios_script_works_verbatim"),
    ("docs/studies.md", "sh", "/studies/", f"{E2E}::test_the_studies_script_works_verbatim"),
    ("docs/studies.md", "bash", "python -m studies", f"{HERE}::test_the_command_line_lines_run_as_written"),
    ("docs/inverters.md", "sh", '"inverter": {"mode": "volt_var"}',
     "tests/docs/test_inverters_page.py::test_the_pages_script_works_verbatim"),
    ("docs/inverters.md", "dss", "New PVSystem",
     "tests/docs/test_inverters_page.py::test_the_opendss_form_typed_by_hand_gives_the_apis_answer"),
    ("docs/python.md", "python", "GridClient", "tests/server/test_client.py::test_the_readme_python_example_runs"),
    ("docs/deployment.md", "bash", "dask scheduler",
     "tests/server/test_cluster.py::test_readme_cluster_commands_run_a_study_as_written"),
    ("docs/feeder.md", "bash", "python -m studies hosting-capacity --feeder",
     "tests/server/test_feeder_option.py::test_the_docs_feeder_lines_run"),
    ("docs/feeder.md", "sh", '"feeder": "south"',
     "tests/server/test_feeder_option.py::test_the_docs_several_feeders_lines_run"),
    # The bench's own command, run shorter (--quick and fewer requests) by the fixture every bench test reads.
    ("docs/performance.md", "bash", "python bench/bench.py", "tests/bench/test_bench.py::short_run"),
]
CURL_ONLY = f"{E2E}::test_the_docs_curl_examples_work_verbatim"  # runs curl lines one by one: nothing else allowed
TWO_COMMANDS = ["pip install -r requirements.txt && python api.py",
                "pip install -r requirements-dev.txt && python -m pytest"]


def claims_of(block: Block) -> list[tuple[str, str, str, str]]:
    return [claim for claim in CLAIMS if claim[:2] == (block.page, block.language) and claim[2] in block.text]


def test_every_block_is_run_by_a_test():
    runnable = [block for block in blocks() if block.language in RUN_LANGUAGES]
    assert len(runnable) >= len(CLAIMS)
    for block in runnable:
        claims = claims_of(block)
        assert len(claims) == 1, f"{block}: no test runs this block (add one, and a line to CLAIMS)" if not claims \
            else f"{block}: claimed {len(claims)} times: {claims}"
        if claims[0][3] == CURL_ONLY:
            lines = [line for line in block.text.splitlines() if line.strip()]
            assert all(line.startswith("curl ") for line in lines), f"{block}: the curl runner runs curl lines only"
    for claim in CLAIMS:
        assert any(claims_of(block) == [claim] for block in runnable), f"{claim}: no such block any more"
        path, name = claim[3].split("::")
        assert re.search(rf"^def {name}\(", (REPO / path).read_text(encoding="utf-8"), flags=re.M), claim[3]


def test_no_block_has_an_unknown_language():
    """A block is either run (RUN_LANGUAGES) or plain text; a typo in a fence would hide an example from the check."""
    assert {block.language for block in blocks()} <= set(RUN_LANGUAGES)


def test_the_readme_opens_with_the_two_commands():
    """The house rule: the README opens with exactly two commands for a fresh machine, one that installs and runs
    the server, one that installs and passes the tests; CI runs the second (.ci/run's last line), and the tests
    start the server as the first does (`python api.py`, tests/support/server.py). The README stays short."""
    readme = page_text("README.md")
    opening = readme.split("\n## ", 1)[0]
    assert [block.text.strip() for block in blocks(page="README.md")[:2]] == TWO_COMMANDS
    assert opening.index(TWO_COMMANDS[0]) < opening.index(TWO_COMMANDS[1]) < opening.index("The first command")
    assert len(re.findall(r"^```\w", opening, flags=re.M)) == 2
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == TWO_COMMANDS[1]
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert '[sys.executable, str(REPO / "api.py")' in (REPO / "tests" / "support" / "server.py").read_text()
    assert len(readme.splitlines()) <= 200


def test_the_readme_python_blocks_run(live_server, capsys):
    for block in blocks("python", "README.md"):
        namespace: dict = {}
        exec(block.text.replace("http://127.0.0.1:5000", live_server), namespace)  # noqa: S102 (our own README)
        if "GridClient" in block.text:
            assert namespace["after"].summary["total_generation_kW"] == pytest.approx(1500, rel=1e-3)
            assert requests.get(f"{live_server}/scenarios/{namespace['pv'].id}").status_code == 404  # deleted
        else:
            assert namespace["r"].status_code == 200
    printed = capsys.readouterr().out
    assert "'total_generation_kW'" in printed and "hosting_capacity_kW" in printed


# PowerShell is not installed here (no Debian package; Microsoft's own repository is out of reach), so each
# `Invoke-RestMethod` line is translated: its -Method, -Uri, -ContentType and -Body are parsed and sent as the same
# request, and a property path after the call, `(Invoke-RestMethod …).results.power_summary`, is walked in the JSON
# answer. A line using anything else fails here, so the translation never guesses.
INVOKE = re.compile(r"^(?P<open>\()?Invoke-RestMethod (?P<args>.+?)(?(open)\)(?P<path>(?:\.\w+)*))$")
PARAMETERS = {"-Method", "-Uri", "-ContentType", "-Body"}


def powershell_request(line: str) -> tuple[str, str, dict[str, str], str | None, list[str]]:
    match = INVOKE.match(line.strip())
    assert match, f"not a line this test can translate: {line}"
    words = shlex.split(match.group("args"))
    assert len(words) % 2 == 0, line
    given = dict(zip(words[::2], words[1::2]))
    assert set(given) <= PARAMETERS and "-Uri" in given, f"{line}: only {sorted(PARAMETERS)} are translated"
    headers = {"Content-Type": given["-ContentType"]} if "-ContentType" in given else {}
    path = [key for key in (match.group("path") or "").split(".") if key]
    return given.get("-Method", "Get").upper(), given["-Uri"], headers, given.get("-Body"), path


def test_the_powershell_translation_reads_each_parameter():
    method, uri, headers, body, path = powershell_request(
        """(Invoke-RestMethod -Method Post -Uri http://h:1/x -ContentType "application/json" -Body '{"a": 1}').b.c""")
    assert (method, uri, headers, body, path) == ("POST", "http://h:1/x", {"Content-Type": "application/json"},
                                                  '{"a": 1}', ["b", "c"])
    with pytest.raises(AssertionError):
        powershell_request("Invoke-RestMethod -Uri http://h:1/x -Headers @{}")


def test_the_readme_powershell_lines_work(live_server):
    (block,) = blocks("powershell", "README.md")
    lines = [line for line in block.text.splitlines() if line.strip()]
    assert lines
    for line in lines:
        method, uri, headers, body, path = powershell_request(line.replace("http://127.0.0.1:5000", live_server))
        answer = requests.request(method, uri, data=body, headers=headers, timeout=60)
        assert answer.status_code == 200, f"{line} -> {answer.status_code}: {answer.text[:300]}"
        value = answer.json()
        assert value.get("status") == "success", line
        for key in path:
            value = value[key]
        assert value, line
    requests.post(f"{live_server}/reset", json={}, timeout=60)


@pytest.mark.slow
def test_the_command_line_lines_run_as_written(live_server, tmp_path):
    """docs/studies.md's `python -m studies` lines, each run as written in a folder holding the files they name:
    `pv67.json` exported as the scenarios page's script exports it, `cases.json` a batch body. (They run from that
    folder with the checkout on PYTHONPATH, where a user runs them from the checkout: the outputs land beside the
    inputs instead of in the repository.)"""
    (block,) = [b for b in blocks("bash", "docs/studies.md") if "python -m studies" in b.text]
    scenario = requests.post(f"{live_server}/scenarios", json={"name": "pv at 67"}, timeout=60).json()["scenario"]
    try:
        requests.post(f"{live_server}/scenarios/{scenario['id']}/add_generator",
                      json={"bus_name": "67", "phases": 3, "kw": 1500}, timeout=60).raise_for_status()
        (tmp_path / "pv67.json").write_text(requests.get(f"{live_server}/scenarios/{scenario['id']}/export",
                                                         timeout=60).text)
    finally:
        requests.delete(f"{live_server}/scenarios/{scenario['id']}", timeout=60)
    batch = re.search(r"/studies/batch\?wait=60\" .* -d '(.*)'$", page_text("docs/studies.md"), flags=re.M)
    (tmp_path / "cases.json").write_text(batch.group(1))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    lines = [line for line in block.text.splitlines() if line.strip()]
    assert all(line.startswith("python -m studies ") for line in lines)
    for line in lines:
        run = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{line}\n{run.stderr[-2000:]}"
    rows = {name: len(pd.read_parquet(tmp_path / name) if name.endswith(".parquet") else pd.read_csv(tmp_path / name))
            for name in ("hc.csv", "hc-hours.csv", "ts.parquet", "batch.csv", "levels.csv", "samples.csv")}
    assert rows == {"hc.csv": 132, "hc-hours.csv": 3, "ts.parquet": 8760, "batch.csv": 2, "levels.csv": 20,
                    "samples.csv": 20}
    assert json.loads((tmp_path / "pv67.json").read_text())["changes"][0]["bus_name"] == "67"
