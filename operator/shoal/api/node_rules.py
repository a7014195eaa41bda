"""The cross-field rules of a node and a spec, without pydantic.

The models' validators (`Node`, `WorkflowSpec` in `api/workflow.py`) raise what these
return, and `shoal validate`'s fast check (`shoal.fast_validate`) asks the same functions
of its read-only view of the document, so a rule has one owner whichever path judged it.
Each function reads attributes only: a model or a view (`api/model_view.py`) will do.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["OUTPUT_NAME", "file_output_problem", "node_problem", "spec_problem"]

OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
"""An output name reads as `nodes.<node>.outputs.<name>` in an expression."""


def node_problem(node: Any) -> str | None:
    """The first rule `node` breaks (its kind of work, then what it captures), or None."""
    return _kind_of_work_problem(node) or _capture_problem(node)


def _kind_of_work_problem(node: Any) -> str | None:
    if node.template_ref is not None or node.parameters is not None:
        return _template_node_problem(node)
    if node.suspend is not None or node.workflow is not None:
        return None  # core/gates.check_gate and core/children.check_child judge these
    if node.job is not None and node.command is not None:
        return "set either `job` or `command`, not both"
    if node.job is None and node.command is None and node.image is None:
        return (
            "set `job` (a registered job), `command`/`image` (a container), "
            "`suspend`, `workflow` or `templateRef`"
        )
    if node.job is not None and isinstance(node.args, list):
        return "`args` of a `job` node is an object of named arguments"
    if node.job is None and isinstance(node.args, dict):
        return "`args` of a `command` node is a list of strings"
    fan_out = node.for_each is not None or node.with_sequence is not None
    if node.item_arg is not None and not fan_out:
        return "`itemArg` needs `forEach` or `withSequence`"
    if node.parallelism is not None and not fan_out:
        return "`parallelism` on a node limits fan-out items; it needs `forEach` or `withSequence`"
    return None


def _template_node_problem(node: Any) -> str | None:
    """A `templateRef` node takes its work from the template: no `job` or `command`."""
    if node.template_ref is None:
        return "`parameters` on a node are values for its `templateRef`"
    if node.job is not None or node.command is not None:
        return "a `templateRef` node runs the template's work; set no `job`/`command`"
    return None


def _capture_problem(node: Any) -> str | None:
    if node.capture_stdout and node.job is not None:
        return "`captureStdout` is for `command`/`image` nodes; a `job` reports outputs itself"
    return file_output_problem(node)


def file_output_problem(node: Any) -> str | None:
    """Why `node.outputs` cannot be honoured, or None."""
    if not node.outputs:
        return None
    if node.command is None:
        kind = "a `job` reports outputs itself" if node.job is not None else "set `command`"
        return f"`outputs` read files a `command` writes; {kind}"
    bad = sorted(name for name in node.outputs if not OUTPUT_NAME.match(name))
    if bad:
        return (
            f"output name {bad[0]!r} must be letters, digits and `_` (not starting with a "
            "digit), so that an expression can read it as outputs.<name>"
        )
    if node.capture_stdout and "result" in node.outputs:
        return "`result` is the captured stdout (`captureStdout`); name the file output otherwise"
    return None


def spec_problem(spec: Any) -> str | None:
    """Nodes or a `workflowTemplateRef`, exactly one of them."""
    if not spec.nodes and spec.workflow_template_ref is None:
        return "set `nodes` (at least one) or `workflowTemplateRef`"
    if spec.nodes and spec.workflow_template_ref is not None:
        return "`workflowTemplateRef` brings the template's nodes; set no `nodes`"
    return None
