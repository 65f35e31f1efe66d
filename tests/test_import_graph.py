"""The import graph of app/ and engine/: layers point one way and no module imports
itself round a circle (docs: How we want the code)."""

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, known: set[str], top_only: bool) -> set[str]:
    """The project modules `tree` imports, never counting those under TYPE_CHECKING: at
    import time only (`top_only`: not inside a function), or anywhere."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                visit(node.orelse)  # imports for the type checker alone run nothing
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module.split(".")[:len(module.split(".")) - node.level]
                    base = ".".join(package + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and top_only:
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    visit(inner)
                elif isinstance(inner, list):
                    for handler in inner:
                        if isinstance(handler, ast.ExceptHandler):
                            visit(handler.body)

    visit(tree.body)
    return {m for m in found if m in known and m != module}


def _graph(top_only: bool) -> nx.DiGraph:
    paths = [p for pkg in ("app", "engine") for p in (ROOT / pkg).rglob("*.py")]
    known = {_module(p) for p in paths}
    graph = nx.DiGraph()
    for path in paths:
        module = _module(path)
        graph.add_node(module)
        for target in _imports(ast.parse(path.read_text()), module, known, top_only):
            graph.add_edge(module, target)
    return graph


def test_no_module_imports_itself_round_a_circle() -> None:
    """Counting imports inside functions too (a deferred import is a circle all the same),
    but not those only for type checking."""
    cycles = list(nx.simple_cycles(_graph(top_only=False)))
    # A package's __init__ re-exporting its modules is not a circle of its own.
    real = [c for c in cycles if not any(
        other.startswith(f"{m}.") for m in c for other in c)]
    assert not real, real


def test_layers_point_one_way() -> None:
    graph = _graph(top_only=False)
    wrong = [(a, b) for a, b in graph.edges
             if (a.startswith("engine") and b.startswith("app"))
             or (a.startswith("engine.memory") and b.startswith("engine.migration"))]
    assert not wrong, wrong


def test_the_graph_sees_imports() -> None:
    """The checks above can fail: the graph has the edges it should."""
    graph = _graph(top_only=False)
    assert graph.has_edge("app.cli", "app.reproduce")
    assert graph.has_edge("engine.pipeline", "engine.workloads.retouch")
    assert graph.has_edge("engine.workloads.retouch", "engine.memory.swap")
    assert graph.has_edge("engine.spec", "engine.workloads.library")  # inside a function
    assert not _graph(top_only=True).has_edge("engine.spec", "engine.workloads.library")
    # For the type checker only: the palette names the app it runs in, nothing more.
    assert not graph.has_edge("app.console.palette", "app.console.app")
