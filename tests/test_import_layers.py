"""The package's imports point inward and form no cycles.

Layers, innermost first (a module may import its own layer and the layers before it):

    0  irflow.errors, irflow.atomic, irflow._version      plain helpers, no irflow imports
    1  irflow.ir                                          the typed IR
    2  irflow.ops                                         op set, builder, dispatch
    3  irflow.passes                                      IR -> IR rewrites
    4  irflow.autodiff                                    IR -> IR transforms (may use passes)
    5  irflow.executors                                   NumPy interpreter, ONNX lowering + ORT
    6  irflow.frontends                                   eager, trace, static, ONNX import
    7  irflow.nn, optim, data, train, summary, onnx,      libraries on the frontends
       debugging, ragged, viz
    8  irflow (the package), irflow._api                  the public namespace
    9  irflow.cli, irflow.__main__                        the command

That is DESIGN.md's `ir <- ops <- autodiff/passes <- frontends/executors <- nn <- cli`, with
the two pairs it leaves unordered given the order the code needs (autodiff folds constants
with passes; the tracing frontend runs graphs on executors).

How imports are read (AST, no import executed): every `import irflow.x` / `from irflow.x
import y` / relative import anywhere in a module counts, at top level or inside a function: a
function-level import is still a dependency (it only moves the cost to the first call), so it
must point inward too, and it closes a cycle like any other. Imports under `if TYPE_CHECKING:`
are annotations only and do not count. `from irflow.a import b` is an edge to the module
`irflow.a.b` when that is a module, else to `irflow.a`.

Cycles are between modules (strongly connected components of the module graph), function-level
imports included: Python tolerates a cycle closed inside a function, but the modules still
cannot be understood, tested or replaced one without the other. One edge is not counted for
cycles: a module importing its own enclosing package's `__init__` (a kernel family taking the
`kernel` decorator from `kernels/__init__.py`, which defines the registry before importing
its families): that is registration, not mutual dependence. A known,
not-yet-fixed edge is listed in ALLOWED with its owner, a deliberate deviation with that label; the test fails on any other outward
arrow or cycle, and on an ALLOWED entry that no longer exists (delete it: the list only
shrinks).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "irflow"

LAYERS: list[tuple[int, str]] = [
    (0, "irflow.errors"), (0, "irflow.atomic"), (0, "irflow._version"),
    (1, "irflow.ir"),
    (2, "irflow.ops"),
    (3, "irflow.passes"),
    (4, "irflow.autodiff"),
    (5, "irflow.executors"),
    (6, "irflow.frontends"),
    (7, "irflow.nn"), (7, "irflow.optim"), (7, "irflow.data"), (7, "irflow.train"), (7, "irflow.summary"),
    (7, "irflow.onnx"), (7, "irflow.debugging"), (7, "irflow.ragged"), (7, "irflow.viz"),
    (8, "irflow._api"),
    (9, "irflow.cli"), (9, "irflow.__main__"),
]

# Known edges: (importer, imported) -> why. Outward arrows not fixed yet (with who is fixing
# them) and the one edge of each known cycle that is to be removed; and the two deliberate
# deviations that docs/architecture.md states and explains.
ALLOWED: dict[tuple[str, str], str] = {
    # deliberate deviations (stay)
    ("irflow.autodiff.tape", "irflow.frontends.eager"): "deliberate deviation, see docs/architecture.md (the tape hooks the eager frontend's recording)",
    ("irflow.ir.verify", "irflow.ops.registry"): "deliberate deviation, see docs/architecture.md (the verifier reads the op registry)",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    if module == "irflow":
        return 8
    best: tuple[int, int] | None = None  # (prefix length, layer): the longest prefix wins
    for layer, prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), layer)
    if best is None:
        raise KeyError(module)
    return best[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(module: str, path: Path, known: set[str], top_level_only: bool = False) -> set[str]:
    """The irflow modules ``module`` imports anywhere (or, with ``top_level_only``, while it is
    being imported: not inside functions), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def resolve(base: str, names: list[str]) -> None:
        if not (base == "irflow" or base.startswith("irflow.")):
            return
        for name in names:
            sub = f"{base}.{name}"
            out.add(sub if sub in known else base)
        if not names:
            out.add(base)

    def visit(node: ast.AST) -> None:
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name, [])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            resolve(base, [a.name for a in node.names if a.name != "*"])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(module)
    return out


def import_graph(top_level_only: bool = False) -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {m: imported_modules(m, p, known, top_level_only) for m, p in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one module (cycles), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)
    return components


def test_every_module_has_a_layer():
    unplaced = [m for m in all_modules() if not _has_layer(m)]
    assert not unplaced, f"add these modules' packages to LAYERS in {Path(__file__).name}: {unplaced}"


def _has_layer(module: str) -> bool:
    try:
        layer_of(module)
    except KeyError:
        return False
    return True


def test_no_import_points_outward():
    graph = import_graph()
    outward = sorted(
        (src, dst) for src, dsts in graph.items() for dst in dsts
        if _has_layer(src) and _has_layer(dst) and layer_of(dst) > layer_of(src) and (src, dst) not in ALLOWED
    )
    lines = [f"  {src} (layer {layer_of(src)}) imports {dst} (layer {layer_of(dst)})" for src, dst in outward]
    assert not outward, "imports pointing outward (see the layer table in this file):\n" + "\n".join(lines)


def _from_own_package(src: str, dst: str) -> bool:
    """A module importing its own enclosing package's ``__init__`` (``kernels/elementwise.py``
    taking the ``kernel`` decorator from ``kernels/__init__.py``, which defines the registry
    before it imports its families): the registration pattern, not counted as a cycle."""
    return src.startswith(dst + ".") and (ROOT / Path(*dst.split(".")) / "__init__.py").exists()


def test_no_import_cycles():
    graph = import_graph()
    pruned = {src: {d for d in dsts if (src, d) not in ALLOWED and not _from_own_package(src, d)} for src, dsts in graph.items()}
    cycles = strongly_connected(pruned)
    assert not cycles, "import cycles between modules:\n" + "\n".join("  " + " <-> ".join(c) for c in cycles)


def test_allowlist_only_names_edges_that_still_exist():
    graph = import_graph()
    stale = [edge for edge in ALLOWED if edge[1] not in graph.get(edge[0], set())]
    assert not stale, f"these ALLOWED edges are gone: delete them from the list: {stale}"


@pytest.mark.parametrize("source, expected", [
    ("from irflow.ir import graph\nfrom .x import y\nimport irflow.ops.dispatch\n"
     "if TYPE_CHECKING:\n    from irflow.cli import app\n"
     "def f():\n    from irflow import executors\n",
     {"irflow.ir.graph", "irflow.executors", "irflow.ops.dispatch", "irflow.passes.x"}),
])
def test_import_reader(tmp_path, source, expected):
    path = tmp_path / "mod.py"
    path.write_text(source)
    known = {"irflow.ir.graph", "irflow.executors", "irflow.ops.dispatch"}
    assert imported_modules("irflow.passes.mod", path, known) == expected
