"""The layering holds: read from the source's imports with `ast`, not from a running process.

- No import cycle among product modules (`shoal`, `shoal_worker`), function-level imports
  included; the one exception is the lazy S3 factory (`LAZY_EDGES`).
- `core/` and `api/` never import an adapter (kube, local, archive, cron, cli), so the
  pure planner and the models stay usable by any front end.
- No product file over 700 lines; no function over 80 lines other than declarative
  tables (`DECLARATIVE_TABLES`).
- Every package declares its public surface (`__all__`).

Violations other helpers are removing on their branches right now are listed in
`PENDING_IN_OTHER_BRANCHES`; each entry must still be a violation (the test says when
one is fixed, so the set shrinks to empty), and any violation not listed fails.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"shoal": ROOT / "operator" / "shoal", "shoal_worker": ROOT / "worker" / "shoal_worker"}
ADAPTERS = ("kube", "local", "archive", "cron", "cli", "server")
PURE = ("core", "api")
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 80

LAZY_EDGES = {
    # `open_store` imports the S3 store only for an s3:// url (boto3 is an optional
    # extra), and the S3 store builds on the artifact interface.
    ("shoal_worker.artifacts", "shoal_worker.s3_store"),
}
DECLARATIVE_TABLES = {
    # An argparse table: one add_argument per option of `shoal operator`.
    "shoal.cli.operator_command.configure",
}
GENERATED = {
    # fastjsonschema's code for the Workflow schema (`make crds`; shoal.api.check_codegen).
    "shoal.api._generated_check",
}
"""Generated modules: no size rule (their source is the models, kept fresh by a test)."""
PENDING_IN_OTHER_BRANCHES: set[str] = set()
"""Violations waiting for a branch in flight (empty: every rule holds on main)."""


def modules() -> dict[str, Path]:
    """Every product module by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for top, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that runs (anywhere), skipping `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (n for part in node.orelse for n in _runtime_imports(_wrap(part)))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _wrap(node: ast.stmt) -> ast.Module:
    return ast.Module(body=[node], type_ignores=[])


def _target(name: str) -> str | None:
    """The product module `name` refers to (a name inside a module means the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str) -> set[str]:
    """Product modules `name` imports at run time."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            found.update(t for t in map(_target, bases) if t)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            target = _target(f"{base}.{alias.name}") or _target(base)
            if target:
                found.add(target)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) - {"shoal", "shoal_worker"} for name in MODULES}


def cycles() -> set[str]:
    """One entry per strongly connected group, its members in a readable loop."""
    edges = {a: {b for b in bs if (a, b) not in LAZY_EDGES} for a, bs in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return {"cycle: " + " -> ".join([*group, group[0]]) for group in groups}


def oversized() -> set[str]:
    found = set()
    for name, path in MODULES.items():
        if name in GENERATED:
            continue
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_FILE_LINES:
            found.add(f"file: {name} has {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{name}.{node.name}" not in DECLARATIVE_TABLES:
                    found.add(f"function: {name}.{node.name} has {length} lines")
    return found


def test_no_new_violation_and_none_of_the_pending_ones_is_fixed_yet() -> None:
    found = cycles() | oversized()
    assert found - PENDING_IN_OTHER_BRANCHES == set(), "new violations"
    assert PENDING_IN_OTHER_BRANCHES - found == set(), "fixed: remove from the pending set"


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import() -> None:
    # The S3 store and the artifact interface import each other; only LAZY_EDGES hides it.
    assert "shoal_worker.s3_store" in GRAPH["shoal_worker.artifacts"]
    assert "shoal_worker.artifacts" in GRAPH["shoal_worker.s3_store"]
    assert not any("s3_store" in cycle for cycle in cycles())


def test_the_pure_layers_never_import_an_adapter() -> None:
    adapters = tuple(f"shoal.{a}" for a in ADAPTERS)
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith(tuple(f"shoal.{p}" for p in PURE))
        for target in targets
        if target.startswith(adapters)
    )
    assert offenders == []


def test_every_package_declares_its_public_surface() -> None:
    packages = [name for name, path in MODULES.items() if path.name == "__init__.py"]
    assert "shoal.kube" in packages  # a namespace package would escape the check
    for name in packages:
        public = getattr(importlib.import_module(name), "__all__", None)
        assert isinstance(public, list), f"{name} has no __all__"
        missing = [entry for entry in public if f"{name}.{entry}" not in MODULES]
        assert name == "shoal_worker" or missing == [], f"{name}: {missing}"
