"""Studies on a real Dask distributed cluster started here (a scheduler and two worker processes): the same
answers as the local pool, a worker killed mid-study, a scheduler that is not there or is lost, the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import distributed  # requirements.txt: a missing install fails here rather than skipping silently
import numpy as np
import pytest

from api import create_app
from engine.settings import EngineSettings
from studies.tasks import run_task
from support.paths import REPO
from support.server import free_port, start_server, stop_server

WORKER_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def readme_cluster_lines() -> dict[str, str]:
    """The commands of docs/deployment.md's "Running on a cluster" block, by what they start, exactly as written."""
    section = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8").split("## Running on a cluster", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    found = {"scheduler": [x for x in lines if x.startswith("dask scheduler ")],
             "worker": [x for x in lines if " dask worker " in f" {x}"],
             "api": [x for x in lines if x.startswith("python api.py ")]}
    assert all(len(x) == 1 for x in found.values()), found
    return {what: x[0] for what, x in found.items()}


README_LINES = readme_cluster_lines()


def as_a_user_would(line: str, port: str) -> str:
    """README's line with its placeholders filled: this machine for SCHEDULER-HOST, a free port for 8786 (other
    test runs on this machine may hold 8786); every other word is README's."""
    assert "8786" in line
    return line.replace("SCHEDULER-HOST", "127.0.0.1").replace("8786", port)


def user_env() -> dict[str, str]:
    """A user's shell: no PYTHONPATH of ours, and `dask`/`python` are this interpreter's, first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IEEE123_DASK_SCHEDULER")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class Cluster:
    """A scheduler and two workers started with README's own lines, run by a shell in the checkout."""

    def __init__(self, worker_cwd: Path = REPO, worker_line: str = README_LINES["worker"]) -> None:
        port = str(free_port())
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = self.start(as_a_user_would(README_LINES["scheduler"], port), REPO)
        self.workers = self.start(as_a_user_would(worker_line, port), worker_cwd)
        self.wait_for_workers(2)

    @staticmethod
    def start(line: str, cwd: Path) -> subprocess.Popen:
        """The line in its own session, so stop() ends the processes it started (nannies and workers) and no
        others."""
        return subprocess.Popen(["bash", "-c", line], cwd=cwd, env=user_env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self):
        return distributed.Client(self.address, timeout=10, set_as_default=False)

    def wait_for_workers(self, count: int, timeout_s: float = 60) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=timeout_s)

    def worker_pids(self) -> list[int]:
        with self.client() as client:
            return list(client.run(os.getpid).values())

    def stop(self) -> None:
        for process in (self.workers, self.scheduler):
            signal_group(process, signal.SIGTERM)
        for process in (self.workers, self.scheduler):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                signal_group(process, signal.SIGKILL)
                process.wait()


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the session a README line was started in (its process group), if anything of it is left."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = Cluster()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def on_cluster(cluster):
    app = create_app({"TESTING": True, "DASK_SCHEDULER": cluster.address})
    yield app.test_client()
    app.extensions["jobs"].close()


@pytest.fixture(scope="module")
def on_pool():
    app = create_app({"TESTING": True, "WORKERS": 2})
    yield app.test_client()
    app.extensions["jobs"].close()


def run(client, route: str, body: dict) -> dict:
    response = client.post(f"{route}?wait=60", json=body)
    job = response.json["job"]
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/jobs/{job['id']}").json["job"]
    assert job["status"] == "done", job
    return job["result"]


