"""The house's layout, read from the code's own imports (lazy ones inside functions included): no two
modules of pneumo/ import each other, directly or round a loop, and serving never imports training."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "pneumo"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each pneumo module -> the pneumo modules it imports anywhere in its file."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x, from .y import z
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pneumo.training import sets` imports a module; `from pneumo.lungs import clean_mask` a name
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # pneumo.x.y where y is not a module: pneumo.x
                    target = target.rpartition(".")[0]
                if target and target != name and target != package and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_is_read_lazy_imports_included():
    graph = import_graph()
    assert "pneumo.preprocess" in graph["pneumo.guard"] and "pneumo.population" in graph["pneumo.guard"]
    assert "pneumo.engine" in graph["pneumo.api"]  # imported inside a method
    assert "pneumo.training.sets" in graph["pneumo.training.population"]  # `from pneumo.training import sets`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_two_modules_lean_on_each_other():
    assert cycles(import_graph()) == []


# The `pneumo` command is the front door above both wings: `pneumo evaluate` hands over to the training wing
# when its extra is installed, and says what to install when not (tests/test_cli.py).
FRONT_DOOR = {"pneumo.cli": {"pneumo.training.evaluate"}}


def test_serving_never_imports_training():
    graph = import_graph()
    serving = [name for name in graph if not name.startswith("pneumo.training")]
    crossing = {name: {t for t in graph[name] if t.startswith("pneumo.training")} for name in serving}
    assert serving and {name: targets for name, targets in crossing.items() if targets} == FRONT_DOOR
