"""The house rules that keep the code walkable, checked on the repository itself: no source file over 600 lines, no
import cycle among our Python modules, and the dashboard's ES modules importing one way, each under 400 lines.

The import graph is read with `ast` (every import statement, those inside functions too: a lazy import still ties
two modules together) and resolved the way each part of the repository runs: the top-level modules and the packages
(engine/, web/, routes/, scenarios/, studies/) from the repository root, bench/ from bench/ (its scripts put it on
sys.path), and tests/ as pytest runs them: a test folder that is not a package (tests/engine/, tests/api/, ...) first,
as pytest's prepend import mode puts it on sys.path, then the repository root and tests/ (pytest.ini's `pythonpath`,
so `support.*` imports from anywhere); tests/dashboard/ is a package, so its own folder is not searched.
"""

from __future__ import annotations

import ast
import graphlib
import re
import subprocess
from pathlib import Path

from support.paths import REPO

MAX_LINES = 600
MAX_MODULE_LINES = 400  # the dashboard's ES modules
SOURCE_SUFFIXES = {".py", ".js", ".css", ".html"}
#: Data and generated files: the feeder model and its shapes, the reference figures the tests read.
NOT_SOURCE = ("Test_Systems/", "tests/data/")
PYTHON_DIRS = ("", "engine", "web", "routes", "scenarios", "studies", "bench", "docs/figures", "tests", "tests/support", "tests/engine",
               "tests/api", "tests/server", "tests/property", "tests/dashboard", "tests/docs", "tests/bench")
STATIC = REPO / "static"


def tracked_files() -> list[Path]:
    """The repository's files as git tracks them (not caches, virtualenvs or test artifacts)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in listed.decode().split("\0") if name]


def source_files() -> list[Path]:
    return [path for path in tracked_files() if path.suffix in SOURCE_SUFFIXES and path.exists()
            and not path.relative_to(REPO).as_posix().startswith(NOT_SOURCE)]


def python_modules() -> list[Path]:
    return sorted(path for folder in PYTHON_DIRS for path in (REPO / folder).glob("*.py"))


def search_roots(path: Path) -> list[Path]:
    """Where an absolute import in `path` is looked up, first to last."""
    folder = path.parent.relative_to(REPO).as_posix()
    if folder in ("bench", "docs/figures"):  # scripts: their own folder is on sys.path first
        return [path.parent, REPO]
    if folder.startswith("tests"):
        own = [] if (path.parent / "__init__.py").exists() else [path.parent]
        return [*own, REPO, REPO / "tests"]
    return [REPO]


def module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path, roots_of=search_roots) -> set[Path]:
    """Our own modules that `path` imports (a `from package import name` counts name's module when it is one)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            wanted = [(alias.name, None) for alias in node.names]
            roots = roots_of(path)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package that holds `path`, `level - 1` folders up
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                roots = [base]
                wanted = [(node.module or "", alias.name) for alias in node.names]
            else:
                roots = roots_of(path)
                wanted = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in wanted:
            for root in roots:
                target = (module_file(root, f"{module}.{name}" if module else name) if name else None) \
                    or (module_file(root, module) if module else None)
                if target is not None:
                    if target != path:
                        found.add(target)
                    break
    return found


def import_graph() -> dict[Path, set[Path]]:
    return {path: imported_files(path) for path in python_modules()}


def cycles(graph: dict[Path, set[Path]], base: Path = REPO) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as paths from `base`."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    groups: list[list[str]] = []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member.relative_to(base).as_posix())
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def js_imports(path: Path) -> set[str]:
    return set(re.findall(r"""^\s*import\b[^;]*?\bfrom\s+["']\./([\w-]+\.js)["']""", path.read_text(encoding="utf-8"),
                          re.MULTILINE))


# ---------------------------------------------------------------------------- tests
def test_no_source_file_is_over_600_lines() -> None:
    files = source_files()
    assert len([f for f in files if f.suffix == ".py"]) > 50 and any(f.suffix == ".js" for f in files)
    long = {f.relative_to(REPO).as_posix(): n for f in files
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"over {MAX_LINES} lines: split them by job"


def test_no_import_cycle_among_our_python_modules() -> None:
    graph = import_graph()
    edges = sum(len(targets) for targets in graph.values())
    assert len(graph) > 50 and edges > 100, "the graph must see our imports"
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_and_resolves_each_kind_of_import(tmp_path: Path) -> None:
    """The checker itself, so that an empty answer above means something."""
    a, b, c = REPO / "a.py", REPO / "b.py", REPO / "c.py"
    assert cycles({a: {b}, b: {c}, c: {a}}) == [["a.py", "b.py", "c.py"]]
    assert cycles({a: {b}, b: {c}, c: set()}) == []
    graph = import_graph()
    rel = {path.relative_to(REPO).as_posix(): {t.relative_to(REPO).as_posix() for t in targets}
           for path, targets in graph.items()}
    assert "routes/web.py" in rel["api.py"]                     # from routes.web import …
    assert "engine/circuit.py" in rel["api.py"]                 # from engine.circuit import …
    assert "engine/circuit.py" in rel["simulation_core.py"]     # the facade re-exports the class
    assert "engine_floor.py" not in rel["bench/harness.py"]     # bench/ resolves from bench/ first…
    assert "bench/engine_floor.py" in rel["bench/harness.py"]
    assert "tests/support/server.py" in rel["tests/server/test_http_protocol.py"]  # …tests/ from tests/ too…
    assert "tests/support/paths.py" in rel["tests/support/server.py"]
    assert "api.py" in rel["tests/api/test_scenarios.py"]       # …after the root: tests/api/ does not shadow api.py
    assert "engine/results.py" in rel["tests/engine/test_json_tables.py"]  # nor tests/engine/ the engine package
    assert "tests/dashboard/helpers.py" in rel["tests/dashboard/conftest.py"]  # from .helpers import …
    # Every folder holding Python is in the graph (one left out of PYTHON_DIRS would escape the check unseen).
    folders = {path.parent.relative_to(REPO).as_posix() for path in tracked_files() if path.suffix == ".py"}
    assert {"" if folder == "." else folder for folder in folders} <= set(PYTHON_DIRS)
    # A cycle through a lazy import (one inside a function) is still found.
    (tmp_path / "x.py").write_text("import y\n")
    (tmp_path / "y.py").write_text("def f():\n    from x import g\n")
    lazy = {path: imported_files(path, lambda _: [tmp_path]) for path in tmp_path.glob("*.py")}
    assert cycles(lazy, tmp_path) == [["x.py", "y.py"]]


def test_the_dashboard_modules_import_one_way_and_stay_small() -> None:
    modules = {path.name: js_imports(path) for path in STATIC.glob("*.js")}
    assert "main.js" in modules and len(modules) >= 8
    for name, imports in modules.items():
        assert imports <= set(modules), (name, imports - set(modules))
    order = list(graphlib.TopologicalSorter(modules).static_order())  # raises CycleError on a cycle
    assert order[-1] == "main.js"
    # Views -> store -> api: the API module knows nothing of the page; the store knows nothing of the views.
    assert modules["api.js"] == set()
    assert modules["store.js"] <= {"api.js"}
    assert not any("main.js" in imports for imports in modules.values())
    # Every module is part of the page: reachable from main.js.
    reached, todo = {"main.js"}, ["main.js"]
    while todo:
        for other in modules[todo.pop()] - reached:
            reached.add(other)
            todo.append(other)
    assert reached == set(modules)
    long = {name: n for name in modules if (n := len((STATIC / name).read_text(encoding="utf-8").splitlines()))
            > MAX_MODULE_LINES}
    assert long == {}
