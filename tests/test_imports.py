"""No import circle among tmfcli's modules.

The graph is built from the source (``ast``): every ``import`` and ``from ... import``,
at module level or inside a function (a lazy import still closes a circle when it runs),
except those under ``if TYPE_CHECKING:`` (never executed). An edge goes to the module named,
or to ``pkg.name`` when ``from pkg import name`` names a submodule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Edges known to close a circle that is being removed elsewhere; each is the function-level
# import that hides it. Anything else that closes a circle fails the test.
ALLOWED: set[tuple[str, str]] = set()  # none: every circle is a failure


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` by dotted name (a package is its
    ``__init__``)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements below ``node``, at any depth, skipping ``if TYPE_CHECKING:``
    bodies (their ``else`` runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                if isinstance(other, ast.Import | ast.ImportFrom):
                    yield other
                yield from _imports(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child)


def graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the modules of ``package`` it imports."""
    known = modules(root, package)
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = alias.name
                    while target and target not in known:
                        target = target.rpartition(".")[0]
                    if target:
                        edges[name].add(target)
                continue
            base = node.module or ""
            if node.level:
                parts = here.split(".")[:len(here.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    edges[name].add(f"{base}.{alias.name}")
                elif base in known:
                    edges[name].add(base)
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (its modules in order, the first repeated at the end), or
    None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_tmfcli_has_no_import_circle() -> None:
    edges = graph(ROOT, "tmfcli")
    assert ("tmfcli.commands.sweep", "tmfcli.commands.jobs") in \
        {(a, b) for a, targets in edges.items() for b in targets}  # the probe sees imports
    for a, b in ALLOWED:
        edges[a].discard(b)
    assert cycle(edges) is None, " -> ".join(cycle(edges) or [])


@pytest.mark.parametrize(("hidden", "found"), [
    ("    from pkg import a\n", True),                       # a lazy import closes it
    ("    from pkg.a import f\n", True),
    ("    if TYPE_CHECKING:\n        from pkg import a\n", False),  # never executed
])
def test_the_probe_finds_a_circle_through_a_function_level_import(
        tmp_path: Path, hidden: str, found: bool) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\n\n\ndef g():\n" + hidden
                                  + "    return 1\n")
    edges = graph(tmp_path, "pkg")
    assert edges["pkg.a"] == {"pkg.b"}
    assert (cycle(edges) is not None) == found
