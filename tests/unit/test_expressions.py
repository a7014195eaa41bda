"""CEL expressions and `${{ }}` templates: evaluation, typing, rendering, static analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.core.expressions import (
    Expression,
    ExpressionError,
    Interpolation,
    compile_expression,
    compile_value,
    expressions_in,
    render,
    to_text,
)

CONTEXT: dict[str, Any] = {
    "params": {"region": "eu-west", "n": 3, "ids": [1, 2], "m": {"k": "v"}, "flag": True},
    "nodes": {
        "a": {"phase": "Succeeded", "outputs": {"x": 1, "ids": [10, 20]}},
        "data-proxy": {"phase": "Skipped", "outputs": {}},
    },
    "workflow": {"name": "wf", "namespace": "team", "uid": "u-1"},
}


def evaluate(source: str, context: dict[str, Any] | None = None) -> Any:
    return compile_expression(source).evaluate(CONTEXT if context is None else context)


def rendered(value: Any, context: dict[str, Any] | None = None) -> Any:
    return render(compile_value(value), CONTEXT if context is None else context)


# --- evaluation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("params.n + 1", 4),
        ("params.region", "eu-west"),
        ("params.ids", [1, 2]),
        ("params.m", {"k": "v"}),
        ('params.n == 3 ? "three" : "other"', "three"),
        ("nodes.a.outputs.ids[1]", 20),
        ('nodes["data-proxy"].phase == "Skipped"', True),
        ("nodes.a.outputs.ids.size() > 1 && params.flag", True),
        ('workflow.name + "/" + workflow.namespace', "wf/team"),
        ('int("7") + params.n', 10),
        ("string(params.n) + params.region", "3eu-west"),
        ("has(params.m.k) && !has(params.m.z)", True),
        ('"k" in params.m', True),
        ("params.ids.map(i, i * 2)", [2, 4]),
        ("${{ params.n * 2 }}", 6),
        ("  ${{ params.flag }}  ", True),
    ],
)
def test_cel_evaluation(source: str, expected: Any) -> None:
    assert evaluate(source) == expected


def test_a_whole_template_is_unwrapped_to_its_expression() -> None:
    expr = compile_expression("${{  params.n + 1 }}")
    assert expr.source == "params.n + 1"
    assert expr.variables == {"params"}


def test_item_and_item_index_are_variables() -> None:
    expr = compile_expression('item.id + "-" + string(itemIndex)')
    assert expr.variables == {"item", "itemIndex"}
    assert expr.evaluate({"item": {"id": "x"}, "itemIndex": 4}) == "x-4"


# --- templates keep their type when whole, become text when interpolated --------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ params.ids }}", [1, 2]),
        ("${{ params.m }}", {"k": "v"}),
        ("${{ params.n }}", 3),
        ("${{ params.flag }}", True),
        ("${{ 1.5 }}", 1.5),
        ("${{ null }}", None),
        (" ${{ params.n }} ", 3),
    ],
)
def test_a_whole_template_keeps_the_type(template: str, expected: Any) -> None:
    compiled = compile_value(template)
    assert isinstance(compiled, Expression)
    value = render(compiled, CONTEXT)
    assert value == expected
    assert type(value) is type(expected)


def test_interpolation_turns_values_into_text() -> None:
    template = (
        "n=${{ params.n }} b=${{ params.flag }} l=${{ params.ids }} m=${{ params.m }} "
        "s=${{ params.region }} z=${{ null }} f=${{ 1.5 }} d=${{ 2.0 }} "
        'o=${{ {"b": 2, "a": [1]} }}'
    )
    compiled = compile_value(template)
    assert isinstance(compiled, Interpolation)
    assert render(compiled, CONTEXT) == (
        'n=3 b=true l=[1,2] m={"k":"v"} s=eu-west z=null f=1.5 d=2.0 o={"a":[1],"b":2}'
    )


def test_two_templates_are_an_interpolation_not_one_whole_template() -> None:
    compiled = compile_value("${{ params.n }}${{ params.n }}")
    assert isinstance(compiled, Interpolation)
    assert render(compiled, CONTEXT) == "33"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (7, "7"),
        (2.5, "2.5"),
        ([1, "a", None], '[1,"a",null]'),
        ({"b": 1, "a": [True]}, '{"a":[true],"b":1}'),
    ],
)
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


def test_nested_args_trees_render_every_template() -> None:
    tree = {
        "region": "${{ params.region }}",
        "steps": ["${{ params.n }}", {"label": "n=${{ params.n }}", "fixed": "x"}, 4],
        "ids": "${{ nodes.a.outputs.ids }}",
        "static": {"deep": [1, {"deeper": "no template"}]},
    }
    compiled = compile_value(tree)
    assert [e.source for e in expressions_in(compiled)] == [
        "params.region",
        "params.n",
        "params.n",
        "nodes.a.outputs.ids",
    ]
    assert render(compiled, CONTEXT) == {
        "region": "eu-west",
        "steps": [3, {"label": "n=3", "fixed": "x"}, 4],
        "ids": [10, 20],
        "static": {"deep": [1, {"deeper": "no template"}]},
    }


def test_values_without_templates_are_left_as_they_are() -> None:
    tree = {"a": [1, "b", {"c": None}], "d": 2.5}
    compiled = compile_value(tree)
    assert compiled is tree
    assert expressions_in(compiled) == []
    assert render(compiled, {}) is tree


# --- static analysis ----------------------------------------------------------------------


def test_node_and_param_refs_in_dot_and_index_form() -> None:
    expr = compile_expression(
        'nodes.a.outputs.x + nodes["data-proxy"].outputs.y + params.n + params["other-p"]'
    )
    assert expr.node_refs == {"a", "data-proxy"}
    assert expr.param_refs == {"n", "other-p"}
    assert expr.variables == {"nodes", "params"}
    assert not expr.dynamic_nodes


@pytest.mark.parametrize("source", ["nodes[params.which].outputs", "size(nodes)", "nodes"])
def test_nodes_read_by_a_computed_key_are_dynamic(source: str) -> None:
    assert compile_expression(source).dynamic_nodes


def test_expressions_without_nodes_are_not_dynamic() -> None:
    expr = compile_expression("params.ids.size()")
    assert (expr.node_refs, expr.dynamic_nodes) == (frozenset(), False)


def test_only_the_nodes_an_expression_names_are_passed_to_it() -> None:
    # An unrelated node whose value CEL cannot even convert is never handed over,
    # unless the expression reads `nodes` dynamically.
    context = {"nodes": {"a": {"outputs": {"x": 1}}, "junk": {"outputs": object()}}}
    assert evaluate("nodes.a.outputs.x", context) == 1
    with pytest.raises(ExpressionError, match="Conversion Error"):
        evaluate("size(nodes)", context)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("params.missing", "'params.missing': no such key 'missing'"),
        ("params.m.nope", "'params.m.nope': no such key 'nope'"),
        ("nodes.a.outputs.nope", "'nodes.a.outputs.nope': no such key 'nope'"),
        ("params.ids[5]", "'params.ids[5]': index out of bounds: 5"),
        ("1 / 0", "'1 / 0': division by zero"),
    ],
)
def test_evaluation_errors_name_the_expression(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(source)
    assert str(info.value).startswith(message)


def test_a_type_mismatch_names_the_expression_and_the_types() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("params.region + 1")
    message = str(info.value)
    assert message.startswith("'params.region + 1': ")
    assert "string + int" in message


def test_a_missing_node_in_the_context_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match=r"^'nodes\.b\.outputs': no such key 'b'$"):
        evaluate("nodes.b.outputs", {"nodes": {}})


def test_syntax_errors_are_reported_on_one_line() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("params.n >")
    message = str(info.value)
    assert message.startswith("Failed to parse expression 'params.n >'")
    assert "Syntax error" in message
    assert "\n" not in message


@pytest.mark.parametrize("source", ["${{ }}", "   ", "${{   }}"])
def test_an_empty_expression(source: str) -> None:
    with pytest.raises(ExpressionError, match=r"^empty expression$"):
        compile_expression(source)


def test_unknown_names_list_what_can_be_used() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("foo + bar.baz")
    assert str(info.value) == (
        "'foo + bar.baz': unknown name 'bar', 'foo'; "
        "expressions can use item, itemIndex, nodes, params, workflow"
    )


def test_an_unclosed_template() -> None:
    with pytest.raises(ExpressionError, match=r"^unclosed template in 'a \$\{\{ params\.n'$"):
        compile_value("a ${{ params.n")


def test_a_bad_template_inside_a_tree_is_found() -> None:
    with pytest.raises(ExpressionError, match="unknown name 'oops'"):
        compile_value({"a": [1, {"b": "x ${{ oops }}"}]})


# --- never Python eval --------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "__import__('os').getcwd()",
        "open('/etc/passwd').read()",
        "exec('1')",
        "eval('1 + 1')",
        "params.__class__",
        "params.region.upper()",
        "lambda: 1",
        "[x for x in params.ids]",
        "1; 2",
    ],
)
def test_python_style_input_is_rejected(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source).evaluate(CONTEXT)


def test_python_code_in_a_template_has_no_side_effect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    compiled = compile_value(f"${{{{ __import__('os').system('touch {marker}') }}}}")
    with pytest.raises(ExpressionError, match="Undefined variable or function: '__import__'"):
        render(compiled, CONTEXT)
    assert not marker.exists()
