#!/usr/bin/env python3
"""Benchmark of the IEEE 123-bus power-flow API against the engine floor (opendssdirect alone, in-process).

    python bench/bench.py            # full run (about 2 minutes on 2 cores)
    python bench/bench.py --quick    # ~40 s smoke run
    python bench/bench.py --requests 500 --duration 3 --many-scenarios 200 --out /tmp/bench.json

What it does, in order (see bench/README.md for the definitions):
  1. Engine floor: the same sequence of changes as the HTTP latency phase, applied in this process with
     opendssdirect only (change, solve, batch reads of voltages / line flows / losses, orjson), timed per step.
  2. Server A (`python api.py --port N` from an empty temporary directory): start-up time, then one keep-alive
     http.client connection measures POST /add_generator, POST /modify_load_neighbourhood and GET /state
     (interleaved), then more requests until --leak-requests in total for the RSS leak check.
  3. Server B (fresh): throughput with 1, 2, 4 and 8 concurrent clients, POST /modify_load_neighbourhood only.
  4. Scenarios (bench/scenarios_phase.py, servers C, D, E): creation time, rebuild time of a 20-change journal,
     memory per live scenario, 2 clients on one scenario against 2 on two, --many-scenarios held by one server.
  5. The floor again (drift check), a table on stdout and every figure in a JSON file.

Every response is checked (HTTP 200, JSON, "status": "success", and the action the request asked for) before
anything is reported; any failure stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import opendssdirect
import orjson

REPO = Path(__file__).resolve().parent.parent
# bench/scenarios_phase.py does `import bench`: let it find this very module (one BenchError, one Server class)
# rather than load a second copy when this file runs as a script.
sys.modules.setdefault("bench", sys.modules[__name__])
MODEL_DIR = REPO / "Test_Systems" / "IEEE_123_Bus-G"
MASTER_FILE = MODEL_DIR / "Master.dss"
NEIGHBOURHOOD_FILE = MODEL_DIR / "neighbourhoods.json"
DEFAULT_OUT = REPO / "bench" / "results" / "latest.json"
WRK_SCRIPT = REPO / "bench" / "wrk_changes.lua"

#: The fixed set of generator sites: the first pass over it creates, later passes update (bounded model size).
GENERATOR_SITES: list[tuple[str, int]] = [
    ("13", 3), ("16", 1), ("18", 3), ("9", 1), ("67", 3), ("19", 1), ("72", 3), ("20", 1), ("97", 3), ("33", 1),
    ("101", 3), ("34", 1), ("105", 3), ("37", 1), ("108", 3), ("39", 1), ("60", 3), ("41", 1), ("57", 3), ("45", 1),
]
WARMUP_SITE = ("46", 1)  # used only by the untimed warm-up, so every measured site is new exactly once
WARMUP_ROUNDS = 5
LOAD_FACTOR = 1.05  # each neighbourhood alternates x1.05 and x1/1.05, so its cumulative factor stays 1 or 1.05
JSON_HEADERS = {"Content-Type": "application/json"}
LEAN_SECTIONS = "power_summary,voltage_profile"

# Targets, against the two floors measured in the same run: T (transport: waitress answering canned bytes) and
# E (engine: the same change with opendssdirect alone). k = (p50 - T) / E.
TARGET_CHANGE_K = 2.5     # each change: p50 <= T(POST) + k E(its kind of change)
TARGET_STATE_K = 0.5      # GET /state: p50 <= T(GET) + k mean(E)
TARGET_REVALIDATE = 1.2   # GET /state answered 304: p50 / T(an empty 304)
TARGET_TAIL = 2.0         # each change: p99 / its own p50
TARGET_SCALING = 1.4      # req/s of 4 clients, each on its own scenario / req/s of 1 client, at least
TARGET_STARTUP_S = 2.0    # Popen -> first 200 from GET /state, worst of the server starts
TARGET_LEAK = 0.10        # |RSS after leak-requests / RSS after the early mark - 1|


class BenchError(Exception):
    """A wrong answer or a broken server: the run stops and nothing is reported."""


# ----------------------------------------------------------------------------------------------------- statistics
def stats_ms(samples_ns: list[int] | np.ndarray) -> dict[str, Any]:
    """p50/p90/p99 (numpy linear interpolation), min/max/mean/stdev, in milliseconds."""
    a = np.asarray(samples_ns, dtype=float) / 1e6
    if a.size == 0:
        return {"n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "p50": float(p50), "p90": float(p90), "p99": float(p99), "min": float(a.min()),
            "max": float(a.max()), "mean": float(a.mean()), "stdev": float(a.std(ddof=1)) if a.size > 1 else 0.0}


# ----------------------------------------------------------------------------------------------------- workload
@dataclass
class GeneratorOp:
    bus: str
    phases: int
    kw: float
    new: bool

    @property
    def body(self) -> bytes:
        return orjson.dumps({"bus_name": self.bus, "phases": self.phases, "kw": self.kw})


@dataclass
class LoadOp:
    neighbourhood: int
    factor: float

    @property
    def body(self) -> bytes:
        return orjson.dumps({"neighbourhood": self.neighbourhood, "factor": self.factor})


def generator_kw(site: tuple[str, int], k: int) -> float:
    """Modest set-points: 50..300 kW three-phase, 10..100 kW single-phase."""
    return float(50 + (k * 37) % 251) if site[1] == 3 else float(10 + (k * 13) % 91)


def generator_ops(n: int) -> list[GeneratorOp]:
    """Alternate new and existing: even steps create the next unused site while any is left, odd steps (and
    every step once all sites exist) re-post an existing site round-robin with a different kW."""
    ops: list[GeneratorOp] = []
    created: list[tuple[str, int]] = []
    last_kw: dict[tuple[str, int], float] = {}
    update_turn = 0
    for i in range(n):
        if i % 2 == 0 and len(created) < len(GENERATOR_SITES):
            site, new = GENERATOR_SITES[len(created)], True
            created.append(site)
        else:
            site, new = created[update_turn % len(created)], False
            update_turn += 1
        kw = generator_kw(site, i)
        if kw == last_kw.get(site):
            kw += 1.0
        last_kw[site] = kw
        ops.append(GeneratorOp(site[0], site[1], kw, new))
    return ops


def warmup_generator_ops() -> list[GeneratorOp]:
    bus, phases = WARMUP_SITE
    return [GeneratorOp(bus, phases, 20.0 + 5 * i, i == 0) for i in range(WARMUP_ROUNDS)]


class FactorAlternator:
    """Per client: each neighbourhood alternates x1.05 and x1/1.05; close() lists the ops that bring it back."""

    def __init__(self, neighbourhoods: list[int], offset: int = 0) -> None:
        self.neighbourhoods, self.offset, self.i = neighbourhoods, offset, 0
        self.open: dict[int, bool] = {nb: False for nb in neighbourhoods}

    def next(self) -> LoadOp:
        nb = self.neighbourhoods[(self.i + self.offset) % len(self.neighbourhoods)]
        self.i += 1
        factor = 1 / LOAD_FACTOR if self.open[nb] else LOAD_FACTOR
        self.open[nb] = not self.open[nb]
        return LoadOp(nb, factor)

    def close(self) -> list[LoadOp]:
        ops = [LoadOp(nb, 1 / LOAD_FACTOR) for nb, is_open in self.open.items() if is_open]
        self.open = {nb: False for nb in self.neighbourhoods}
        return ops


def neighbourhood_ids() -> list[int]:
    return sorted(int(k) for k in json.loads(NEIGHBOURHOOD_FILE.read_text(encoding="utf-8"))["neighbourhoods"])


# ----------------------------------------------------------------------------------------------------- engine floor
class EngineFloor:
    """The same changes with opendssdirect alone: no Flask, no simulation_core."""

    def __init__(self) -> None:
        d = opendssdirect.NewContext()
        d.Basic.AllowChangeDir(False)
        d.Text.Command(f"compile [{MASTER_FILE}]")
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError("engine floor: the base case did not converge")
        self.d, self.batch = d, d.to_altdss()
        raw = json.loads(NEIGHBOURHOOD_FILE.read_text(encoding="utf-8"))["neighbourhoods"]
        bus_nb = {b.lower(): int(nb) for nb, buses in raw.items() for b in buses}
        self.loads: dict[int, list[tuple[str, float, float]]] = {int(nb): [] for nb in raw}
        for name in d.Loads.AllNames():
            d.Loads.Name(name)
            d.Circuit.SetActiveElement(f"Load.{name}")
            bus = d.CktElement.BusNames()[0].split(".")[0].lower()
            if bus in bus_nb:
                self.loads[bus_nb[bus]].append((name, d.Loads.kW(), d.Loads.kvar()))
        self.cumulative = {nb: 1.0 for nb in self.loads}

    def _generator_command(self, op: GeneratorOp) -> tuple[str, str]:
        d = self.d
        d.Circuit.SetActiveBus(op.bus)
        nodes = sorted(d.Bus.Nodes())
        kv_ln = d.Bus.kVBase()
        if op.phases == 3:
            if not {1, 2, 3} <= set(nodes):
                raise BenchError(f"bus {op.bus} has phases {nodes}; cannot host a 3-phase generator")
            use, kv = [1, 2, 3], kv_ln * 3 ** 0.5
        else:
            use, kv = [nodes[0]], kv_ln
        name = f"gen_{op.bus}_{''.join(map(str, use))}"
        return name, (f"New Generator.{name} bus1={op.bus}.{'.'.join(map(str, use))} phases={op.phases} "
                      f"kv={kv:.6f} kw={op.kw!r} pf=1 model=1 vminpu=0.5 vmaxpu=1.5")

    def _solve_read(self) -> tuple[int, int, bytes]:
        d, batch = self.d, self.batch
        t0 = time.perf_counter_ns()
        d.Solution.Solve()
        if not d.Solution.Converged():
            raise BenchError("engine floor: the power flow did not converge")
        t1 = time.perf_counter_ns()
        line_currents = batch.Line.CurrentsMagAng
        body = orjson.dumps({
            "bus_volts": np.asarray(d.Circuit.AllBusVolts()),
            "bus_vmag_pu": np.asarray(d.Circuit.AllBusMagPu()),
            "line_powers": np.asarray(batch.Line.TotalPowers()).view(np.float64),  # complex -> re, im pairs
            "line_currents": np.asarray(line_currents() if callable(line_currents) else line_currents),
            "losses": d.Circuit.Losses(),
            "total_power": d.Circuit.TotalPower(),
        }, option=orjson.OPT_SERIALIZE_NUMPY)
        return t0, t1, body

    def generator_step(self, op: GeneratorOp) -> tuple[int, int, int, int]:
        """(total, change, solve, read+serialise) in ns."""
        name, command = self._generator_command(op)  # name and kV lookup: outside the timed step
        d = self.d
        t0 = time.perf_counter_ns()
        if op.new:
            d.Text.Command(command)
        else:
            d.Generators.Name(name)
            d.Generators.kW(op.kw)
        t_solve, t_read, _ = self._solve_read()
        t_end = time.perf_counter_ns()
        return t_end - t0, t_solve - t0, t_read - t_solve, t_end - t_read

    def load_step(self, op: LoadOp) -> tuple[int, int, int, int]:
        d = self.d
        t0 = time.perf_counter_ns()
        cumulative = self.cumulative[op.neighbourhood] * op.factor
        for name, kw, kvar in self.loads[op.neighbourhood]:
            d.Loads.Name(name)
            d.Loads.kW(kw * cumulative)
            d.Loads.kvar(kvar * cumulative)
        self.cumulative[op.neighbourhood] = cumulative
        t_solve, t_read, _ = self._solve_read()
        t_end = time.perf_counter_ns()
        return t_end - t0, t_solve - t0, t_read - t_solve, t_end - t_read

    def totals(self) -> dict[str, float]:
        p, q = self.d.Circuit.TotalPower()
        losses_w, _ = self.d.Circuit.Losses()
        return {"total_circuit_power_kW": -p, "total_circuit_power_kVAR": -q, "total_losses_kW": losses_w / 1000}


def run_floor(gen_warm: list[GeneratorOp], load_warm: list[LoadOp], gen_ops: list[GeneratorOp],
              load_ops: list[LoadOp]) -> dict[str, Any]:
    floor = EngineFloor()
    for g, l in zip(gen_warm, load_warm):
        floor.generator_step(g)
        floor.load_step(l)
    gen, load = [], []
    for g, l in zip(gen_ops, load_ops):  # interleaved, exactly as the HTTP latency phase sends them
        gen.append(floor.generator_step(g))
        load.append(floor.load_step(l))
    out: dict[str, Any] = {"totals": floor.totals()}
    for kind, rows in (("generator", gen), ("load", load)):
        a = np.array(rows)
        out[kind] = stats_ms(a[:, 0])
        out[kind]["components_p50_ms"] = {part: float(np.percentile(a[:, j], 50) / 1e6)
                                          for j, part in ((1, "change"), (2, "solve"), (3, "read_serialise"))}
        out[kind]["samples_us"] = [round(x / 1e3, 1) for x in a[:, 0].tolist()]
    new = [r[0] for r, g in zip(gen, gen_ops) if g.new]
    existing = [r[0] for r, g in zip(gen, gen_ops) if not g.new]
    out["generator_new"], out["generator_existing"] = stats_ms(new), stats_ms(existing)
    out["mean_p50_ms"] = (out["generator"]["p50"] + out["load"]["p50"]) / 2
    return out


# ----------------------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in kB."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out


def process_cpu_ticks(pid: int | str) -> int:
    """utime + stime of a process (all its threads) in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class CpuMeter:
    """How much of the machine's CPU other processes used while we measured (noise from outside the benchmark)."""

    def __init__(self, *pids: int) -> None:
        self.pids = ("self", *pids)
        self.start = self._read()

    def _read(self) -> tuple[float, int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        busy = values[0] + values[1] + values[2] + sum(values[5:8])  # user nice system irq softirq steal
        return time.perf_counter(), busy, sum(process_cpu_ticks(pid) for pid in self.pids)

    def stop(self) -> dict[str, float]:
        """CPU used, as a percentage of all CPUs over the interval: by everything, by us, by other processes."""
        try:
            end = self._read()
        except OSError:
            return {}
        elapsed_ticks = (end[0] - self.start[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        busy, ours = end[1] - self.start[1], end[2] - self.start[2]
        return {"all_pct": 100 * busy / elapsed_ticks, "bench_and_server_pct": 100 * ours / elapsed_ticks,
                "other_processes_pct": max(0.0, 100 * (busy - ours) / elapsed_ticks)}


class Server:
    """`python api.py --port N` started as a user does, from an empty temporary directory (or, with
    `body_file`, bench/transport_floor.py serving that fixed body)."""

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
            command = [sys.executable, str(REPO / "api.py"), "--port", str(self.port), *self.extra_args]
            if self.body_file is not None:
                command = [sys.executable, str(REPO / "bench" / "transport_floor.py"), str(self.port),
                           str(self.body_file)]
            self.process = subprocess.Popen(command, cwd=self.cwd, stdout=out, stderr=err)
        deadline = started + 60
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
                raise BenchError(f"server {self.label} did not answer within 60 s:\n{self.tail()}")
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

    def __init__(self, server: Server, prefix: str = "") -> None:
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

    def close(self) -> None:
        self.conn.close()


# ----------------------------------------------------------------------------------------------------- phases
def latency_phase(server: Server, gen_warm: list[GeneratorOp], load_warm: list[LoadOp],
                  gen_ops: list[GeneratorOp], load_ops: list[LoadOp]) -> tuple[dict[str, Any], bytes]:
    """Figures, and the body of the last POST /modify_load_neighbourhood response (for the transport floor)."""
    client = Client(server)
    for g, l in zip(gen_warm, load_warm):
        client.add_generator(g)
        client.modify(l)
        client.state()
    first_measured = server.requests  # the access-log line index of the first measured request
    gen, load, state, revalidated = [], [], [], []
    sizes: dict[str, int] = {}
    summary: dict[str, Any] = {}
    for g, l in zip(gen_ops, load_ops):
        ns, sizes["add_generator"] = client.add_generator(g)
        gen.append(ns)
        ns, sizes["modify_load_neighbourhood"] = client.modify(l)
        load.append(ns)
        ns, sizes["state"], summary = client.state()
        state.append(ns)
        revalidated.append(client.revalidate())
    out: dict[str, Any] = {
        "add_generator": stats_ms(gen),
        "add_generator_new": stats_ms([ns for ns, g in zip(gen, gen_ops) if g.new]),
        "add_generator_existing": stats_ms([ns for ns, g in zip(gen, gen_ops) if not g.new]),
        "modify_load_neighbourhood": stats_ms(load),
        "state": stats_ms(state),
        "state_304": stats_ms(revalidated),
        "response_bytes": sizes,
        "connections_opened": client.connects,
        "final_power_summary": summary,
        "samples_us": {k: [round(x / 1e3, 1) for x in v]
                       for k, v in (("add_generator", gen), ("modify_load_neighbourhood", load), ("state", state),
                                    ("state_304", revalidated))},
    }
    out["app_time"] = app_times(server, first_measured, len(gen_ops))
    post_body = client.last_body
    out["health_baseline"] = health_baseline(client, len(gen_ops))
    out["lean"] = lean_phase(client, len(load_ops))
    client.close()
    return out, post_body


def lean_phase(client: Client, n: int) -> dict[str, Any]:
    """POST /modify_load_neighbourhood?sections=power_summary,voltage_profile: what a controller that needs only
    the totals waits for (no target; quoted in the README). Its own factors, undone at the end."""
    alternator = FactorAlternator(neighbourhood_ids(), offset=7)
    query = f"?sections={LEAN_SECTIONS}"
    latencies, size = [], 0
    for _ in range(n):
        ns, size = client.modify(alternator.next(), query=query)
        latencies.append(ns)
    for op in alternator.close():
        client.modify(op, query=query)
    return {**stats_ms(latencies), "response_bytes": size, "sections": LEAN_SECTIONS}


def transport_phase(body: bytes, load_warm: list[LoadOp], load_ops: list[LoadOp], duration: float,
                    neighbourhoods: list[int]) -> dict[str, Any]:
    """The same client and requests against bench/transport_floor.py: waitress, set up as api.py sets it up,
    answering every request with one real change response. What HTTP alone costs on this machine."""
    body_dir = Path(tempfile.mkdtemp(prefix="bench-body-"))
    body_file = body_dir / "response.json"
    body_file.write_bytes(body)
    server = Server("T", body_file=body_file)
    try:
        server.start()
        client = Client(server)
        for op in load_warm:
            client.modify(op)
            client.state()
        post, state, empty = [], [], []
        for op in load_ops:
            post.append(client.modify(op)[0])
            state.append(client.state()[0])
            empty.append(client.revalidate())
        client.close()
        levels = {}
        for n in (1, 4):
            meter = CpuMeter(server.process.pid)
            levels[n] = wrk_level(server, [f"/scenarios/floor-{k}" for k in range(n)], duration)
            levels[n]["cpu"] = meter.stop()
        server.stop()
    finally:
        server.cleanup()
        shutil.rmtree(body_dir, ignore_errors=True)
    return {"post": stats_ms(post), "state": stats_ms(state), "empty_304": stats_ms(empty),
            "throughput_1_client": levels[1], "throughput_4_clients": levels[4],
            "response_bytes": len(body), "startup_s": server.startup_s}


def health_baseline(client: Client, n: int) -> dict[str, Any]:
    """GET /health (tiny body, no grid work): the HTTP + Flask round trip every endpoint pays. Optional."""
    latencies = []
    for _ in range(n):
        status, ctype, data, ns = client.call("GET", "/health")
        if status == 404 and not latencies:
            return {"n": 0, "note": "GET /health not found; baseline skipped"}
        check(status, ctype, data, "GET /health")
        client.server.count()
        latencies.append(ns)
    return {**stats_ms(latencies), "response_bytes": len(data)}


#: The requests of one latency round, in order, as the access log shows them, and their keys in the report.
LATENCY_ROUND = (("POST", "/add_generator", "add_generator"),
                 ("POST", "/modify_load_neighbourhood", "modify_load_neighbourhood"),
                 ("GET", "/state", "state"), ("GET", "/state", "state_304"))


def app_times(server: Server, first: int, rounds: int) -> dict[str, Any]:
    """Time inside the WSGI app (from the server's access log), for the measured requests of the latency phase."""
    log = server.access_log()
    size = len(LATENCY_ROUND)
    rows = log[first:first + size * rounds]
    expected = [(method, path) for method, path, _ in LATENCY_ROUND] * rounds
    if len(rows) != len(expected) or any((m, p) != e for (m, p, _, _), e in zip(rows, expected)):
        return {"available": False, "note": "access log lines did not line up with the requests sent"}
    out: dict[str, Any] = {"available": True}
    for k, (_, _, key) in enumerate(LATENCY_ROUND):
        ms = np.array([r[3] for r in rows[k::size]])
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        out[key] = {"p50": float(p50), "p90": float(p90), "p99": float(p99), "resolution_ms": 0.1}
    return out


def throughput_phase(server: Server, duration: float, neighbourhoods: list[int]) -> dict[str, Any]:
    """POST …/modify_load_neighbourhood (whole results) from 1, 2, 4 and 8 wrk connections, each on a scenario of
    its own, made fresh for the level (and deleted after it), so every level starts from the same state."""
    client = Client(server)
    warm = FactorAlternator(neighbourhoods)
    for op in [warm.next() for _ in range(20)] + warm.close():
        client.modify(op)
    levels = []
    for n in (1, 2, 4, 8):
        ids = [client.create_scenario(f"throughput-{n}-{k}", query="?sections=power_summary")[0] for k in range(n)]
        meter = CpuMeter(server.process.pid)
        server_ticks = process_cpu_ticks(server.process.pid)
        level = wrk_level(server, [f"/scenarios/{scenario_id}" for scenario_id in ids], duration)
        level["cpu"] = meter.stop()
        level["server_cpu_ms_per_request"] = (process_cpu_ticks(server.process.pid) - server_ticks) \
            / os.sysconf("SC_CLK_TCK") * 1000 / level["requests"]
        levels.append(level)
        journalled = sum(client.scenario(scenario_id)["changes"] for scenario_id in ids)
        if not level["requests"] <= journalled <= level["requests"] + n:  # answers cut off by the end may count
            raise BenchError(f"{n} clients: wrk counted {level['requests']} answers, the scenarios journalled "
                             f"{journalled} changes")
        for scenario_id in ids:
            client.delete_scenario(scenario_id)
    client.close()
    return {"workload": "POST /scenarios/<own id>/modify_load_neighbourhood (whole results), wrk", "levels": levels,
            "scaling_4": levels[2]["rps"] / levels[0]["rps"]}


def leak_phase(server: Server, target_requests: int, neighbourhoods: list[int]) -> dict[str, Any]:
    """Single client, mixed workload (modify, update an existing generator, GET /state) up to the target."""
    client = Client(server)
    alternator = FactorAlternator(neighbourhoods, offset=3)
    started, sent = time.perf_counter(), 0
    k = 0
    while server.requests < target_requests:
        kind = k % 3
        if kind == 0:
            client.modify(alternator.next())
        elif kind == 1:
            site = GENERATOR_SITES[(k // 3) % len(GENERATOR_SITES)]
            client.add_generator(GeneratorOp(site[0], site[1], generator_kw(site, k) + 0.5, False))
        else:
            client.state()
        k += 1
        sent += 1
    for op in alternator.close():
        client.modify(op, count=False)
    client.close()
    return {"requests_sent": sent, "seconds": time.perf_counter() - started}


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


# ----------------------------------------------------------------------------------------------------- report
def environment() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = usable_cpus()

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                  timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "python": platform.python_version(), "python_executable": sys.executable,
        "opendssdirect": opendssdirect.__version__,
        "engine": opendssdirect.Basic.Version().split(";")[0].strip(),
        "flask": version("flask"), "waitress": version("waitress"), "orjson": version("orjson"),
        "numpy": version("numpy"), "cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": usable,
        "platform": platform.platform(), "git_commit": git("rev-parse", "--short", "HEAD").strip(),
        "git_dirty_files": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()],
    }


def cpu_note(cpu: dict[str, float] | None) -> str:
    """A warning when something else on the machine competed for the CPUs while we measured."""
    if not cpu:
        return ""
    other = cpu["other_processes_pct"]
    note = f"\n  [other processes used {other:.0f} % of the CPUs meanwhile"
    return note + ("; figures, tails above all, are disturbed]" if other > 10 else "]")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_row(name: str, s: dict[str, Any], width: int = 34, extra: str = "") -> str:
    return (f"  {name:<{width}} {s['n']:>6} {s['p50']:>8.3f} {s['p90']:>8.3f} {s['p99']:>8.3f} "
            f"{s['min']:>8.3f} {s['max']:>8.3f} {s['stdev']:>8.3f}{extra}")


def print_report(r: dict[str, Any]) -> None:
    env, cfg = r["environment"], r["config"]
    out = []
    add = out.append
    add("IEEE 123-bus power-flow API benchmark" + ("  [--quick]" if cfg["quick"] else ""))
    add(f"  Python {env['python']} | opendssdirect.py {env['opendssdirect']} | flask {env['flask']} | "
        f"waitress {env['waitress']} | orjson {env['orjson']} | numpy {env['numpy']}")
    add(f"  Engine: {env['engine']}")
    add(f"  CPU: {env['cpu']} | {env['cpu_count']} cores ({env['cpus_usable']} usable) | {env['platform']}")
    dirty = f" (uncommitted changes: {', '.join(env['git_dirty_files'])})" if env["git_dirty_files"] else ""
    add(f"  Code: commit {env['git_commit']}{dirty}")
    add(f"  Requests per endpoint {cfg['requests']} (+{WARMUP_ROUNDS} warm-up rounds), throughput "
        f"{cfg['duration']:g} s per level, leak check {cfg['leak_early']} -> {cfg['leak_requests']} requests")
    add("")
    header = f"  {'':<34} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'min':>8} {'max':>8} {'stdev':>8}"
    f = r["floor"]
    add(f"Load average at start {r['loadavg']['start']}, at end {r['loadavg']['end']}")
    add("")
    add("Engine floor, ms per step (opendssdirect in-process: change + solve + batch read + orjson)"
        + cpu_note(f.get("cpu")))
    add(header)
    add(fmt_row("generator change", f["generator"]))
    add(fmt_row("  new generator", f["generator_new"]))
    add(fmt_row("  existing generator", f["generator_existing"]))
    add(fmt_row("load change (one neighbourhood)", f["load"]))
    for kind in ("generator", "load"):
        c = f[kind]["components_p50_ms"]
        add(f"    {kind} p50 parts: change {c['change']:.3f}, solve {c['solve']:.3f}, "
            f"read+serialise {c['read_serialise']:.3f}")
    add("")
    lat = r["latency"]
    app = lat["app_time"]
    add("HTTP latency, ms (one keep-alive http.client connection; the three requests interleaved)"
        + cpu_note(lat.get("cpu")))
    add(header + ("   app p50" if app.get("available") else ""))

    def app_col(key: str) -> str:
        return f" {app[key]['p50']:>9.1f}" if app.get("available") else ""

    add(fmt_row("POST /add_generator", lat["add_generator"], extra=app_col("add_generator")))
    add(fmt_row("  new generator", lat["add_generator_new"]))
    add(fmt_row("  existing generator", lat["add_generator_existing"]))
    add(fmt_row("POST /modify_load_neighbourhood", lat["modify_load_neighbourhood"],
                extra=app_col("modify_load_neighbourhood")))
    add(fmt_row("GET /state", lat["state"], extra=app_col("state")))
    add(fmt_row("GET /state, If-None-Match: 304", lat["state_304"], extra=app_col("state_304")))
    if lat["health_baseline"].get("n"):
        add(fmt_row("GET /health (HTTP baseline, after)", lat["health_baseline"]))
    add(fmt_row("POST /modify…, summaries only *", lat["lean"])
        + f"   {lat['lean']['p50'] / f['load']['p50']:.2f}x load floor, {lat['lean']['response_bytes']} bytes")
    sizes = lat["response_bytes"]
    add(f"  response bytes: add_generator {sizes['add_generator']}, modify {sizes['modify_load_neighbourhood']}, "
        f"state {sizes['state']}; connections opened: {lat['connections_opened']}")
    add(f"  * ?sections={LEAN_SECTIONS}, after the interleaved requests: no tables built or sent")
    if app.get("available"):
        add("  app p50 = time inside the WSGI app from the server's access log (0.1 ms resolution)")
    add("")
    t = r["transport"]
    add(f"Transport floor T, ms (bench/transport_floor.py: waitress as api.py sets it up, answering every request "
        f"with one {t['response_bytes']}-byte change response, or 304 to If-None-Match; no Flask, no engine; "
        f"same client)")
    add(header)
    add(fmt_row("POST (same bodies as the load changes)", t["post"]))
    add(fmt_row("GET", t["state"]))
    add(fmt_row("GET, If-None-Match: 304 (empty)", t["empty_304"]))
    for key in ("throughput_1_client", "throughput_4_clients"):
        level = t[key]
        add(f"  wrk, {level['clients']} connection{'s' if level['clients'] > 1 else ''}: {level['rps']:.1f} req/s "
            f"(p50 {level['latency']['p50']:.3f} ms)")
    add("")
    add("Where the time goes: p50 = T + k E (T: transport floor, E: engine floor of the same kind of change)")
    for name, p50, transport, engine in (
            ("POST /add_generator", lat["add_generator"]["p50"], t["post"]["p50"], f["generator"]["p50"]),
            ("POST /modify_load_neighbourhood", lat["modify_load_neighbourhood"]["p50"], t["post"]["p50"],
             f["load"]["p50"]),
            ("GET /state", lat["state"]["p50"], t["state"]["p50"], f["mean_p50_ms"])):
        add(f"  {name:<34} {p50:7.3f} ms = T {transport:.3f} + {k_of(p50, transport, engine):.2f} x E {engine:.3f}")
    add("")
    add("Targets")
    for x in r["targets"]:
        add(f"  {x['name']:<62} {x['value']:>8.2f} {x['op']} {x['target']:<5g} {x['result']}")
    add("")
    tp = r["throughput"]
    add(f"Throughput: wrk, POST /scenarios/<id>/modify_load_neighbourhood (whole results; x1.05 / x1/1.05 per "
        f"neighbourhood), {max(1, round(cfg['duration']))} s per level, each connection on its own fresh scenario")
    add(f"  {'clients':>7} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  {'server CPU ms/req':>17} "
        f"{'wrk CPUs':>8} {'other CPU':>9}")
    for level in tp["levels"]:
        other = level.get("cpu", {}).get("other_processes_pct")
        add(f"  {level['clients']:>7} {level['requests']:>9} {level['rps']:>9.1f} {level['latency']['p50']:>8.3f} "
            f"{level['latency']['p99']:>8.3f}  {level['server_cpu_ms_per_request']:>17.2f} "
            f"{level['client_cpu_s'] / level['seconds']:>8.2f} {'' if other is None else f'{other:8.0f}%'}")
    add("  other CPU = share of all CPUs used by processes other than this benchmark, wrk and the server")
    add(f"  4 clients / 1 client: {tp['scaling_4']:.2f}; engine floor rate 1 / load floor p50 = "
        f"{tp['floor_rps']:.1f} req/s")
    add("")
    if "scenarios" in r:
        import scenarios_phase

        out.extend(scenarios_phase.report_lines(r["scenarios"], header))
        add("")
    st = r["startup"]
    add("Start-up, Popen -> first 200 from GET /state (polled every 10 ms): "
        + ", ".join(f"server {k} {v:.2f} s" for k, v in st["seconds"].items()))
    m = r["memory"]
    add(f"Memory (server A, /proc/<pid>/status): VmRSS after {m['early_mark']} requests {m['rss_early_kB'] / 1024:.1f} MB, "
        f"after {m['late_mark']} {m['rss_late_kB'] / 1024:.1f} MB ({100 * m['rss_change']:+.1f} %); "
        f"peak VmHWM A {m['peak_kB']['A'] / 1024:.1f} MB, B {m['peak_kB']['B'] / 1024:.1f} MB")
    x = r["cross_check"]
    add(f"Cross-check: server state after the latency phase vs engine floor: total power "
        f"{x['server_kW']:.4f} vs {x['floor_kW']:.4f} kW, losses {x['server_losses_kW']:.4f} vs "
        f"{x['floor_losses_kW']:.4f} kW -> {'match' if x['match'] else 'MISMATCH (ratios compare different work)'}")
    fr = r["floor_rerun"]
    add(f"Floor re-run after the HTTP phases: generator p50 {fr['generator_p50']:.3f} ms, load p50 "
        f"{fr['load_p50']:.3f} ms (drift {100 * fr['drift']:+.1f} % of the mean p50)")
    passed = sum(t["result"] == "PASS" for t in r["targets"])
    add(f"Targets: {passed} PASS, {len(r['targets']) - passed} FAIL | total {r['total_seconds']:.1f} s | "
        f"JSON: {cfg['out']}")
    print("\n".join(out), flush=True)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def k_of(p50: float, transport: float, engine: float) -> float:
    """How many engine floors a p50 is above the transport floor: p50 = T + k E."""
    return (p50 - transport) / engine


def build_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    f, lat, t = r["floor"], r["latency"], r["transport"]
    targets = []

    def target(name: str, value: float, op: str, limit: float) -> None:
        ok = value <= limit if op == "<=" else value >= limit
        targets.append({"name": name, "value": value, "op": op, "target": limit, "result": verdict(ok)})

    target("k of POST /add_generator p50 = T(POST) + k E(generator)",
           k_of(lat["add_generator"]["p50"], t["post"]["p50"], f["generator"]["p50"]), "<=", TARGET_CHANGE_K)
    target("k of POST /modify_load_neighbourhood p50 = T(POST) + k E(load)",
           k_of(lat["modify_load_neighbourhood"]["p50"], t["post"]["p50"], f["load"]["p50"]), "<=", TARGET_CHANGE_K)
    target("k of GET /state p50 = T(GET) + k mean E",
           k_of(lat["state"]["p50"], t["state"]["p50"], f["mean_p50_ms"]), "<=", TARGET_STATE_K)
    target("GET /state 304 p50 / T(empty 304) p50", lat["state_304"]["p50"] / t["empty_304"]["p50"], "<=",
           TARGET_REVALIDATE)
    target("POST /add_generator p99 / its p50", lat["add_generator"]["p99"] / lat["add_generator"]["p50"], "<=",
           TARGET_TAIL)
    target("POST /modify_load_neighbourhood p99 / its p50",
           lat["modify_load_neighbourhood"]["p99"] / lat["modify_load_neighbourhood"]["p50"], "<=", TARGET_TAIL)
    target("req/s, 4 clients on own scenarios / 1 client", r["throughput"]["scaling_4"], ">=", TARGET_SCALING)
    target("start-up s, worst of the server starts", max(r["startup"]["seconds"].values()), "<=", TARGET_STARTUP_S)
    target(f"|RSS after {r['memory']['late_mark']} / after {r['memory']['early_mark']} requests - 1|",
           abs(r["memory"]["rss_change"]), "<=", TARGET_LEAK)
    if "scenarios" in r:
        import scenarios_phase

        for row in scenarios_phase.targets(r["scenarios"]):
            target(*row)
    return targets


# ----------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the API against the opendssdirect engine floor.")
    parser.add_argument("--requests", type=int, default=None,
                        help="measured requests per endpoint in the latency phase (default 1000; 200 with --quick)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per throughput level (default 5; 1 with --quick)")
    parser.add_argument("--leak-requests", type=int, default=None,
                        help="total requests to server A before the second RSS reading (default 10000; 2000 with "
                             "--quick); the first reading is at a tenth of it, capped at 1000")
    parser.add_argument("--many-scenarios", type=int, default=None, metavar="N",
                        help="scenarios created on one server in the scenarios phase (default 1000; 50 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a ~40 s smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.requests = args.requests or (200 if args.quick else 1000)
    args.duration = args.duration or (1.0 if args.quick else 5.0)
    args.leak_requests = args.leak_requests or (2000 if args.quick else 10000)
    args.leak_early = min(1000, args.leak_requests // 10)
    args.many_scenarios = args.many_scenarios or (50 if args.quick else 1000)
    if args.requests < 2 * len(GENERATOR_SITES) or args.leak_early < 1:
        parser.error(f"--requests must be at least {2 * len(GENERATOR_SITES)} and --leak-requests at least 10")
    if not 1 <= args.many_scenarios <= 1000:
        parser.error("--many-scenarios must be from 1 to 1000 (the server runs with --max-scenarios 1100)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    neighbourhoods = neighbourhood_ids()
    gen_warm, gen_ops = warmup_generator_ops(), generator_ops(args.requests)
    load_seq = FactorAlternator(neighbourhoods)
    load_warm = [load_seq.next() for _ in range(WARMUP_ROUNDS)]
    load_ops = [load_seq.next() for _ in range(args.requests)]

    report: dict[str, Any] = {
        "environment": environment(),
        "config": {"requests": args.requests, "duration": args.duration, "leak_requests": args.leak_requests,
                   "leak_early": args.leak_early, "many_scenarios": args.many_scenarios, "quick": args.quick,
                   "out": str(args.out),
                   "generator_sites": GENERATOR_SITES, "warmup_site": WARMUP_SITE, "load_factor": LOAD_FACTOR,
                   "percentiles": "numpy.percentile, linear interpolation", "units": "ms unless named otherwise",
                   "throughput_workload": "POST /scenarios/<fresh id>/modify_load_neighbourhood only"},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg": {"start": loadavg()},
    }
    print(f"benchmark: engine floor ({args.requests} generator + {args.requests} load steps) ...", file=sys.stderr,
          flush=True)
    meter = CpuMeter()
    report["floor"] = run_floor(gen_warm, load_warm, gen_ops, load_ops)
    report["floor"]["cpu"] = meter.stop()

    servers: list[Server] = []
    try:
        print("benchmark: server A: start-up, latency, leak check ...", file=sys.stderr, flush=True)
        a = Server("A")
        servers.append(a)
        a.mark_rss_at(args.leak_early, args.leak_requests)
        a.start()
        meter = CpuMeter(a.process.pid)
        report["latency"], post_body = latency_phase(a, gen_warm, load_warm, gen_ops, load_ops)
        report["latency"]["cpu"] = meter.stop()
        floor_totals, summary = report["floor"]["totals"], report["latency"]["final_power_summary"]
        cross = {"server_kW": summary["total_circuit_power_kW"], "floor_kW": floor_totals["total_circuit_power_kW"],
                 "server_losses_kW": summary["total_losses_kW"], "floor_losses_kW": floor_totals["total_losses_kW"]}
        cross["match"] = bool(abs(cross["server_kW"] - cross["floor_kW"]) <= 0.01
                              and abs(cross["server_losses_kW"] - cross["floor_losses_kW"]) <= 0.01)
        report["cross_check"] = cross
        report["leak_phase"] = leak_phase(a, args.leak_requests, neighbourhoods)
        stop_a = a.stop()

        print("benchmark: transport floor (waitress serving one fixed response) ...", file=sys.stderr, flush=True)
        report["transport"] = transport_phase(post_body, load_warm, load_ops, args.duration, neighbourhoods)

        print(f"benchmark: server B: throughput with 1, 2, 4, 8 clients, each on its own scenario "
              f"({args.duration:g} s per level) ...", file=sys.stderr, flush=True)
        b = Server("B")
        servers.append(b)
        b.start()
        report["throughput"] = throughput_phase(b, args.duration, neighbourhoods)
        report["throughput"]["floor_rps"] = 1000.0 / report["floor"]["load"]["p50"]
        stop_b = b.stop()
    except BaseException:
        for server in servers:
            try:
                if server.process is not None and server.process.poll() is None:
                    server.stop()
                print(f"--- server {server.label} stderr (last lines) ---\n{server.tail()}", file=sys.stderr)
            finally:
                server.cleanup()
        raise

    for server, info in zip(servers, (stop_a, stop_b)):
        report.setdefault("servers", {})[server.label] = {"port": server.port, "requests": server.requests, **info}
        if info.get("wrote_into_cwd"):
            print(f"WARNING: server {server.label} wrote into its working directory: {info['wrote_into_cwd']}",
                  file=sys.stderr)
        server.cleanup()
    report["startup"] = {"seconds": {s.label: s.startup_s for s in servers},
                         "method": "Popen to the first HTTP 200 from GET /state, polled every 10 ms"}
    early, late = a.rss_marks.get(args.leak_early), a.rss_marks.get(args.leak_requests)
    if early is None or late is None:
        raise BenchError(f"RSS marks missing: {a.rss_marks}")
    report["memory"] = {
        "early_mark": args.leak_early, "late_mark": args.leak_requests,
        "rss_early_kB": early["VmRSS"], "rss_late_kB": late["VmRSS"],
        "rss_change": late["VmRSS"] / early["VmRSS"] - 1,
        "peak_kB": {label: (info.get("final_memory_kB") or {}).get("VmHWM", 0)
                    for label, info in (("A", stop_a), ("B", stop_b))},
        "marks": {str(k): v for k, v in sorted(a.rss_marks.items())},
    }

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scenarios_phase  # noqa: E402  (after this module is complete: it imports it as `bench`)

    report["scenarios"], stops = scenarios_phase.run(args, neighbourhoods)
    report["servers"].update(stops)

    print("benchmark: engine floor re-run ...", file=sys.stderr, flush=True)
    rerun = run_floor(gen_warm, load_warm, gen_ops, load_ops)
    report["floor_rerun"] = {"generator_p50": rerun["generator"]["p50"], "load_p50": rerun["load"]["p50"],
                             "drift": rerun["mean_p50_ms"] / report["floor"]["mean_p50_ms"] - 1}
    report["loadavg"]["end"] = loadavg()
    report["total_seconds"] = time.perf_counter() - began
    report["targets"] = build_targets(report)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
                                      default=str))
    print_report(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"\nBENCHMARK FAILED: {error}", file=sys.stderr)
        sys.exit(1)
