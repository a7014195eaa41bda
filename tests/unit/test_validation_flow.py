"""Compile-time checks of `spec.onExit` and of the exit-handler-only `workflow` fields."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.core.validation import InvalidWorkflow, Problem
from tests.unit.simulator import workflow


def problems(*nodes: dict[str, Any], **spec: Any) -> list[tuple[str | None, str | None, str]]:
    with pytest.raises(InvalidWorkflow) as err:
        workflow(*nodes, **spec)
    found: list[Problem] = err.value.problems
    return [(p.node, p.field, p.message) for p in found]


def test_on_exit_must_name_a_node_of_the_workflow() -> None:
    assert problems({"name": "a"}, {"name": "notify"}, onExit="notfy") == [
        (None, "onExit", "names unknown node 'notfy' (did you mean 'notify'?)")
    ]


def test_the_exit_node_takes_no_depends_on() -> None:
    assert problems({"name": "a"}, {"name": "notify", "dependsOn": ["a"]}, onExit="notify") == [
        (
            "notify",
            "dependsOn",
            "the onExit node runs after every other node; it takes no dependsOn",
        )
    ]


def test_the_exit_node_takes_no_run_policy() -> None:
    [(node, field, _)] = problems({"name": "notify", "runPolicy": "onFailure"}, onExit="notify")
    assert (node, field) == ("notify", "runPolicy")


def test_no_node_may_depend_on_the_exit_node() -> None:
    assert problems(
        {"name": "notify"}, {"name": "b", "dependsOn": ["notify"]}, onExit="notify"
    ) == [
        (
            "b",
            "dependsOn",
            "depends on 'notify', the onExit node, which runs after every other node",
        )
    ]


@pytest.mark.parametrize(
    "expr",
    ["workflow.status == 'Failed'", "size(workflow.failures) > 0", "workflow['duration'] > 1.0"],
)
def test_only_the_exit_node_reads_the_run_outcome(expr: str) -> None:
    [(node, field, message)] = problems({"name": "a", "when": expr})
    assert (node, field) == ("a", "when")
    assert message.endswith("which only the onExit node sees")
    # The exit handler itself may read them.
    workflow({"name": "a"}, {"name": "notify", "when": expr}, onExit="notify")


def test_the_exit_node_reads_every_node_without_depending_on_it() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "notify", "args": {"p": "${{ nodes.a.phase }}"}},
        onExit="notify",
    )
    assert wf.on_exit == "notify"
    assert wf.nodes["notify"].deps == ()
