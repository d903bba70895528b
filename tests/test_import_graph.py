"""The package's import graph: no cycles between modules or between packages, and the library never imports a
command (docs/design.md, "Layout"). Read from the source with ``ast``, so lazy imports inside functions count."""

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


@cache
def imports() -> dict[str, set[str]]:
    """kdzoo module -> the kdzoo modules it imports (anywhere in it), with their parent packages."""
    files = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (SRC / "kdzoo").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
                module = ".".join(filter(None, [base, node.module]))
                targets |= {module, *(f"{module}.{a.name}" for a in node.names)}
        found = set()
        for target in targets:
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in files}
        graph[name] = {t for t in found if t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, found = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_itself_back():
    assert cycles(imports()) == []


def test_no_package_imports_itself_back():
    graph = {}
    for module, targets in imports().items():
        graph.setdefault(package(module), set()).update(package(t) for t in targets if package(t) != package(module))
    graph.pop("kdzoo", None)  # the top-level __init__ only re-exports
    assert cycles(graph) == []


def test_the_library_never_imports_a_command():
    users = {m for m, targets in imports().items() if any(package(t) == "kdzoo.commands" for t in targets)}
    assert {package(m) for m in users} - {"kdzoo.commands"} <= {"kdzoo.__main__", "kdzoo.docgen"}
