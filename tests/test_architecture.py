"""The package's shape, checked: no import circles, and no module importing a layer above its own.

The import graph is read from the source with ``ast`` (every ``import``/``from ... import``, also those
inside functions: a lazy import is still a dependency), so the test needs nothing installed and sees
imports that never ran. Imports under ``if TYPE_CHECKING:`` are annotations only: they obey the layers
but do not count as circles.

The layers, lowest first, are the pipeline (docs/architecture.md). A module may import its own layer
and the layers below; the circle check keeps imports inside one layer honest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nsgsolve"

# (layer, module prefixes); the longest matching prefix decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # The vocabulary every step shares: positions and errors, the policy model and its checks, and a
    # process-pool helper, a collector switch and an allocator setting that know nothing of policies.
    ("base", ("nsgsolve.errors", "nsgsolve.model", "nsgsolve.validate", "nsgsolve.parallel", "nsgsolve.version",
              "nsgsolve.limits", "nsgsolve.fileio", "nsgsolve.gcpause", "nsgsolve.heap")),
    # What a policy means: addresses, tags, the platform's rules, resolution, the reference evaluator.
    ("semantics", ("nsgsolve.semantics",)),
    # Ways in: the language (its builder checks tag names against semantics' built-in tags) and the
    # importers beside it (which name values left open the way resolution reads them).
    ("inputs", ("nsgsolve.lang", "nsgsolve.importers", "nsgsolve.grammar")),
    # Exact region arithmetic over the packet space, then the Z3 encoding (which narrows terms to regions).
    ("regions", ("nsgsolve.regions",)),
    ("smt", ("nsgsolve.smt",)),
    # Questions about a policy, answered as data.
    ("analyses", ("nsgsolve.analyses",)),
    # Data to text (and JSON, SARIF, JUnit, GitHub annotations).
    ("reports", ("nsgsolve.reports",)),
    # Thin commands: flags in, analysis, report out.
    ("commands", ("nsgsolve.commands",)),
    # Entry points: the CLI and the package's public facade (``import nsgsolve``).
    ("entry", ("nsgsolve.cli", "nsgsolve.__main__", "nsgsolve")),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}

# Known exceptions, each with the work that removes it; the lists only ever shrink.
KNOWN_UPWARD: set[tuple[str, str]] = set()
# Imports left out of the circle check.
KNOWN_CIRCLE_EDGES: set[tuple[str, str]] = set()


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = name, len(p)
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py: add it to LAYERS"
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def import_graph() -> tuple[set[str], list[tuple[str, str, int, bool]]]:
    """(modules, edges as (importer, imported, line, type-checking only))."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    edges = []
    for mod, path in sorted(files.items()):
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(node: ast.AST, typing_only: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _type_checking(child):
                    for c in child.body:
                        visit_one(c, True)
                    for c in child.orelse:
                        visit_one(c, typing_only)
                else:
                    visit_one(child, typing_only)

        def visit_one(node: ast.AST, typing_only: bool) -> None:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "nsgsolve":
                        edges.append((mod, a.name, node.lineno, typing_only))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] == "nsgsolve":
                    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                    # ``from package import submodule`` needs the package only as every import of a
                    # submodule does; it is an edge to the package when it takes a name defined there.
                    if len(subs) < len(node.names):
                        edges.append((mod, base, node.lineno, typing_only))
                    edges.extend((mod, s, node.lineno, typing_only) for s in subs)
            visit(node, typing_only)

        visit(tree, False)
    return modules, [e for e in edges if e[0] != e[1]]


MODULES, EDGES = import_graph()


def test_the_graph_is_read():
    # A parser that silently found nothing would make both checks pass.
    assert len(MODULES) > 40 and len(EDGES) > 150
    assert ("nsgsolve.semantics.evaluate", "nsgsolve.semantics.resolve") in {(a, b) for a, b, _, _ in EDGES}


def test_every_module_has_a_layer():
    for m in sorted(MODULES):
        layer_of(m)


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)}) at line {line}"
              for a, b, line, _ in EDGES if b in MODULES and RANK[layer_of(b)] > RANK[layer_of(a)]
              and (a, b) not in KNOWN_UPWARD]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def cycles(modules: set[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    succ: dict[str, list[str]] = {m: [] for m in modules}
    for a, b in edges:
        if a in succ and b in succ:
            succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for j in range(i, len(succ[v])):
                w = succ[v][j]
                if w not in index:
                    work.append((v, j + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def test_cycles_finds_a_circle():
    assert cycles({"a", "b", "c"}, [("a", "b"), ("b", "c"), ("c", "a")]) == [["a", "b", "c"]]
    assert cycles({"a", "b", "c"}, [("a", "b"), ("b", "c")]) == []


def test_no_import_circles():
    found = cycles(MODULES, [(a, b) for a, b, _, typing_only in EDGES
                             if not typing_only and (a, b) not in KNOWN_CIRCLE_EDGES])
    detail = []
    for comp in found:
        members = set(comp)
        detail.append(" <-> ".join(comp) + ": " + "; ".join(
            f"{a} imports {b} at line {line}" for a, b, line, t in EDGES
            if a in members and b in members and not t and (a, b) not in KNOWN_CIRCLE_EDGES))
    assert not found, "import circles:\n" + "\n".join(detail)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_every_module_opens_with_a_design_note(path):
    if path.name == "__main__.py":
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 5, f"{module_name(path)} has no docstring saying what it is for"
