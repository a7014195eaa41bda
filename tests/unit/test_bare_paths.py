"""Bare dotted paths compiled without CEL (`core/bare_paths.py`) read exactly as CEL does.

The shortcut spares `shoal validate` loading CEL for `${{ params.name }}`. Its risk is a
false accept (a path CEL refuses, or reads differently), hunted differentially: for every
spelling it accepts, generated and taken from every manifest in the repository, CEL must
compile it too, and the Expression built without CEL must equal CEL's in every field that
validation and the planner read, and evaluate to the same value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.limits import MAX_EXPRESSION_LENGTH
from shoal.core.bare_paths import CEL_RESERVED, LazyProgram, bare_path
from shoal.core.expressions import (
    RETRY_VARIABLES,
    VARIABLES,
    Expression,
    ExpressionError,
    compile_expression,
    compile_with_cel,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted(
    [*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/**/*.yaml"), *ROOT.glob("docs/**/*.md")]
)
FIELDS = ("source", "variables", "node_refs", "dynamic_nodes", "param_refs", "iterates")
CONTEXT: dict[str, Any] = {
    "params": {"name": "Ada", "n": 3, "m": {"k": [1, 2]}, "data_proxy": 1, "int": 7},
    "nodes": {
        "a": {"phase": "Succeeded", "outputs": {"x": 1, "message": "hi"}},
        "data-proxy": {"phase": "Skipped", "outputs": {"v": "p"}},
    },
    "workflow": {"name": "wf", "namespace": "ns", "uid": "u"},
    "item": {"id": 4, "tags": ["t"]},
    "itemIndex": 2,
    "lastRetry": {"exitCode": 1},
}


def same_as_cel(text: str, names: frozenset[str] = VARIABLES) -> Expression:
    """The shortcut's Expression, after checking it field by field against CEL's."""
    fast = compile_expression(text, names=names)
    assert isinstance(fast.program, LazyProgram), text
    slow = compile_with_cel(text, names)
    for name in FIELDS:
        assert getattr(fast, name) == getattr(slow, name), (text, name)
    assert fast.node_spellings == slow.node_spellings, text
    assert fast.program.variables() == slow.program.variables(), text
    for scope in (CONTEXT, {}):
        assert _outcome(fast, scope) == _outcome(slow, scope), text
    return fast


def _outcome(expr: Expression, scope: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", expr.evaluate(scope)
    except ExpressionError as err:
        return "error", str(err)


WORDS = ["a", "data_proxy", "outputs", "message", "phase", "x1", "_x", "int", "size", "has"]
ODD_SPELLINGS = ["1a", "", "a-b", "é", "a b", "nodes_x", "Nodes", "TRUE", "dyn", "type"]
SEGMENTS = st.one_of(
    st.sampled_from([*sorted(VARIABLES | RETRY_VARIABLES | CEL_RESERVED), *WORDS, *ODD_SPELLINGS]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=5), st.sampled_from([".", " . ", ".."]))
def test_every_generated_path_the_shortcut_takes_reads_as_cel_reads_it(
    segments: list[str], dot: str
) -> None:
    text = dot.join(segments)
    for names in (VARIABLES, RETRY_VARIABLES):
        if bare_path(text, names, MAX_EXPRESSION_LENGTH) is not None:
            same_as_cel(text, names)
        else:  # declined: CEL compiles it, as before the shortcut existed
            assert not isinstance(_compiled_or_error(text, names), LazyProgram)


def _compiled_or_error(text: str, names: frozenset[str]) -> object:
    try:
        return compile_expression(text, names=names).program
    except ExpressionError as err:
        return err


def repository_expressions() -> set[str]:
    """Every `${{ }}` body and every whole string value in the repository's manifests."""
    found: set[str] = set()
    for path in MANIFESTS:
        text = path.read_text(encoding="utf-8")
        found.update(m.strip() for m in re.findall(r"\$\{\{(.*?)\}\}", text, re.DOTALL))
        if path.suffix == ".yaml":
            try:
                documents = list(yaml.safe_load_all(text))
            except yaml.YAMLError:
                continue
            found.update(_strings(documents))
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_repository_expression_the_shortcut_takes_reads_as_cel_reads_it() -> None:
    taken = [t for t in sorted(repository_expressions()) if bare_path(t, VARIABLES, 10**6)]
    for text in taken:
        same_as_cel(text)
    assert {"params.name", "nodes.hello.outputs.message", "item"} <= set(taken)


@pytest.mark.parametrize(
    ("text", "refs", "spellings", "dynamic", "params"),
    [
        ("nodes.a.outputs.x", {"a"}, (), False, set()),
        ("nodes.data_proxy.v", {"data-proxy"}, (("data_proxy", "data-proxy"),), False, set()),
        ("nodes", set(), (), True, set()),
        ("params.data_proxy", set(), (), False, {"data_proxy"}),
        ("item.tags", set(), (), False, set()),
    ],
)
def test_what_a_path_reads_is_known_without_cel(
    text: str,
    refs: set[str],
    spellings: tuple[tuple[str, str], ...],
    dynamic: bool,
    params: set[str],
) -> None:
    expr = same_as_cel(text)
    assert (expr.node_refs, expr.node_spellings) == (refs, spellings)
    assert (expr.dynamic_nodes, expr.param_refs) == (dynamic, params)


@pytest.mark.parametrize(
    "text",
    ["params.in", "params.true", "foo.bar", "params.nodes.x", "nodes.a-b", "params .name", "a..b"],
)
def test_what_the_shortcut_declines_cel_still_judges(text: str) -> None:
    assert bare_path(text, VARIABLES, MAX_EXPRESSION_LENGTH) is None
    outcome = _compiled_or_error(text, VARIABLES)
    assert not isinstance(outcome, LazyProgram)


def test_errors_read_as_before() -> None:
    with pytest.raises(ExpressionError, match=r"unknown name 'foo'; expressions can use"):
        compile_expression("${{ foo.bar }}")
    long = "params." + "a" * MAX_EXPRESSION_LENGTH
    with pytest.raises(ExpressionError, match=r"characters long \(limit"):
        compile_expression(long)


def test_the_program_compiles_once_on_first_evaluation() -> None:
    expr = compile_expression("${{ params.name }}")
    program = expr.program
    assert isinstance(program, LazyProgram)
    assert program._program is None  # validation alone compiles nothing
    assert expr.evaluate(CONTEXT) == "Ada"
    first = program._program
    assert first is not None
    assert expr.evaluate({"params": {"name": "Bo"}}) == "Bo"
    assert program._program is first
