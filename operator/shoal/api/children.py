"""Child workflows: a node that runs a whole Workflow and takes its outputs.

The child's spec is inline (`workflow.spec`); a template reference is the hook left for
WorkflowTemplates (`workflow.templateRef`, refused until they exist). The spec is kept as
an object here, not as a nested `WorkflowSpec` schema, because a CRD schema cannot
recurse; compilation (`core/children.check_child`) validates it as a WorkflowSpec and
names the field that is wrong.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shoal.api.common import ApiModel
from shoal.api.limits import MAX_PROPERTIES, MAX_STRING_LENGTH

__all__ = ["ChildWorkflow"]


class ChildWorkflow(ApiModel):
    """`workflow` on a node: run this Workflow as the node (cluster only)."""

    spec: dict[str, Any] | None = None
    """The child's WorkflowSpec, inline."""
    template_ref: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    """Reserved for WorkflowTemplates (not supported yet: refused with a message)."""
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    """The child's parameters (templates allowed: `${{ nodes.a.outputs.x }}`), merged over
    its spec's defaults. The node's outputs are the child's node outputs by node name."""
