"""The bench's harness: servers started as a user starts them (or the transport floor), our keep-alive client,
which checks every answer, a server with its client that runs studies to the end (`Api`), wrk for load, and the
scripts' common ends (a floor measured twice, a ratio to a pool's share of a floor, the exit on a wrong answer).
CPU and memory readings from /proc are in machine.py."""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from engine_floor import REPO, BenchError, GeneratorOp, LoadOp, neighbourhood_ids
from machine import read_proc_status

WRK_SCRIPT = REPO / "bench" / "wrk_changes.lua"
#: The studies' pool: servers with `--workers 2`, Dask clusters of 2 workers, each compared with the floor / 2.
POOL = 2
JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python api.py --port N` started as a user does, from an empty temporary directory (or, with
    `body_file`, bench/transport_floor.py serving that fixed body).

    The server runs its engines in its own process (`--engine-hosts 1`) unless `extra_args` names
    `--engine-hosts`: the phases compare it with an in-process engine floor and read its CPU and memory from one
    pid. hosts_bench.py sets the hosts (the default on a machine with several cores) against this."""

    #: How long a start may take (Popen -> first 200); bench/scale.py allows more for its 52,000-node feeder.
    start_timeout_s = 60.0

    def __init__(self, label: str, body_file: Path | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.label = label
        self.body_file = body_file
        self.extra_args = extra_args  # after --port: e.g. --state FILE --max-live-scenarios 2
        self.port = free_port()
        self.cwd = Path(tempfile.mkdtemp(prefix="bench-cwd-"))
        self.log_dir = Path(tempfile.mkdtemp(prefix="bench-log-"))
        self.stdout_path, self.stderr_path = self.log_dir / "stdout.txt", self.log_dir / "stderr.txt"
        self.process: subprocess.Popen | None = None
        self.requests = 0             # successful requests answered (counted by our clients)
        self.rss_marks: dict[int, dict[str, int]] = {}
        self._marks: set[int] = set()
        self.startup_s = float("nan")

    def start(self) -> None:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            started = time.perf_counter()
            hosts = () if "--engine-hosts" in self.extra_args else ("--engine-hosts", "1")
            command = [sys.executable, str(REPO / "api.py"), "--port", str(self.port), *hosts, *self.extra_args]
            if self.body_file is not None:
                command = [sys.executable, str(REPO / "bench" / "transport_floor.py"), str(self.port),
                           str(self.body_file), *self.extra_args]
            self.process = subprocess.Popen(command, cwd=self.cwd, stdout=out, stderr=err)
        deadline = started + self.start_timeout_s
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"server {self.label} exited with {self.process.returncode} during start-up:\n"
                                 f"{self.tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/state")
                response = conn.getresponse()
                body = response.read()
                self.startup_s = time.perf_counter() - started
                check(response.status, response.getheader("Content-Type"), body, "start-up GET /state")
                self.count()
                break
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                pass
            finally:
                conn.close()
            if time.perf_counter() > deadline:
                raise BenchError(f"server {self.label} did not answer within {self.start_timeout_s:.0f} s:\n"
                                 f"{self.tail()}")
            time.sleep(0.01)
        banner = self.stdout_path.read_text(errors="replace")
        if f"listening on http://127.0.0.1:{self.port}/" not in banner:
            raise BenchError(f"server {self.label} answered but did not print its 'listening on' line: {banner!r}")

    def mark_rss_at(self, *counts: int) -> None:
        self._marks.update(counts)

    def count(self, n: int = 1) -> None:
        for _ in range(n):
            self.requests += 1
            if self.requests in self._marks:
                self.rss_marks[self.requests] = self.memory()

    def memory(self) -> dict[str, int]:
        assert self.process is not None
        return read_proc_status(self.process.pid)

    def tail(self, lines: int = 30) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def access_log(self) -> list[tuple[str, str, int, float]]:
        """(method, path, status, app ms) per line of the server's access log on stderr."""
        pattern = re.compile(r"^(GET|POST|DELETE|PUT|PATCH) (\S+) (\d{3}) ([\d.]+)ms$")
        rows = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            match = pattern.match(line)
            if match:
                rows.append((match[1], match[2].split("?")[0], int(match[3]), float(match[4])))
        return rows

    def stop(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.process is None:
            return info
        if self.process.poll() is None:
            try:
                info["final_memory_kB"] = self.memory()
            except OSError:
                pass
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                info["killed"] = True
        info["returncode"] = self.process.returncode
        info["printed_stopped"] = "stopped" in self.stdout_path.read_text(errors="replace")
        info["wrote_into_cwd"] = sorted(p.name for p in self.cwd.iterdir())
        return info

    def cleanup(self) -> None:
        shutil.rmtree(self.cwd, ignore_errors=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)


def check(status: int, content_type: str | None, body: bytes, what: str) -> dict[str, Any]:
    if status != 200:
        raise BenchError(f"{what}: HTTP {status}: {body[:400]!r}")
    if not (content_type or "").startswith("application/json"):
        raise BenchError(f"{what}: Content-Type {content_type!r}, expected application/json")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BenchError(f"{what}: body is not JSON ({error}): {body[:200]!r}") from error
    if not isinstance(document, dict) or document.get("status") != "success":
        raise BenchError(f"{what}: status is not 'success': {body[:400]!r}")
    return document


class Client:
    """One keep-alive HTTP/1.1 connection (http.client: the least client overhead in the standard library)."""

    def __init__(self, server: Server | Remote, prefix: str = "") -> None:
        self.server = server
        self.prefix = prefix  # "/scenarios/<id>" sends the grid routes to that scenario
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.connects = 0
        self.last_body = b""
        self.last_headers: Any = None

    def connect(self) -> None:
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connects += 1

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
             ) -> tuple[int, str | None, bytes, int]:
        """Send one request, read the whole response; returns status, content type, body and ns elapsed."""
        if self.conn.sock is None:
            self.connect()
        t0 = time.perf_counter_ns()
        self.conn.request(method, path, body=body, headers=headers or (JSON_HEADERS if body is not None else {}))
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter_ns() - t0
        self.last_headers = response.headers
        return response.status, response.getheader("Content-Type"), data, elapsed

    def add_generator(self, op: GeneratorOp, count: bool = True) -> tuple[int, int]:
        status, ctype, data, ns = self.call("POST", self.prefix + "/add_generator", op.body)
        doc = check(status, ctype, data, f"POST {self.prefix}/add_generator {op.body.decode()}")
        action = doc.get("action") or {}
        if action.get("created") is not op.new or action.get("kw") != op.kw or "results" not in doc:
            raise BenchError(f"POST {self.prefix}/add_generator {op.body.decode()}: expected created={op.new}, kw={op.kw}; "
                             f"got action {action}")
        if count:
            self.server.count()
        return ns, len(data)

    def modify(self, op: LoadOp, count: bool = True, query: str = "") -> tuple[int, int]:
        status, ctype, data, ns = self.call("POST", self.prefix + "/modify_load_neighbourhood" + query, op.body)
        self.last_body = data
        what = f"POST {self.prefix}/modify_load_neighbourhood {op.body.decode()}"
        doc = check(status, ctype, data, what)
        action = doc.get("action") or {}
        asked_for = action.get("neighbourhood") == op.neighbourhood and action.get("factor") == op.factor
        # The transport floor answers one fixed body to everything, so only the envelope is checked there.
        if self.server.body_file is None and not (asked_for and "results" in doc):
            raise BenchError(f"{what}: unexpected action {action}")
        if count:
            self.server.count()
        return ns, len(data)

    def state(self) -> tuple[int, int, dict[str, Any]]:
        status, ctype, data, ns = self.call("GET", self.prefix + "/state")
        doc = check(status, ctype, data, f"GET {self.prefix}/state")
        summary = (doc.get("results") or {}).get("power_summary") or {}
        if summary.get("converged") is not True:
            raise BenchError(f"GET {self.prefix}/state: power_summary.converged is not true: {summary}")
        self.server.count()
        return ns, len(data), summary

    def revalidate(self) -> int:
        """GET /state with If-None-Match: the ETag of the last GET /state. Must be 304 with no body."""
        etag = self.last_headers.get("ETag") if self.last_headers is not None else None
        if not etag:
            raise BenchError(f"GET {self.prefix}/state: no ETag to revalidate with")
        status, _, data, ns = self.call("GET", self.prefix + "/state", headers={"If-None-Match": etag})
        if status != 304 or data:
            raise BenchError(f"GET {self.prefix}/state with If-None-Match {etag}: HTTP {status}, {len(data)} bytes; "
                             f"expected 304 and no body")
        self.server.count()
        return ns

    def create_scenario(self, name: str, query: str = "") -> tuple[str, int, dict[str, Any]]:
        """POST /scenarios from the base case: 201, Location /scenarios/<id>, the scenario live with no changes.
        Returns the id, the ns elapsed and the document."""
        status, ctype, data, ns = self.call("POST", "/scenarios" + query, orjson.dumps({"name": name}))
        what = f"POST /scenarios{query} {{'name': {name!r}}}"
        if status != 201:
            raise BenchError(f"{what}: HTTP {status}, expected 201: {data[:400]!r}")
        doc = check(200, ctype, data, what)
        scenario = doc.get("scenario") or {}
        location = self.last_headers.get("Location") if self.last_headers is not None else None
        if not scenario.get("id") or location != f"/scenarios/{scenario['id']}" or scenario.get("changes") != 0 \
                or scenario.get("live") is not True or "results" not in doc:
            raise BenchError(f"{what}: unexpected scenario {scenario} or Location {location!r}")
        self.last_body = data
        self.server.count()
        return scenario["id"], ns, doc

    def scenario(self, scenario_id: str) -> dict[str, Any]:
        """GET /scenarios/<id>: the scenario's description (changes, live, …)."""
        status, ctype, data, _ = self.call("GET", f"/scenarios/{scenario_id}")
        self.server.count()
        return check(status, ctype, data, f"GET /scenarios/{scenario_id}")["scenario"]

    def delete_scenario(self, scenario_id: str) -> int:
        status, ctype, data, ns = self.call("DELETE", f"/scenarios/{scenario_id}")
        doc = check(status, ctype, data, f"DELETE /scenarios/{scenario_id}")
        if (doc.get("deleted") or {}).get("id") != scenario_id:
            raise BenchError(f"DELETE /scenarios/{scenario_id}: unexpected answer {data[:300]!r}")
        self.server.count()
        return ns

    def get(self, path: str) -> tuple[dict[str, Any], int, int]:
        """A GET answered 200 with "status": "success": the document, ns elapsed, body bytes."""
        status, ctype, data, ns = self.call("GET", path)
        return check(status, ctype, data, f"GET {path}"), ns, len(data)

    def close(self) -> None:
        self.conn.close()


class Remote:
    """A server started by someone else (`python api.py --port N`, e.g. under a profiler): what Client and
    wrk_level need of a Server."""

    body_file = None

    def __init__(self, port: int) -> None:
        self.port, self.requests = port, 0

    def count(self, n: int = 1) -> None:
        self.requests += n


def wrk_level(server: Server, prefixes: list[str], duration: float, query: str = "") -> dict[str, Any]:
    """wrk (Debian's package) with one connection per prefix: connection k posts neighbourhood changes to
    `prefixes[k]` ("/scenarios/<id>"; the same prefix twice shares a scenario) for `duration` s (whole seconds,
    at least 1), alternating x1.05 and x1/1.05 per neighbourhood. Any answer other than 2xx stops the run.
    Also returns the CPU seconds wrk used (the client's share of the machine)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed: it is Debian's package 'wrk' (apt-get install wrk)")
    n = len(prefixes)
    seconds = max(1, round(duration))
    command = [wrk, "-t", str(n), "-c", str(n), "-d", f"{seconds}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
               f"http://127.0.0.1:{server.port}", "--", ",".join(prefixes),
               ",".join(map(str, neighbourhood_ids())), query]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({run.returncode}): {run.stdout[-800:]} {run.stderr[-800:]}")
    result = json.loads(lines[-1])
    errors = {k: result[k] for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")}
    if any(errors.values()) or result["requests"] == 0:
        raise BenchError(f"wrk with {n} connections on {prefixes}: {result['requests']} answers, errors {errors}")
    server.count(result["requests"])
    elapsed = result["duration_us"] / 1e6
    return {"clients": n, "scenarios": len(set(prefixes)), "requests": result["requests"], "seconds": elapsed,
            "rps": result["requests"] / elapsed, "response_bytes_total": result["bytes"],
            "latency": {k[:-3]: result[k] / 1000 for k in ("p50_us", "p90_us", "p99_us", "max_us", "mean_us")},
            "client_cpu_s": (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
            "load_generator": "wrk " + " ".join(command[1:9])}


class Api:
    """A server started as a user starts it (`python api.py …` from an empty directory) and one keep-alive client:
    checked calls, and studies run to the end."""

    POLL_S = 0.02

    def __init__(self, label: str, *args: str) -> None:
        self.server = Server(label, extra_args=args)
        try:
            self.server.start()
        except BaseException:
            self.server.cleanup()
            raise
        self.client = Client(self.server)

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], int]:
        """Status (200 or 202), the checked document, ns elapsed."""
        status, ctype, data, ns = self.client.call(method, path, None if body is None else orjson.dumps(body))
        return status, check(200 if status in (200, 202) else status, ctype, data, f"{method} {path}"), ns

    def study(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /studies/<route>, then GET its job every 20 ms until it ends; a job not done stops the run. The wall
        time from the POST to the finished job (with its result) in the client's hand, the job's own time (its
        started_at to finished_at: the run without HTTP and polling), the job, its task count."""
        started = time.perf_counter()
        job = self.call("POST", f"/studies/{route}?wait=30", body)[1]["job"]
        while job["status"] in ("queued", "running"):
            time.sleep(self.POLL_S)
            job = self.call("GET", f"/jobs/{job['id']}")[1]["job"]
        wall = time.perf_counter() - started
        if job["status"] != "done":
            raise BenchError(f"POST /studies/{route}: job {job['status']}: {job['error']}")
        job_s = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
        return {"wall_s": wall, "job_s": job_s, "job": job, "tasks": job["tasks"]["total"]}

    def stop(self) -> dict[str, Any]:
        self.client.close()
        try:
            return self.server.stop()
        finally:
            self.server.cleanup()


class Servers:
    """The servers a phase starts, as a context: each stopped with what its stop found (kept by label); on a
    failure every one still running is stopped and the last lines of its stderr printed; all cleaned up at the
    end."""

    def __init__(self) -> None:
        self.started: list[Server] = []
        self.stops: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> "Servers":
        return self

    def start(self, label: str, *extra_args: str, body_file: Path | None = None, rss_at: tuple[int, ...] = ()
              ) -> Server:
        """A server started; `rss_at`: after how many answered requests its memory is read (Server.rss_marks)."""
        server = Server(label, body_file=body_file, extra_args=extra_args)
        server.mark_rss_at(*rss_at)
        self.started.append(server)
        server.start()
        return server

    def stop(self, server: Server, *clients: Client) -> dict[str, Any]:
        for client in clients:
            client.close()
        info = self.stops[server.label] = {"port": server.port, "requests": server.requests,
                                           "startup_s": server.startup_s, **server.stop()}
        if info.get("wrote_into_cwd"):
            print(f"WARNING: server {server.label} wrote into its working directory: {info['wrote_into_cwd']}",
                  file=sys.stderr)
        return info

    def __exit__(self, kind: type | None, *exc: object) -> None:
        try:
            for server in self.started if kind is not None else ():
                if server.process is not None and server.process.poll() is None:
                    server.stop()
                print(f"--- server {server.label} stderr (last lines) ---\n{server.tail()}", file=sys.stderr)
        finally:
            for server in self.started:
                server.cleanup()


class DaskCluster:
    """A Dask scheduler and its workers on this machine, as a context: `lines` are shell lines typed in the checkout
    with `{port}` for the scheduler's (a free port), each in its own session so stop() ends exactly what it
    started."""

    def __init__(self, lines: list[str], env: dict[str, str] | None = None, workers: int = POOL) -> None:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.processes = [subprocess.Popen(["bash", "-c", line.format(port=port)], cwd=REPO, env=env,
                                           start_new_session=True, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL) for line in lines]
        try:
            with self.client() as client:
                client.wait_for_workers(workers, timeout=60)
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> "DaskCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> Any:
        import distributed

        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def worker_pids(self) -> list[int]:
        with self.client() as client:
            return list(client.run(os.getpid).values())

    def stop(self) -> None:
        for process in reversed(self.processes):  # the workers first
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A floor measured twice (start and end of the run: the machine drifts): the first run's figures with the
    mean wall time, both runs' wall times, and the ms per trial of the mean when it counts trials."""
    wall = sum(run["wall_s"] for run in runs) / len(runs)
    out = {**runs[0], "wall_s": wall, "runs": [run["wall_s"] for run in runs]}
    if "trials" in out:
        out["ms_per_trial"] = 1000 * wall / out["trials"]
    return out


def over_pool_share(wall_s: float, floor_s: float, workers: int) -> float:
    """A study's wall time over the floor's share per worker (floor / workers): 1 is a pool of `workers` that
    splits the floor's work evenly and adds nothing."""
    return wall_s / (floor_s / workers)


def run_main(main: Callable[[], int]) -> None:
    """A bench script's end: its exit status, or 1 after a wrong answer or a broken server (BenchError)."""
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"\nBENCHMARK FAILED: {error}", file=sys.stderr)
        sys.exit(1)