def assert_same(a, b, path="result") -> None:
    """Equal structure; numbers equal to 1e-9."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert b == pytest.approx(a, abs=1e-9, rel=1e-9), path
    else:
        assert a == b, path


def test_health_names_the_cluster(on_cluster, cluster):
    studies = on_cluster.get("/health").json["studies"]
    assert studies == {"executor": "dask", "scheduler": cluster.address, "workers": 2}


SCENARIO = [{"op": "add_generator", "bus_name": "67", "phases": 3, "kw": 900},
            {"op": "modify_load_neighbourhood", "neighbourhood": 12, "factor": 1.4}]


@pytest.mark.parametrize("route,body", [
    ("studies/hosting_capacity", {"buses": ["all"], "step_kw": 100, "max_kw": 5000}),
    ("studies/load_hosting_capacity", {"buses": ["all"], "step_kw": 50, "max_kw": 3000, "hours": ["evening_peak"]}),
    ("studies/time_series", {"hours": 200, "start_hour": 4000, "neighbourhood_shapes": {"3": "commercial"}}),
    ("studies/batch", {"cases": [{"name": f"pv {kw}", "changes": [
        {"op": "add_generator", "bus_name": "35", "phases": 3, "kw": kw}]} for kw in range(0, 3000, 150)]
        + [{"name": "reset", "changes": [{"op": "reset"}]}]}),
])
def test_cluster_answers_equal_the_local_pool(on_cluster, on_pool, route, body):
    answers = []
    for client in (on_cluster, on_pool):
        scenario = client.post("/scenarios", json={}).json["scenario"]["id"]
        for op in SCENARIO:
            change = dict(op)
            client.post(f"/scenarios/{scenario}/{change.pop('op')}", json=change)
        result = run(client, f"/scenarios/{scenario}/{route}", body)
        result.pop("scenario")  # the ids differ; everything else must not
        answers.append(result)
    assert_same(answers[0], answers[1])


def test_stochastic_hosting_capacity_is_identical_on_the_cluster(on_cluster, on_pool):
    """The same seed, the same answer to the last digit: the local pool of 2 and README's 2-worker cluster
    (one worker and two on the local pool are compared in test_stochastic.py)."""
    body = {"samples": 12, "seed": 42, "penetration_pct": {"start": 10, "stop": 150, "step": 20},
            "limits": {"reverse_power": True}}
    answers = []
    for client in (on_cluster, on_pool):
        scenario = client.post("/scenarios", json={}).json["scenario"]["id"]
        client.post(f"/scenarios/{scenario}/modify_load_neighbourhood", json={"neighbourhood": 12, "factor": 0.5})
        result = run(client, f"/scenarios/{scenario}/studies/stochastic_hosting_capacity", body)
        result.pop("scenario")
        answers.append(result)
    assert answers[0] == answers[1]
    assert any(sample["first_failure"] for sample in answers[0]["samples"])



@pytest.mark.slow
def test_ev_adoption_is_identical_on_the_cluster(on_cluster, on_pool):
    """The same seed, the same EV adoption answer on README's 2-worker cluster and the local pool of 2 (one worker
    and two on the local pool: tests/engine/test_ev_adoption.py)."""
    body = {"samples": 4, "seed": 42, "adoption_pct": {"start": 50, "stop": 100, "step": 25}}
    answers = [run(client, "/studies/ev_adoption", body) for client in (on_cluster, on_pool)]
    assert answers[0] == answers[1]
    assert any(sample["first_failure"] for sample in answers[0]["samples"])

@pytest.mark.slow
def test_a_worker_killed_mid_study_still_gives_the_same_answer(on_cluster, on_pool, cluster):
    body = {"buses": ["all"], "step_kw": 50, "max_kw": 6000}
    job = on_cluster.post("/studies/hosting_capacity", json=body).json["job"]
    time.sleep(1.0)
    os.kill(cluster.worker_pids()[0], signal.SIGKILL)  # its nanny starts a new one; Dask reschedules its tasks
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = on_cluster.get(f"/jobs/{job['id']}").json["job"]
    assert job["status"] == "done", job
    assert_same(job["result"], run(on_pool, "/studies/hosting_capacity", body))
    cluster.wait_for_workers(2)


def start_readme_api(address: str, cwd: Path = REPO) -> tuple[subprocess.Popen, str]:
    """README's `python api.py --dask-scheduler …` line in the checkout, with a free port added (5000 may be
    taken on a test machine)."""
    port = free_port()
    line = f"{as_a_user_would(README_LINES['api'], address.rsplit(':', 1)[1])} --port {port} --no-access-log"
    process = subprocess.Popen(["bash", "-c", line], cwd=cwd, env=user_env(), start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(f"{url}/health", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    return process, url


def stop_readme_api(process: subprocess.Popen) -> str:
    """Stop the server (if it still runs) and return what it printed on stderr."""
    signal_group(process, signal.SIGTERM)
    try:
        return process.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        return process.communicate()[1]


def test_readme_cluster_commands_run_a_study_as_written(cluster, on_pool):
    """The three lines of README's "Running on a cluster", as a user types them in the checkout: the server
    answers, names the cluster, and its study gives the local pool's numbers."""
    import requests

    process, url = start_readme_api(cluster.address)
    try:
        assert requests.get(f"{url}/health", timeout=10).json()["studies"]["executor"] == "dask"
        body = {"buses": ["67", "35", "16"], "step_kw": 50}
        job = requests.post(f"{url}/studies/hosting_capacity?wait=60", json=body, timeout=90).json()["job"]
        assert job["status"] == "done", job
        result = job["result"]
    finally:
        stop_readme_api(process)
    expected = run(on_pool, "/studies/hosting_capacity", body)
    result.pop("scenario"), expected.pop("scenario")
    assert_same(result, expected)


