"""The import structure of ``mzpdf/``: strictly layered, no circle.

Oracle: the graph built from every import statement of every module, at
module level and inside functions alike (``import a.b``, ``from .x import y``,
``from . import submodule``), read with :mod:`ast` without importing anything.
An edge goes to the module an import names (to ``pkg.y`` when ``y`` is a
submodule of ``pkg``). Tarjan's algorithm finds its strongly connected
components; any with more than one module is a circle, reported with its
edges so the failure says where to cut.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mzpdf"


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path = PACKAGE, packages: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source.

    With ``packages`` an import ``from pkg import name`` is also an edge to
    ``pkg`` itself when ``name`` is a submodule (as a cruder reading of the
    statement would have it)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                           for alias in node.names]
                if packages:
                    targets.append(source)
            for target in targets:
                while target and target not in modules:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions():
    """The oracle itself: an import inside a function is an edge (cli imports
    the pipeline inside its command functions)."""
    graph = import_graph()
    assert "mzpdf.pipeline" in graph["mzpdf.cli"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("packages", [False, True], ids=["modules", "with-packages"])
def test_no_import_circle_in_the_package(packages):
    graph = import_graph(packages=packages)
    report = []
    for component in circles(graph):
        members = set(component)
        report.append(f"{len(component)} modules: " + "; ".join(
            f"{m} -> {sorted(graph[m] & members)}" for m in component))
    assert not report, "import circles:\n" + "\n".join(report)


# The layers of docs/architecture.md, bottom up: a module imports only from
# its own layer (no circle: test above) and the layers below it.
LAYERS = [
    {"errors", "_numba", "_special", "_validate", "_registry", "_lazy", "_threads", "progress", "memory", "options",
     "diagnostics",
     "__init__"},
    {"discretization", "network", "observables", "laws", "tails"},
    {"results"},
    {"mz", "theory"},
    {"solvers"},
    {"io", "pipeline"},
    {"plot", "sweep"},
    {"cli", "__main__"},
]


def _entry(module: str) -> str:
    """The top-level entry of ``mzpdf`` a module belongs to (``solvers``, ``cli``, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_import_goes_down_the_layers():
    rank = {entry: k for k, layer in enumerate(LAYERS) for entry in layer}
    graph = import_graph()
    assert {_entry(m) for m in graph} <= set(rank), {_entry(m) for m in graph} - set(rank)
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if rank[_entry(b)] > rank[_entry(a)])
    assert not upward, upward


def test_no_method_numerics_beside_the_solvers():
    """Every method's numerics live in its folder under solvers/ (one
    folder a method), the shared mathematics in discretization/."""
    top = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert not top & {"operators", "tt", "sparse", "montecarlo", "qmc", "grid"}, top
    from mzpdf.solvers import SOLVERS

    for name in SOLVERS:
        assert (PACKAGE / "solvers" / name / "plugin.py").is_file(), name
        assert SOLVERS.get(name).__module__ == f"mzpdf.solvers.{name}.plugin"


def test_no_module_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
