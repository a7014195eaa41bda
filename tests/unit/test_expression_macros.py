"""CEL comprehension macros bind their own variables; those are not unknown names."""

from __future__ import annotations

import pytest

from shoal.core.expressions import ExpressionError, compile_expression

CONTEXT = {
    "params": {"regions": ["a", "b"], "tier": "gold"},
    "nodes": {"scan": {"phase": "Succeeded", "outputs": {"ids": [1, 2, 3, 4]}}},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${{ nodes.scan.outputs.ids.filter(i, i % 2 == 0) }}", [2, 4]),
        ("nodes.scan.outputs.ids.map(i, i * 10)", [10, 20, 30, 40]),
        ("nodes.scan.outputs.ids.all(x, x > 0)", True),
        ("nodes.scan.outputs.ids.exists_one(x, x == 3)", True),
        (
            "params.regions.map(r, {'region': r, 'tier': params.tier})",
            [{"region": "a", "tier": "gold"}, {"region": "b", "tier": "gold"}],
        ),
    ],
)
def test_macro_variables_are_bound(source: str, expected: object) -> None:
    expr = compile_expression(source)
    assert expr.evaluate(CONTEXT) == expected
    assert expr.node_refs <= {"scan"}


def test_a_free_variable_inside_a_macro_is_still_unknown() -> None:
    with pytest.raises(ExpressionError, match="unknown name 'j'") as err:
        compile_expression("nodes.scan.outputs.ids.all(x, x > j)")
    assert "must be written" not in str(err.value)


def test_hyphenated_node_name_gets_the_index_hint() -> None:
    with pytest.raises(ExpressionError, match=r"nodes\['data-proxy'\] or nodes\.data_proxy"):
        compile_expression("nodes.data-proxy.outputs.endpoint")
