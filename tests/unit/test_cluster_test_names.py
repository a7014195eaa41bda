"""A cluster test that drives an operator of its own is named so the session's skips it.

The cluster tier runs one session operator watching `t-*,!t-test-own-operator*`; each
test's namespace is `t-` plus its name. A test that starts another operator in its own
namespace must therefore be named `test_own_operator_*`, or two operators act on the same
Workflows and the test fails only when the session operator happens to be up (a flake
that cost a CI run). Read from the source with `ast`: a test counts as driving its own
operator when it calls `start_operator`, directly or through a helper in its file, and
uses the per-test `namespace` fixture.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLUSTER_TESTS = Path(__file__).resolve().parents[1] / "cluster"


def _called_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def _misnamed(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    starters = {"start_operator"}
    grew = True
    while grew:  # helpers and fixtures that start one, transitively
        found = {name for name, fn in functions.items() if _called_names(fn) & starters}
        grew = not found <= starters
        starters |= found
    wrong = []
    for name, fn in functions.items():
        args = {a.arg for a in fn.args.args}
        drives = name in starters or bool(args & starters)
        named = name.startswith("test_own_operator_")
        if name.startswith("test_") and drives and "namespace" in args and not named:
            wrong.append(f"{path.name}::{name}")
    return wrong


def test_every_test_driving_its_own_operator_in_its_namespace_is_named_so() -> None:
    files = sorted(CLUSTER_TESTS.glob("test_*.py"))
    assert files, CLUSTER_TESTS
    wrong = [test for path in files for test in _misnamed(path)]
    assert wrong == [], "rename to test_own_operator_*: " + ", ".join(wrong)


def test_the_check_finds_a_misnamed_test(tmp_path: Path) -> None:
    source = (
        "def helper(kubeconfig):\n"
        "    return start_operator(kubeconfig)\n"
        "def test_restart(namespace, kubeconfig):\n"
        "    helper(kubeconfig)\n"
        "def test_own_operator_restart(namespace, kubeconfig):\n"
        "    helper(kubeconfig)\n"
    )
    path = tmp_path / "test_sample.py"
    path.write_text(source)
    assert _misnamed(path) == ["test_sample.py::test_restart"]
