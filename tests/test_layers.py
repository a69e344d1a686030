"""The layers of linops: framework imports live in linops/backends/ alone, and modules import no cycle.

Both checks read the source with ``ast``: every ``import`` and ``from ... import`` counts, at module
level and inside functions (so do ``importlib.import_module``/``__import__`` calls with a constant
name); imports under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "linops"
FRAMEWORKS = ("torch", "jax", "jaxlib")
BACKENDS = "linops.backends"


def module_name(path: pathlib.Path) -> str:
    """The dotted name of the module in ``path`` (a package for ``__init__.py``)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    """Every module of linops by dotted name."""
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported_names(path: pathlib.Path, module: str):
    """``(dotted name, line)`` of everything the module in ``path`` imports, ``TYPE_CHECKING`` blocks
    excluded; ``from a import b`` yields ``a.b`` (b may be a submodule) and ``a``."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
        elif isinstance(node, ast.Call) and _is_import_call(node.func) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.args[0].value, node.lineno


def _is_import_call(func) -> bool:
    """Whether ``func`` is ``importlib.import_module``, ``import_module`` or ``__import__``."""
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__")


def framework_imports() -> list[str]:
    """``path:line imports name`` for each import statement of torch, jax or jaxlib outside
    linops/backends/."""
    found = {}
    for module, path in modules().items():
        if module == BACKENDS or module.startswith(BACKENDS + "."):
            continue
        for name, line in imported_names(path, module):
            if name.split(".")[0] in FRAMEWORKS:
                found.setdefault((str(path.relative_to(ROOT.parent)), line), name)
    return [f"{path}:{line} imports {name}" for (path, line), name in sorted(found.items())]


def import_graph() -> dict[str, set[str]]:
    """Module → the linops modules it imports (its own enclosing packages left out: Python has
    initialised them before the module runs)."""
    known = modules()
    graph = {module: set() for module in known}
    for module, path in known.items():
        for name, _ in imported_names(path, module):
            target = name
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_frameworks_are_imported_only_in_backends():
    """torch, jax and jaxlib are imported by linops/backends/ alone (module level or in functions)."""
    assert framework_imports() == []


def test_no_import_cycles():
    """No import cycles among linops modules (function-local imports count)."""
    cycles = import_cycles(import_graph())
    assert not cycles, "\n".join(f"cycle of {len(c)} modules: {', '.join(c)}" for c in cycles)


def test_the_checks_see_what_they_look_for(tmp_path):
    """The checkers find a local framework import and a two-module cycle (checked on their helpers)."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert import_cycles(graph) == [["a", "b"]]
    source = tmp_path / "mod.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import jax\n"
                      "def f():\n    import torch.func\n    from . import sibling\n")
    names = {name for name, _ in imported_names(source, "linops.pkg.mod")}
    assert "torch.func" in names and "jax" not in names and "linops.pkg.sibling" in names
