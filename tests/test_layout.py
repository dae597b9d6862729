"""The house's layout, read from the code's own imports (lazy ones inside functions included): no two
modules of pneumo/ import each other, directly or round a loop; serving never imports training; only
the reader (pneumo/reading/) decodes, checks or runs the networks; nothing installed imports the
experiments (lab/); at most 12 modules at pneumo/'s top level."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "pneumo"
LAB = REPO_ROOT / "lab"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(include_lab: bool = False) -> dict[str, set[str]]:
    """Each pneumo module (and lab's, if asked) -> the pneumo and lab modules it imports anywhere in its file."""
    modules = {_module_name(p): p for p in [*PACKAGE.rglob("*.py"), *(LAB.rglob("*.py") if include_lab else [])]}
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
                # `from pneumo.training import sets` imports a module; `from pneumo.reading.lungs import clean_mask` a name
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
    assert "pneumo.reading.preprocess" in graph["pneumo.reading.guard"] and "pneumo.reading.population" in graph["pneumo.reading.guard"]
    assert "pneumo.reading.networks" in graph["pneumo.reading.reader"]  # imported inside a method
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


# What only the reader may import: the decoder, the preprocessing, the checks and the networks.
READER_INSIDE = {f"pneumo.reading.{name}" for name in ("decode", "preprocess", "guard", "population", "networks", "explain", "lungs",
                                                       "siteprofile", "fit", "reader", "runtime", "jpeg")}


def _serving(graph: dict[str, set[str]]) -> list[str]:
    return [name for name in graph if name.startswith("pneumo") and not name.startswith("pneumo.training")]


def test_within_serving_only_the_reader_decodes_checks_and_runs_the_networks():
    graph = import_graph()
    outside = [name for name in _serving(graph) if not name.startswith("pneumo.reading")]
    assert "pneumo.ui.session" in outside and "pneumo.cli" in outside and "pneumo.outputs.dicom" in outside
    reaching_in = {name: graph[name] & READER_INSIDE for name in outside if graph[name] & READER_INSIDE}
    assert reaching_in == {}  # they import pneumo.reading (Reader, Result), never what is inside it
    assert {"pneumo.reading.decode", "pneumo.reading.guard", "pneumo.reading.population"} <= graph["pneumo.reading.reader"]


def test_nothing_installed_imports_the_experiments():
    graph = import_graph(include_lab=True)
    assert any(name.startswith("lab.") for name in graph)
    assert {name: {t for t in targets if t == "lab" or t.startswith("lab.")}
            for name, targets in graph.items() if name.startswith("pneumo") and any(t == "lab" or t.startswith("lab.") for t in targets)} == {}


def test_the_package_shows_its_layers():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == {"reading", "outputs", "ui", "training"}
    import sys

    well_known = set(sys.stdlib_module_names) | {"imageio", "keras", "numpy", "scipy", "streamlit", "pydicom", "highdicom", "tensorflow"}
    assert not {p.stem for p in PACKAGE.rglob("*.py")} & well_known  # no module named after a well-known one