def test_readme_scheduler_cannot_import_our_code_and_needs_not(on_cluster, cluster):
    """README's scheduler has none of our code: a graph naming one of our functions fails there (what every
    study did before tasks travelled as bytes), and that failure is explained with the fix. Studies run on the
    same scheduler (the tests above)."""
    executor = on_cluster.application.extensions["jobs"].executor
    task = {"kind": "batch", "engine": EngineSettings(), "ops": [],
            "work": {"positions": [], "cases": []}}
    future = executor.client.submit(run_task, task, pure=False)
    with pytest.raises(Exception) as raised:
        future.result(timeout=60)
    assert "deserialization of the task graph" in str(raised.value)
    message = executor.explain(raised.value)
    assert message.startswith(f"the Dask scheduler at {cluster.address} could not unpickle this study's tasks")
    assert README_LINES["scheduler"] in message
    assert executor.submit(task).result(timeout=60) == {"rows": []}


@pytest.mark.slow
def test_workers_without_our_code_are_a_clear_start_up_error(tmp_path):
    """README's worker line typed outside the checkout: its workers cannot import our code; the server says so
    and names the fix (exit status 2) instead of failing every study."""
    elsewhere = Cluster(worker_cwd=tmp_path)
    try:
        process, _ = start_readme_api(elsewhere.address)
        stderr = stop_readme_api(process)
    finally:
        elsewhere.stop()
    assert process.returncode == 2, stderr
    assert "a Dask worker could not import this project's code" in stderr and "No module named 'studies'" in stderr
    assert "start each worker from a checkout of this repository" in stderr and README_LINES["worker"] in stderr


def test_an_unreachable_scheduler_is_a_clear_start_up_error(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, str(REPO / "api.py"), "--port", str(free_port()),
                             "--dask-scheduler", address], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert f"--dask-scheduler {address}: no Dask scheduler answered" in result.stderr


def test_no_dask_unless_asked(tmp_path):
    """A server without --dask-scheduler runs studies locally and never imports Dask."""
    code = ("import sys; sys.path.insert(0, %r); import api; app = api.create_app(); "
            "print('distributed' in sys.modules, app.extensions['jobs'].executor.describe()['executor'])" % str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={k: v for k, v in os.environ.items() if k != "IEEE123_DASK_SCHEDULER"})
    assert out.stdout.split() == ["False", "local"], out.stderr


@pytest.mark.slow
def test_a_lost_scheduler_fails_the_job_and_the_server_keeps_answering(tmp_path):
    doomed = Cluster()
    process, url = start_server(tmp_path, "--no-access-log", "--dask-scheduler", doomed.address)
    import requests

    try:
        job = requests.post(f"{url}/studies/time_series", json={"hours": 8760}, timeout=30).json()["job"]
        time.sleep(1.0)
        signal_group(doomed.scheduler, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = requests.get(f"{url}/jobs/{job['id']}", timeout=10).json()["job"]
        assert job["status"] == "failed" and "scheduler" in job["error"], job
        assert requests.get(f"{url}/state", timeout=10).status_code == 200
    finally:
        stop_server(process)
        doomed.stop()


def test_the_command_line_gives_the_apis_numbers(on_pool, cluster, tmp_path):
    """`python -m studies` from an exported scenario, locally and on the cluster, equals the API's result."""
    scenario = on_pool.post("/scenarios", json={}).json["scenario"]["id"]
    on_pool.post(f"/scenarios/{scenario}/add_generator", json={"bus_name": "67", "phases": 3, "kw": 900})
    document = tmp_path / "pv67.json"
    document.write_text(json.dumps(on_pool.get(f"/scenarios/{scenario}/export").json))
    api_rows = run(on_pool, f"/scenarios/{scenario}/studies/hosting_capacity",
                   {"buses": ["67", "35", "94_open"], "step_kw": 50})["buses"]
    for extra in ([], ["--dask-scheduler", cluster.address]):
        out = tmp_path / f"hc{len(extra)}.csv"
        result = subprocess.run([sys.executable, "-m", "studies", "hosting-capacity", "--scenario", str(document),
                                 "--buses", "67,35,94_open", "--step-kw", "50", "--out", str(out), *extra],
                                cwd=REPO, capture_output=True, text=True, timeout=120, env=WORKER_ENV)
        assert result.returncode == 0, result.stderr
        import pandas as pd

        rows = pd.read_csv(out).to_dict("records")
        assert [r["bus"] for r in rows] == ["67", "35", "94_open"] or [str(r["bus"]) for r in rows] == ["67", "35", "94_open"]
        for row, expected in zip(rows, api_rows):
            if expected["hosting_capacity_kW"] is None:
                assert np.isnan(row["hosting_capacity_kW"]) and row["reason"] == expected["reason"]
            else:
                assert row["hosting_capacity_kW"] == expected["hosting_capacity_kW"]
                assert row["limited_by_element"] == expected["limited_by"]["element"]
                assert row["limited_by_value"] == pytest.approx(expected["limited_by"]["value"], abs=1e-9)
    bad = subprocess.run([sys.executable, "-m", "studies", "time-series", "--hours", "0", "--out",
                          str(tmp_path / "x.csv")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: hours: expected 1 to 8760, got 0"
