"""No import circles in the engine (model, simulation, solvers, learning), counting the
imports inside functions too: a circle hidden by a function-level import is still a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("tmfcli.model", "tmfcli.simulation", "tmfcli.solvers", "tmfcli.learning")


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imported(path: Path, known: set[str]) -> set[str]:
    """The tmfcli modules a file imports anywhere (``from a.b import c`` counts a.b, and a.b.c
    when that is a module), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                found.append([*stack[stack.index(v):], v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u, [])
    return found


def test_the_engine_has_no_import_circle() -> None:
    paths = {module_name(p): p for p in (ROOT / "tmfcli").rglob("*.py")}
    engine = {name for name in paths if name.startswith(ENGINE)}
    graph = {name: imported(paths[name], engine) - {name} for name in engine}
    assert graph["tmfcli.solvers.registry"]  # the probe sees imports
    assert cycles(graph) == []
