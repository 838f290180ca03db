"""Layering (DESIGN.md §2), read from the source with ``ast`` (nothing is imported):

* the base modules (``types``, ``vocab``, ``shapes``, ``errors``, ``config``) import no other part
  of livus but each other;
* io, preprocess and models never import a higher layer (infer, evaluate, report, service,
  train, cli, ...); networks (models) know no files (no ``livus.io``);
* infer never imports training, evaluation, the service or the CLI;
* no import cycle between livus modules (lazy imports inside functions count; imports under
  ``if TYPE_CHECKING:`` do not, they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "livus"
BASE = ("livus.types", "livus.vocab", "livus.shapes", "livus.errors", "livus.config")
HIGHER = ("infer", "evaluate", "report", "service", "train", "cli", "explain", "monitor", "simulate", "augment",
          "augment_scanner")
FORBIDDEN = {
    "io": HIGHER + ("preprocess", "models"),
    "preprocess": HIGHER + ("io", "models"),
    "models": HIGHER + ("io",),
    "infer": ("train", "evaluate", "service", "cli", "monitor", "simulate"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imports(path: Path) -> set[str]:
    """Dotted names a module imports at run time (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative import
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def _livus_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _in(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package: str):
    forbidden = [f"livus.{p}" for p in FORBIDDEN[package]]
    offenders = {}
    for path in (SRC / package).rglob("*.py"):
        bad = sorted(n for n in _imports(path) if any(_in(n, f) for f in forbidden))
        if bad:
            offenders[str(path.relative_to(SRC))] = bad
    assert not offenders, f"livus.{package} imports a higher layer: {offenders}"


def test_base_modules_import_only_base_modules():
    offenders = {}
    for module in BASE:
        path = SRC.parent / (module.replace(".", "/") + ".py")
        bad = sorted(n for n in _imports(path) if _in(n, "livus") and not any(_in(n, b) for b in BASE)
                     and n != "livus")
        if bad:
            offenders[module] = bad
    assert not offenders, f"base modules import other parts of livus: {offenders}"


def _import_graph() -> dict[str, set[str]]:
    modules = _livus_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {n for n in _imports(path) if n in modules and n != name}
        # importing ``a.b`` runs the package ``a`` first: only the modules themselves count here
        graph[name] = {d for d in deps if d != "livus"}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_evaluate_modules_do_not_import_each_other_both_ways():
    graph = _import_graph()
    evaluate = [m for m in graph if _in(m, "livus.evaluate")]
    pairs = [(a, b) for a in evaluate for b in evaluate if a < b and b in graph[a] and a in graph[b]]
    assert not pairs, f"evaluate modules importing each other: {pairs}"


def test_no_import_cycles_between_livus_modules():
    cycles = _cycles(_import_graph())
    assert not cycles, f"import cycles (lazy imports count): {cycles}"
