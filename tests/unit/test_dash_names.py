"""Node names with `-` in expressions: `nodes.flip_coin` reads `flip-coin`, and
`nodes.flip-coin` is refused at validation with both spellings that work (issue 19)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import WorkflowMeta
from shoal.core.expressions import ExpressionError, compile_expression
from shoal.core.validation import InvalidWorkflow, compile_workflow

META = WorkflowMeta("coin")
NODES = {
    "flip-coin": {"phase": "Succeeded", "outputs": {"result": "heads"}},
    "flip": {"phase": "Succeeded", "outputs": {"result": "tails"}},
}


def _spec(when: str, *, extra: dict[str, Any] | None = None) -> WorkflowSpec:
    show: dict[str, Any] = {
        "name": "show",
        "command": ["echo"],
        "dependsOn": ["flip-coin"],
        "when": when,
        **(extra or {}),
    }
    return WorkflowSpec.model_validate(
        {"nodes": [{"name": "flip-coin", "command": ["echo"], "captureStdout": True}, show]}
    )


def test_underscore_spelling_reads_the_hyphenated_node() -> None:
    expr = compile_expression("nodes.flip_coin.outputs.result")
    assert expr.node_refs == {"flip-coin"}  # dependencies are checked on the real name
    assert expr.evaluate({"nodes": NODES}) == "heads"


def test_underscore_spelling_works_beside_a_computed_index() -> None:
    expr = compile_expression("nodes[params.n].phase + nodes.flip_coin.outputs.result")
    assert expr.dynamic_nodes
    assert expr.evaluate({"nodes": NODES, "params": {"n": "flip"}}) == "Succeededheads"


def test_bracket_spelling_still_works() -> None:
    expr = compile_expression("nodes['flip-coin'].outputs.result == 'heads'")
    assert expr.evaluate({"nodes": NODES}) is True


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("nodes.flip-coin.outputs.result", "flip-coin"),  # `coin` unknown
        ("nodes.step-1.phase == 'Succeeded'", "step-1"),  # would compile: `nodes.step - 1`
        ("nodes.gen-item", "gen-item"),  # would compile in a fan-out: `item` is a variable
        ("nodes.flip - the-coin.x", "flip-the-coin"),
    ],
)
def test_hyphenated_dot_access_is_refused_with_both_spellings(source: str, name: str) -> None:
    with pytest.raises(ExpressionError) as err:
        compile_expression(source)
    text = str(err.value)
    assert f"nodes['{name}']" in text
    assert f"nodes.{name.replace('-', '_')}" in text


def test_a_hyphen_inside_a_string_literal_is_not_a_node() -> None:
    expr = compile_expression("nodes.flip_coin.outputs.result == 'nodes.a-b'")
    assert expr.evaluate({"nodes": NODES}) is False


def test_validation_names_the_node_and_field() -> None:
    with pytest.raises(InvalidWorkflow) as err:
        compile_workflow(_spec("nodes.flip-coin.outputs.result == 'heads'"), META)
    problems = err.value.problems
    assert [(p.node, p.field) for p in problems] == [("show", "when")]
    assert "nodes['flip-coin'] or nodes.flip_coin" in problems[0].message


def test_validation_accepts_the_underscore_spelling_as_a_dependency() -> None:
    wf = compile_workflow(_spec("nodes.flip_coin.outputs.result == 'heads'"), META)
    assert wf.nodes["show"].when is not None


def test_underscore_spelling_of_a_non_ancestor_is_refused_naming_the_node() -> None:
    spec = _spec("nodes.flip_coin.phase == 'Succeeded'", extra={"dependsOn": []})
    with pytest.raises(InvalidWorkflow, match=r"nodes\.flip-coin, which is not among its"):
        compile_workflow(spec, META)
