"""Templates in code (docs/templates.md): build a WorkflowTemplate or a
ClusterWorkflowTemplate with the Workflow builder, and reference one from a node
(`wf.template(...)`) or from a whole Workflow (`Workflow(workflow_template_ref=...)`).

A template builder is a `Workflow` builder whose `build()` gives the template kind, so
nodes, parameters and every setting are written the same way; it validates as `shoal
template lint` does, and renders to YAML, but does not run by itself.
"""

from __future__ import annotations

from typing import Any

from shoal.api.template import ClusterWorkflowTemplate as ClusterTemplateModel
from shoal.api.template import WorkflowTemplate as TemplateModel
from shoal.sdk.builder import Workflow
from shoal.sdk.refs import SdkError

__all__ = ["ClusterWorkflowTemplate", "WorkflowTemplate"]


class WorkflowTemplate(Workflow):
    """A WorkflowTemplate built in code (the same builder as `Workflow`)."""

    cluster_scope = False

    def build(self) -> TemplateModel:  # type: ignore[override]
        return TemplateModel(metadata=self.metadata, spec=self.spec())

    def run_local(self, *args: Any, **kwargs: Any) -> Any:
        raise SdkError(
            f"a template does not run by itself: run a Workflow with "
            f"workflow_template_ref={{'name': {self.metadata.name!r}}}"
        )


class ClusterWorkflowTemplate(WorkflowTemplate):
    """A ClusterWorkflowTemplate built in code: referenced with `clusterScope: true`."""

    cluster_scope = True

    def build(self) -> ClusterTemplateModel:  # type: ignore[override]
        return ClusterTemplateModel(metadata=self.metadata, spec=self.spec())
