#!/usr/bin/env python3
"""Every request path against its engine floor, on feeders of growing size, measured in one run.

    python bench/scale.py [--quick] [--feeders NAME …] [--out FILE] [--write-docs-figures [PATH]]

Feeders: IEEE 13, IEEE 34, our IEEE 123 (the server's default), EPRI ckt5, the IEEE 8500-node feeder (public decks
read from ../shared/reference/feeders, as the tests read them) and synthetic radial feeders of about 5,000, 20,000
and 52,000 nodes written by tests/support/synthetic_feeder.py into a temporary directory. `--quick`: IEEE 13 and a
300-bus synthetic feeder, a few samples each (the test's run).

For each feeder one server (`python api.py [--feeder PATH] --engine-hosts 1 --state FILE --max-live-scenarios 2`,
from an empty directory) and, in this process, the engine floor (bench/scale_floor.py: opendssdirect alone):
  1. start-up: Popen -> first 200 from GET /state (bench.py's), against the floor's compile + first solve;
  2. the answer's bytes, plain and gzip (Accept-Encoding: gzip; Flask-Compress), of GET /state in the base case and
     of its first change (neighbourhood 1 x 1.05, sent with an Idempotency-Key and replayed for the gzip bytes);
  3. rounds on the default scenario, each path timed on the server then its floor in turn: a new generator, that
     generator's new kW, a neighbourhood change (x1.05 and x1/1.05 in turn; all full answers), a dry run of one,
     GET /state, GET /buses;
  4. undo on a scenario of 4 changes (a neighbourhood change, untimed, then POST …/undo: a rebuild of the 4), and a
     rebuild from the journal: with one engine beside the default scenario's, two such scenarios take turns and
     each first GET …/state of the resting one rebuilds it. The floor of both: a fresh compile, the 4 ops each
     solved, the reads;
  5. the transport floor T of each path: waitress set up as api.py sets it up (bench/transport_floor.py's app)
     answering that path's last answer, canned, to the same requests from the same client.
report.py judges: each path's p50 <= 1.5 E + T, start-up <= 2 (compile + first solve) + the server's fixed start
(IEEE 13's start-up minus its engine part), and the log-log slope of ours against nodes no steeper than the floor's.
Every answer is checked as in bench.py; a wrong one stops the run (exit 1).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_floor import REPO, BenchError, stats_ms  # noqa: E402  (puts tests/ on sys.path)
from harness import Api, Client, Server, check, free_port, run_main  # noqa: E402
from machine import CpuMeter, environment  # noqa: E402
from report import print_scale, scale_judged  # noqa: E402
from scale_floor import DeckFloor, Op  # noqa: E402
from support.synthetic_feeder import write_synthetic_feeder  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "scale.json"
DEFAULT_FIGURES = REPO / "docs" / "figures" / "scale.json"
DEFAULT_PLOT = REPO / "docs" / "figures" / "scale.png"
SHARED_FEEDERS = REPO.parent / "shared" / "reference" / "feeders"
OUR_MASTER = REPO / "Test_Systems" / "IEEE_123_Bus-G" / "Master.dss"
#: name -> (label, master file (None: our deck, the server's default), synthetic buses (None: a public deck)).
FEEDERS: dict[str, tuple[str, Path | None, int | None]] = {
    "ieee13": ("IEEE 13", SHARED_FEEDERS / "IEEETestCases/13Bus/IEEE13Nodeckt.dss", None),
    "ieee34": ("IEEE 34", SHARED_FEEDERS / "IEEETestCases/34Bus/ieee34Mod1.dss", None),
    "ieee123": ("IEEE 123 (ours)", None, None),
    "ckt5": ("EPRI ckt5", SHARED_FEEDERS / "EPRITestCircuits/ckt5/Master_ckt5.dss", None),
    "ieee8500": ("IEEE 8500-node", SHARED_FEEDERS / "IEEETestCases/8500-Node/Master.dss", None),
    "syn5k": ("synthetic 5k", None, 5_000),
    "syn20k": ("synthetic 20k", None, 20_000),
    "syn50k": ("synthetic 52k", None, 52_000),
    "syn300": ("synthetic 300", None, 300),
}
FULL = ["ieee13", "ieee34", "ieee123", "ckt5", "ieee8500", "syn5k", "syn20k", "syn50k"]
QUICK = ["ieee13", "syn300"]
#: The paths, in the order a round sends them; undo and rebuild are timed after the rounds.
ROUND_PATHS = ("new_generator", "generator_update", "neighbourhood", "dry_run", "state", "buses")
PATHS = ("startup", *ROUND_PATHS, "undo", "rebuild")
FACTOR = 1.05
SLOW_COMPILE_S = 1.0  # a feeder whose compile + first solve takes longer gets one start-up, undo and rebuild sample
#: Starts and rebuilds of the 52,000-node feeder compile it (OpenDSS alone: 16-23 s on this machine, more when busy).
START_TIMEOUT_S = REQUEST_TIMEOUT_S = 300.0


def rounds_for(nodes: int, quick: bool) -> int:
    """Rounds of the timed paths: fewer on big feeders, so the whole run stays near 10 minutes on 2 cores."""
    if quick:
        return 2
    return 10 if nodes < 1_000 else 6 if nodes < 10_000 else 3 if nodes < 30_000 else 2


# ----------------------------------------------------------------------------------------------------- feeders
def master_of(name: str, decks: Path) -> tuple[Path, tuple[str, ...]]:
    """The deck's master file (a synthetic one written under `decks`) and the server's --feeder arguments."""
    label, master, buses = FEEDERS[name]
    if buses is not None:
        master = write_synthetic_feeder(decks / name, buses).master
    if master is None:
        return OUR_MASTER, ()
    return master, ("--feeder", str(master))


def generator_sites(buses: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(bus, phases) sites for new generators at medium voltage (above 1 kV line to neutral), the source bus left
    out: each 3-phase bus gives a 3-phase and a 1-phase site, spread over the feeder's bus order."""
    sites = []
    for bus in buses[1:]:
        if bus["kv_base_ln"] > 1.0:
            if {1, 2, 3} <= set(bus["nodes"]):
                sites.append((bus["name"], 3))
            sites.append((bus["name"], 1))
    step = max(1, len(sites) // 64)
    return sites[::step] + [site for k, site in enumerate(sites) if k % step]


# ----------------------------------------------------------------------------------------------------- the server
class Workload:
    """The default scenario's changes, sent to the server and applied to the floor alike."""

    def __init__(self, api: Api, floor: DeckFloor, sites: list[tuple[str, int]], neighbourhoods: list[int]) -> None:
        self.api, self.floor, self.sites, self.neighbourhoods = api, floor, sites, neighbourhoods
        self.created: set[str] = set()  # the floor's generators
        self.accepted: list[tuple[str, int]] = []  # the sites the server took
        self.site_turn = self.nb_turn = 0
        self.open: dict[int, bool] = {}
        self.current: tuple[str, int, float] | None = None
        self.bodies: dict[str, bytes] = {}   # each path's last answer (the transport floor's canned bytes)
        self.requests: dict[str, tuple[str, str, bytes | None]] = {}

    def send(self, path_key: str, method: str, path: str, op: Op | None = None, headers: dict[str, str] | None = None
             ) -> tuple[dict[str, Any], int]:
        body = None if op is None else orjson.dumps({k: v for k, v in op.items() if k != "op"})
        status, ctype, data, ns = self.api.client.call(method, path, body, headers)
        doc = check(status, ctype, data, f"{method} {path} {body!r}")
        self.bodies[path_key], self.requests[path_key] = data, (method, path, body)
        return doc, ns

    def new_generator(self) -> tuple[int, int]:
        """A generator at the next site the server accepts (a refused site is skipped, on both sides)."""
        while self.site_turn < len(self.sites):
            bus, phases = self.sites[self.site_turn]
            self.site_turn += 1
            kw = 60.0 if phases == 3 else 15.0
            op = {"op": "add_generator", "bus_name": bus, "phases": phases, "kw": kw}
            try:
                doc, ns = self.send("new_generator", "POST", "/add_generator", op)
            except BenchError as error:
                if "HTTP 4" in str(error):
                    continue
                raise
            if doc["action"].get("created") is not True:
                raise BenchError(f"POST /add_generator {op}: not created: {doc['action']}")
            self.current = (bus, phases, kw)
            self.accepted.append((bus, phases))
            return ns, self.floor.timed_change(op, self.created)
        raise BenchError("no generator site left on this feeder")

    def generator_update(self) -> tuple[int, int]:
        assert self.current is not None
        bus, phases, kw = self.current
        op = {"op": "add_generator", "bus_name": bus, "phases": phases, "kw": kw + 5.0}
        doc, ns = self.send("generator_update", "POST", "/add_generator", op)
        if doc["action"].get("created") is not False or doc["action"].get("kw") != kw + 5.0:
            raise BenchError(f"POST /add_generator {op}: not an update: {doc['action']}")
        return ns, self.floor.timed_change(op, self.created)

    def next_factor(self) -> tuple[int, float]:
        nb = self.neighbourhoods[self.nb_turn % len(self.neighbourhoods)]
        self.nb_turn += 1
        factor = 1 / FACTOR if self.open.get(nb) else FACTOR
        self.open[nb] = not self.open.get(nb)
        return nb, factor

    def neighbourhood(self) -> tuple[int, int]:
        nb, factor = self.next_factor()
        op = {"op": "modify_load_neighbourhood", "neighbourhood": nb, "factor": factor}
        doc, ns = self.send("neighbourhood", "POST", "/modify_load_neighbourhood", op)
        if doc["action"].get("neighbourhood") != nb or "results" not in doc:
            raise BenchError(f"POST /modify_load_neighbourhood {op}: unexpected action {doc['action']}")
        return ns, self.floor.timed_change(op, self.created)

    def dry_run(self) -> tuple[int, int]:
        nb = self.neighbourhoods[self.nb_turn % len(self.neighbourhoods)]
        op = {"op": "modify_load_neighbourhood", "neighbourhood": nb, "factor": FACTOR}
        doc, ns = self.send("dry_run", "POST", "/modify_load_neighbourhood?dry_run=true", op)
        if doc["action"].get("dry_run") is not True or "results" not in doc:
            raise BenchError(f"POST /modify_load_neighbourhood?dry_run=true: not a dry run: {doc['action']}")
        return ns, self.floor.timed_dry_run(nb, FACTOR)

    def state(self) -> tuple[int, int]:
        doc, ns = self.send("state", "GET", "/state")
        if doc["results"]["power_summary"]["converged"] is not True:
            raise BenchError("GET /state: not converged")
        return ns, self.floor.timed_read()

    def buses(self) -> tuple[int, int]:
        doc, ns = self.send("buses", "GET", "/buses")
        if not doc.get("buses"):
            raise BenchError("GET /buses: no buses")
        return ns, self.floor.timed_read()

    def round(self) -> dict[str, tuple[int, int]]:
        return {key: getattr(self, key)() for key in ROUND_PATHS}


def answer_bytes(api: Api, neighbourhood: int) -> dict[str, dict[str, int]]:
    """Bytes of GET /state (base case) and of the first change (neighbourhood x1.05), plain and gzip. The change is
    sent once with an Idempotency-Key and replayed with Accept-Encoding: gzip: the same answer, compressed."""
    out: dict[str, dict[str, int]] = {"state": {}, "change": {}}
    client = api.client
    for encoding, headers in (("plain", {}), ("gzip", {"Accept-Encoding": "gzip"})):
        status, ctype, data, _ = client.call("GET", "/state", headers=headers)
        out["state"][encoding] = len(data)
        check(status, ctype, gzip.decompress(data) if encoding == "gzip" else data, f"GET /state ({encoding})")
        if encoding == "gzip" and client.last_headers.get("Content-Encoding") != "gzip":
            raise BenchError("GET /state with Accept-Encoding: gzip was not compressed")
    body = orjson.dumps({"neighbourhood": neighbourhood, "factor": FACTOR})
    plain = b""
    for encoding, extra in (("plain", {}), ("gzip", {"Accept-Encoding": "gzip"})):
        headers = {"Content-Type": "application/json", "Idempotency-Key": "scale-first-change", **extra}
        status, ctype, data, _ = client.call("POST", "/modify_load_neighbourhood", body, headers)
        out["change"][encoding] = len(data)
        decoded = gzip.decompress(data) if encoding == "gzip" else data
        check(status, ctype, decoded, f"POST /modify_load_neighbourhood ({encoding})")
        if encoding == "gzip" and decoded != plain:
            raise BenchError("the replayed change answer, decompressed, is not the answer first sent")
        plain = data
    return out


def scenario_ops(sites: list[tuple[str, int]], neighbourhoods: list[int], k: int) -> list[Op]:
    """A scenario's 4 changes: two new generators and two neighbourhoods x1.05 (k shifts them)."""
    gens = [{"op": "add_generator", "bus_name": bus, "phases": phases, "kw": 40.0 + 10 * k}
            for bus, phases in (sites[(2 * k) % len(sites)], sites[(2 * k + 1) % len(sites)])]
    nbs = [{"op": "modify_load_neighbourhood", "neighbourhood": neighbourhoods[(k + j) % len(neighbourhoods)],
            "factor": FACTOR} for j in range(2)]
    return [gens[0], nbs[0], gens[1], nbs[1]]


def scenario_with(api: Api, name: str, ops: list[Op]) -> str:
    """A scenario from the base case with these changes (lean answers)."""
    scenario_id = api.client.create_scenario(name, query="?sections=power_summary")[0]
    for op in ops:
        route = "/add_generator" if op["op"] == "add_generator" else "/modify_load_neighbourhood"
        api.call("POST", f"/scenarios/{scenario_id}{route}?sections=power_summary",
                 {k: v for k, v in op.items() if k != "op"})
    return scenario_id


def journal_paths(api: Api, floor: DeckFloor, work: Workload, samples: int, accepted_sites: list[tuple[str, int]],
                  neighbourhoods: list[int]) -> dict[str, dict[str, list[int]]]:
    """Undo (a rebuild of 4 changes after one more) and a rebuild from the journal (a resting scenario used again),
    each against the floor's fresh compile + the 4 ops + the reads."""
    ops = [scenario_ops(accepted_sites, neighbourhoods, k) for k in range(2)]
    first = scenario_with(api, "scale-undo", ops[0])
    out: dict[str, dict[str, list[int]]] = {"undo": {"ours": [], "engine": []}, "rebuild": {"ours": [], "engine": []}}
    nb = neighbourhoods[-1]
    for _ in range(samples):
        api.call("POST", f"/scenarios/{first}/modify_load_neighbourhood?sections=power_summary",
                 {"neighbourhood": nb, "factor": FACTOR})
        doc, ns = work.send("undo", "POST", f"/scenarios/{first}/undo", {"op": "undo"})
        if doc["action"].get("type") != "undo":
            raise BenchError(f"POST /scenarios/{first}/undo: {doc['action']}")
        out["undo"]["ours"].append(ns)
        out["undo"]["engine"].append(floor.timed_rebuild(ops[0]))
    second = scenario_with(api, "scale-rebuild", ops[1])  # takes the first's engine: the first rests
    ids = {first: ops[0], second: ops[1]}
    turn = [first, second]
    for k in range(samples):
        scenario_id = turn[k % 2]
        described = {s["id"]: s for s in api.call("GET", "/scenarios")[1]["scenarios"]}[scenario_id]
        if described["live"] is not False:
            raise BenchError(f"scenario {scenario_id} should be resting before its rebuild: {described}")
        doc, ns = work.send("rebuild", "GET", f"/scenarios/{scenario_id}/state")
        if doc["results"]["power_summary"]["converged"] is not True:
            raise BenchError(f"GET /scenarios/{scenario_id}/state after a rebuild: not converged")
        out["rebuild"]["ours"].append(ns)
        out["rebuild"]["engine"].append(floor.timed_rebuild(ids[scenario_id]))
    return out


def startup_samples(args: tuple[str, ...], extra: int) -> list[float]:
    """`extra` more server starts (Popen -> first 200), each stopped straight away."""
    out = []
    for k in range(extra):
        server = Server(f"scale-start-{k}", extra_args=("--no-access-log", *args))
        try:
            server.start()
            out.append(server.startup_s)
        finally:
            server.stop()
            server.cleanup()
    return out


# ----------------------------------------------------------------------------------------------------- transport
def transport_app(bodies: dict[str, bytes]) -> Callable[[dict[str, Any], Callable], Iterable[bytes]]:
    """bench/transport_floor.py's app for each path's canned answer, chosen by the query `body=<path>`."""
    from transport_floor import fixed_body_app

    apps = {key: fixed_body_app(body) for key, body in bodies.items()}

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        key = environ.get("QUERY_STRING", "").partition("body=")[2].partition("&")[0]
        return apps[key](environ, start_response)

    return app


def serve_transport(port: int, folder: Path) -> None:
    """The transport floor's server (waitress as api.py sets it up), each path's body from folder/<path>.json."""
    import waitress

    sys.path.insert(0, str(REPO))  # api.py, before tests/api (a folder) that engine_floor puts on the path
    from api import parse_args

    bodies = {path.stem: path.read_bytes() for path in folder.glob("*.json")}
    server = waitress.create_server(transport_app(bodies), host="127.0.0.1", port=port,
                                    threads=parse_args([]).threads, ident="transport-floor",
                                    clear_untrusted_proxy_headers=True)
    print(f"transport floor listening on http://127.0.0.1:{port}/", flush=True)
    server.run()


class TransportFloor:
    """That server in its own process: what Client needs of a Server."""

    body_file = Path("canned")

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="scale-transport-"))
        for key, body in bodies.items():
            (self.folder / f"{key}.json").write_bytes(body)
        self.port, self.requests = free_port(), 0
        self.process = subprocess.Popen([sys.executable, __file__, "--serve-transport", str(self.port),
                                         str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.perf_counter() + 30
        while True:
            try:
                with socket_to(self.port):
                    break
            except OSError:
                if self.process.poll() is not None or time.perf_counter() > deadline:
                    raise BenchError(f"the transport floor did not start: {self.process.stderr.read()[-800:]!r}")
                time.sleep(0.02)

    def count(self, n: int = 1) -> None:
        self.requests += n

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def socket_to(port: int) -> Any:
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=1)


def transport(work: Workload, samples: int) -> dict[str, list[int]]:
    """Each path's request sent to the transport floor answering that path's last answer, `samples` times."""
    floor = TransportFloor(work.bodies)
    client = Client(floor)  # type: ignore[arg-type]
    try:
        out: dict[str, list[int]] = {}
        for key, (method, path, body) in work.requests.items():
            query = ("&" if "?" in path else "?") + f"body={key}"
            times = []
            for _ in range(samples + 1):  # the first untimed
                status, ctype, data, ns = client.call(method, path + query, body)
                if status != 200 or len(data) != len(work.bodies[key]):
                    raise BenchError(f"transport floor {key}: HTTP {status}, {len(data)} bytes")
                times.append(ns)
            out[key] = times[1:]
        return out
    finally:
        client.close()
        floor.stop()


# ----------------------------------------------------------------------------------------------------- a feeder
def measure(name: str, decks: Path, quick: bool) -> dict[str, Any]:
    master, feeder_args = master_of(name, decks)
    state_dir = Path(tempfile.mkdtemp(prefix="scale-state-"))
    meter = CpuMeter()
    try:
        args = ("--state", str(state_dir / "state.sqlite"), "--max-live-scenarios", "2", *feeder_args)
        with Api(f"scale-{name}", *args) as api:
            api.client.conn.timeout = REQUEST_TIMEOUT_S  # before its first connect
            startups = [api.server.startup_s]
            buses = api.call("GET", "/buses")[1]["buses"]
            nodes = sum(len(bus["nodes"]) for bus in buses)
            rows = api.call("GET", "/neighbourhoods")[1]["neighbourhoods"]
            neighbourhoods = [row["id"] for row in rows if row["loads"]]
            sizes = answer_bytes(api, neighbourhoods[0])
            floor = DeckFloor(master, {row["id"]: row["loads"] for row in rows})
            floor.scale(neighbourhoods[0], FACTOR)  # the first change, as answer_bytes made it
            floor.solve()
            slow = floor.startup_ns / 1e9 > SLOW_COMPILE_S
            engine_startups = [floor.startup_ns] + [floor.timed_startup() for _ in range(0 if slow else 2)]
            sites = generator_sites(buses)
            rounds = rounds_for(nodes, quick)
            work = Workload(api, floor, sites, neighbourhoods)
            work.round()  # warm-up, untimed
            samples: dict[str, dict[str, list[int]]] = {key: {"ours": [], "engine": []} for key in ROUND_PATHS}
            for _ in range(rounds):
                for key, (ours, engine) in work.round().items():
                    samples[key]["ours"].append(ours)
                    samples[key]["engine"].append(engine)
            journal_samples = 1 if slow else 2 if quick else 3
            samples.update(journal_paths(api, floor, work, journal_samples, work.accepted, neighbourhoods))
            del floor
        startups += startup_samples(feeder_args, 0 if slow else 1)
        t_samples = transport(work, max(rounds, 5))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    paths: dict[str, Any] = {"startup": {"ours": stats_ms([round(s * 1e9) for s in startups]),
                                         "engine": stats_ms(engine_startups)}}
    for key, got in samples.items():
        paths[key] = {"ours": stats_ms(got["ours"]), "engine": stats_ms(got["engine"]),
                      "transport": stats_ms(t_samples[key]), "answer_bytes": len(work.bodies[key])}
    return {"name": name, "label": FEEDERS[name][0], "buses": len(buses), "nodes": nodes, "rounds": rounds,
            "bytes": sizes, "paths": paths, "cpu": meter.stop()}


# ----------------------------------------------------------------------------------------------------- output
def plot(report: dict[str, Any], out: Path) -> None:
    """Time against nodes, log-log: ours (solid) beside the floor E + T (dashed), one colour per path."""
    import matplotlib

    from docs_figures import SCALE_LABELS

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feeders = sorted(report["feeders"], key=lambda f: f["nodes"])
    nodes = [f["nodes"] for f in feeders]
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    for k, path in enumerate(PATHS):
        colour = plt.cm.tab10(k % 10)
        ours = [f["paths"][path]["ours"]["p50"] for f in feeders]
        floor = [f["judged"][path]["floor_ms"] for f in feeders]
        ax.plot(nodes, ours, "-o", color=colour, label=SCALE_LABELS[path], markersize=4)
        ax.plot(nodes, floor, "--", color=colour, alpha=0.7, linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes (OpenDSS)")
    ax.set_ylabel("p50, ms")
    ax.set_title("Each request path (solid) beside its floor E + T (dashed; start-up: compile + first solve)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Every request path against its engine floor, on feeders of "
                                                 "growing size.")
    parser.add_argument("--quick", action="store_true", help="IEEE 13 and a 300-bus synthetic feeder, few samples")
    parser.add_argument("--feeders", nargs="+", choices=sorted(FEEDERS), default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--write-docs-figures", nargs="?", type=Path, const=DEFAULT_FIGURES, default=None)
    parser.add_argument("--plot", type=Path, default=None,
                        help=f"the log-log plot (default {DEFAULT_PLOT.relative_to(REPO)} with --write-docs-figures)")
    parser.add_argument("--serve-transport", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_transport:
        serve_transport(int(args.serve_transport[0]), Path(args.serve_transport[1]))
        return 0
    names = args.feeders or (QUICK if args.quick else FULL)
    Server.start_timeout_s = START_TIMEOUT_S
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": environment(), "quick": args.quick, "feeders": []}
    decks = Path(tempfile.mkdtemp(prefix="scale-decks-"))
    try:
        for name in names:
            print(f"scale: {name} ...", flush=True)
            report["feeders"].append(measure(name, decks, args.quick))
    finally:
        shutil.rmtree(decks, ignore_errors=True)
    report["seconds"] = time.perf_counter() - started
    scale_judged(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print_scale(report)
    if args.write_docs_figures:
        from docs_figures import write_scale

        write_scale(args.write_docs_figures, report)
    plot_to = args.plot or (DEFAULT_PLOT if args.write_docs_figures else None)
    if plot_to:
        plot(report, plot_to)
    return 0


if __name__ == "__main__":
    run_main(main)
