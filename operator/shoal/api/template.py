"""The `WorkflowTemplate` and `ClusterWorkflowTemplate` resources: reusable DAGs.

A template holds a `WorkflowSpec` (its `parameters` are the defaults a reference may
override). Nothing runs a template by itself: a Workflow instantiates it
(`spec.workflowTemplateRef`) or a node reuses a node or the whole DAG of it
(`templateRef`); `shoal.core.templates` expands the references (docs/templates.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal.api.common import GROUP_VERSION, ApiModel, ObjectMeta
from shoal.api.workflow import WorkflowSpec

__all__ = ["ClusterWorkflowTemplate", "TemplateKind", "WorkflowTemplate"]


class WorkflowTemplate(ApiModel):
    """A reusable DAG in one namespace: Workflows of that namespace refer to it by name."""

    api_version: Literal["shoal.dev/v1alpha1"] = GROUP_VERSION
    kind: Literal["WorkflowTemplate"] = "WorkflowTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkflowSpec


class ClusterWorkflowTemplate(ApiModel):
    """A reusable DAG for every namespace (`clusterScope: true` in a reference)."""

    api_version: Literal["shoal.dev/v1alpha1"] = GROUP_VERSION
    kind: Literal["ClusterWorkflowTemplate"] = "ClusterWorkflowTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkflowSpec


TemplateKind = WorkflowTemplate | ClusterWorkflowTemplate
