"""References from a Workflow (or one of its nodes) to a WorkflowTemplate or a
ClusterWorkflowTemplate (docs/templates.md).

Kept apart from `api/template.py` because `api/workflow.py` needs these small models
while the template kinds need `WorkflowSpec`: one module each way, no import cycle.
"""

from __future__ import annotations

from pydantic import Field

from shoal.api.common import DNS_LABEL, DNS_SUBDOMAIN, ApiModel
from shoal.api.limits import MAX_NAME_LENGTH

__all__ = ["TemplateRef", "WorkflowTemplateRef"]


class WorkflowTemplateRef(ApiModel):
    """`spec.workflowTemplateRef`: run a template's whole DAG as this Workflow."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """The template's name: a WorkflowTemplate in the Workflow's namespace, or a
    ClusterWorkflowTemplate with `clusterScope: true`."""
    cluster_scope: bool = False
    """Read a ClusterWorkflowTemplate (cluster-wide) instead of a WorkflowTemplate."""


class TemplateRef(ApiModel):
    """A node's `templateRef`: reuse one node of a template, or its whole DAG."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """The template's name (namespaced, or cluster-wide with `clusterScope: true`)."""
    node: str | None = Field(None, max_length=MAX_NAME_LENGTH, pattern=DNS_LABEL)
    """One node of the template to run as this node; absent, the template's whole DAG
    runs in this node's place, its nodes named `<this node>-<template node>`."""
    cluster_scope: bool = False
    """Read a ClusterWorkflowTemplate instead of a WorkflowTemplate."""
