"""The depth check every manifest goes through first runs on libyaml when PyYAML has it
(it is most of the YAML cost of `shoal run`'s start-up), yet errors read as before."""

from __future__ import annotations

import pytest
import yaml

from shoal.api.limits import MAX_DECODE_DEPTH
from shoal.core.validation import InvalidWorkflow
from shoal.manifests import load_text, yaml_depth_problem

BAD = "kind: Workflow\nspec:\n  nodes:\n  - {name: a, job: j\n"


@pytest.mark.parametrize("levels", [MAX_DECODE_DEPTH + 1, 3000])  # libyaml stops at 1,000
def test_too_deep_text_is_refused_before_the_loader_recurses(levels: int) -> None:
    text = "[" * levels + "]" * levels
    assert yaml_depth_problem(text) == (
        f"nests deeper than {MAX_DECODE_DEPTH} levels (limit {MAX_DECODE_DEPTH})"
    )
    assert yaml_depth_problem("[" * MAX_DECODE_DEPTH + "]" * MAX_DECODE_DEPTH) is None


def test_a_syntax_error_is_worded_by_the_python_loader_with_or_without_libyaml() -> None:
    with pytest.raises(yaml.YAMLError) as python:
        yaml.load(BAD, Loader=yaml.SafeLoader)
    problem = getattr(python.value, "problem", None)
    assert problem
    with pytest.raises(InvalidWorkflow) as refused:
        load_text(BAD, "bad.yaml")
    assert str(refused.value).startswith("bad.yaml:5:1: not valid YAML: ")
    assert problem in str(refused.value)
