"""Child workflows, the pure part: what a child node may say, how deep children nest,
and what of a finished child becomes the node's outcome.

The planner runs a child node as a plain node with one task: its `args` are the child's
parameters, rendered like any node's. The Kubernetes executor turns that task into a
Workflow (kube/children.py) instead of a Job; the local executor refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal.api.limits import MAX_CHILD_DEPTH

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:  # `shoal validate`'s fast check calls check_child without pydantic
    from typing import Any

    from shoal.api.workflow import Node

__all__ = ["LOCAL_REFUSAL", "check_child", "child_outcome", "child_outputs", "nesting"]

LOCAL_REFUSAL = (
    "child workflows run on a cluster only (`shoal submit`); `shoal run` does not run them "
    "(docs/flow-control.md)"
)

_NOT_ON_A_CHILD = (
    ("job", "job"),
    ("command", "command"),
    ("image", "image"),
    ("args", "args"),
    ("for_each", "forEach"),
    ("with_sequence", "withSequence"),
    ("suspend", "suspend"),
)


def check_child(node: Node) -> list[tuple[str, str]]:
    """(message, field) for each problem of a child-workflow node."""
    child = node.workflow
    if child is None:
        return []
    problems = [
        (f"a `workflow` node runs a child workflow; remove `{field}`", field)
        for attr, field in _NOT_ON_A_CHILD
        if getattr(node, attr) is not None
    ]
    if node.capture_stdout:
        problems.append(("a `workflow` node has no stdout to capture", "captureStdout"))
    if child.template_ref is not None:
        msg = "WorkflowTemplates are not supported yet: give the child's `spec` inline"
        problems.append((msg, "workflow.templateRef"))
        return problems
    if child.spec is None:
        return [*problems, ("the child workflow needs `spec`", "workflow.spec")]
    from pydantic import ValidationError  # a child present: the models are loaded already

    from shoal.api.workflow import WorkflowSpec

    try:
        WorkflowSpec.model_validate(child.spec)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        problems.append((f"{first['msg']}", f"workflow.spec.{where}" if where else "workflow.spec"))
        return problems
    depth = 1 + nesting(child.spec)
    if depth > MAX_CHILD_DEPTH:
        msg = f"child workflows nest {depth} deep (limit {MAX_CHILD_DEPTH}, docs/security.md)"
        problems.append((msg, "workflow.spec"))
    return problems


def nesting(spec: Mapping[str, Any], _level: int = 0) -> int:
    """How deep the inline children of `spec` nest (0: it has none); stops counting past
    the limit, so a hostile manifest costs at most MAX_CHILD_DEPTH levels of walking."""
    if _level > MAX_CHILD_DEPTH:
        return 0
    deepest = 0
    for node in spec.get("nodes") or []:
        child = node.get("workflow") if isinstance(node, Mapping) else None
        inner = child.get("spec") if isinstance(child, Mapping) else None
        if isinstance(inner, Mapping):
            deepest = max(deepest, 1 + nesting(inner, _level + 1))
    return deepest


def child_outputs(status: Mapping[str, Any]) -> dict[str, Any]:
    """A finished child's outputs as the parent node's: each child node's outputs under
    its name (`nodes.deploy.outputs.report.total` in the parent)."""
    nodes = status.get("nodes")
    if not isinstance(nodes, Mapping):
        return {}
    return {
        name: entry["outputs"]
        for name, entry in nodes.items()
        if isinstance(name, str)
        and isinstance(entry, Mapping)
        and isinstance(entry.get("outputs"), dict)
    }


def child_outcome(name: str, status: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the child succeeded, and the parent node's message about it."""
    phase = status.get("phase")
    message = status.get("message")
    text = f"child workflow {name} {phase}"
    if isinstance(message, str) and message:
        text += f": {message[:1024]}"
    return phase == "Succeeded", text
