"""Child workflows: what validation refuses (naming node and field), how deep children
may nest, how a child's end becomes its parent node's, and that only the parent's own
children count (a label alone is a claim, not proof)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.api.limits import MAX_CHILD_DEPTH
from shoal.core.children import child_outcome, child_outputs, nesting
from shoal.core.decisions import KillTask, StartTask
from shoal.core.state import TaskFinished
from shoal.core.validation import InvalidWorkflow
from shoal.kube.api import ApiError
from shoal.kube.children import LABEL_DEPTH, ChildWorkflows, depth_of
from tests.unit.simulator import compile_spec

CHILD = {"nodes": [{"name": "inner", "job": "x"}]}


def parent_spec(**node: Any) -> dict[str, Any]:
    nodes = [
        {"name": "a", "job": "a"},
        {"name": "kid", "dependsOn": ["a"], "workflow": {"spec": CHILD}, **node},
    ]
    return {"image": "w:1", "nodes": nodes}


def nested(levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodes": [{"name": "leaf", "job": "x"}]}
    for _ in range(levels):
        spec = {"nodes": [{"name": "n", "workflow": {"spec": spec}}]}
    return spec


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"job": "x"}, "job"), ({"forEach": [1]}, "forEach"), ({"suspend": {}}, "suspend")],
)
def test_a_child_node_with_other_work_is_refused(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidWorkflow) as err:
        compile_spec(parent_spec(**extra))
    assert "'kid'" in str(err.value)
    assert f"remove `{field}`" in str(err.value)


def test_a_bad_child_spec_and_a_template_ref_are_named() -> None:
    with pytest.raises(InvalidWorkflow, match=r"workflow\.spec\.nodes"):
        compile_spec(parent_spec(workflow={"spec": {"nodes": "nope"}}))
    with pytest.raises(InvalidWorkflow, match="WorkflowTemplates are not supported yet"):
        compile_spec(parent_spec(workflow={"templateRef": "t"}))


def test_children_nest_at_most_the_limit() -> None:
    assert nesting(nested(2)) == 2
    compile_spec({"image": "w:1", "nodes": nested(MAX_CHILD_DEPTH)["nodes"]})
    with pytest.raises(InvalidWorkflow, match=f"limit {MAX_CHILD_DEPTH}"):
        compile_spec({"image": "w:1", "nodes": nested(MAX_CHILD_DEPTH + 1)["nodes"]})


def test_the_parameters_are_rendered_like_a_jobs_args() -> None:
    wf = compile_spec(parent_spec(workflow={"spec": CHILD, "parameters": {"p": "${{ 1 + 1 }}"}}))
    from shoal.core.planner import advance
    from shoal.core.state import RunState, record_finished

    state = RunState.new(list(wf.order))
    [a] = [d for d in advance(wf, state, 0.0).decisions if isinstance(d, StartTask)]
    record_finished(state, TaskFinished("a", 0, 1, True, 1.0))
    [kid] = [d for d in advance(wf, state, 1.0).decisions if isinstance(d, StartTask)]
    assert a.node == "a"
    assert kid.args == {"p": 2}


def test_a_childs_outputs_and_outcome() -> None:
    status = {
        "phase": "Failed",
        "message": "node 'x' failed: boom",
        "nodes": {"x": {"phase": "Failed"}, "y": {"outputs": {"v": 1}}, "z": {"outputs": "bad"}},
    }
    assert child_outputs(status) == {"y": {"v": 1}}
    assert child_outcome("c", status) == (False, "child workflow c Failed: node 'x' failed: boom")
    assert child_outcome("c", {"phase": "Succeeded"})[0]


class FakeApi:
    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.created: list[dict[str, Any]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.existing = existing

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if self.existing is not None:
            return None
        self.created.append(body)
        return body

    async def get(self, path: str) -> dict[str, Any]:
        """The existing object, under the name asked for (as the API server answers)."""
        assert self.existing is not None
        meta = {**self.existing["metadata"], "name": path.rsplit("/", 1)[-1]}
        return {**self.existing, "metadata": meta}

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patched.append((path, body))
        return body


PARENT = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {}}}


def children(api: Any, parent: dict[str, Any] = PARENT) -> tuple[ChildWorkflows, list[Any]]:
    seen: list[TaskFinished] = []
    return ChildWorkflows(api, parent, seen.append), seen


def start(kids: ChildWorkflows, attempt: int = 1) -> None:
    wf = compile_spec(parent_spec(workflow={"spec": CHILD, "parameters": {"p": 1}}))
    task = StartTask("kid", 0, attempt, args={"p": 1})
    asyncio.run(kids.start(wf, task))


def test_the_child_is_owned_labelled_with_its_depth_and_ends_the_task() -> None:
    api = FakeApi()
    kids, seen = children(api)
    start(kids)
    [made] = api.created
    assert made["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert made["metadata"]["labels"][LABEL_DEPTH] == "1"
    assert made["spec"]["parameters"] == {"p": 1}
    name = made["metadata"]["name"]
    kids.observe("MODIFIED", {"metadata": {"name": "other"}, "status": {"phase": "Succeeded"}})
    assert seen == []
    finished = {**made, "status": {"phase": "Succeeded", "nodes": {"inner": {"outputs": {"v": 2}}}}}
    kids.observe("MODIFIED", finished)
    [event] = seen
    assert (event.node, event.succeeded, event.outputs) == ("kid", True, {"inner": {"v": 2}})
    kids.observe("MODIFIED", finished)  # reported once
    assert len(seen) == 1
    assert name.startswith("p-kid-")


def test_a_workflow_of_that_name_not_owned_by_the_parent_fails_the_node() -> None:
    stranger = {"metadata": {"name": "x", "namespace": "ns", "ownerReferences": []}}
    kids, seen = children(FakeApi(existing=stranger))
    start(kids)
    [event] = seen
    assert not event.succeeded
    assert "not this workflow's child" in event.message


def test_past_the_depth_limit_no_child_is_created() -> None:
    deep = {"metadata": {**PARENT["metadata"], "labels": {LABEL_DEPTH: str(MAX_CHILD_DEPTH)}}}
    api = FakeApi()
    kids, seen = children(api, deep)
    start(kids)
    assert api.created == []
    assert f"deeper than {MAX_CHILD_DEPTH}" in seen[0].message
    assert depth_of({LABEL_DEPTH: "nonsense"}) == MAX_CHILD_DEPTH


def test_a_killed_task_stops_or_terminates_its_child() -> None:
    api = FakeApi()
    kids, _ = children(api)
    start(kids)
    kill = KillTask("kid", 0, 1, "stopped (spec.stop)")
    assert kids.owns(kill)
    asyncio.run(kids.stop(kill, terminate=True))
    [(path, patch)] = api.patched
    assert patch == {"spec": {"terminate": True}}
    assert path.endswith(api.created[0]["metadata"]["name"])


def test_a_create_refusal_fails_the_node_with_the_reason() -> None:
    class Refusing(FakeApi):
        async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
            raise ApiError(403, "Forbidden", "cannot create workflows")

    kids, seen = children(Refusing())
    start(kids)
    assert "cannot create workflows" in seen[0].message
