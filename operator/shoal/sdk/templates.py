"""Templates in code (docs/templates.md): build a WorkflowTemplate or a
ClusterWorkflowTemplate with the Workflow builder, and reference one from a node
(`wf.template(...)`) or from a whole Workflow (`Workflow(workflow_template_ref=...)`).

A template builder is a `Workflow` builder whose `build()` gives the template kind, so
nodes, parameters and every setting are written the same way; it validates as `shoal
template lint` does, and renders to YAML, but does not run by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from shoal.api.template import ClusterWorkflowTemplate as ClusterTemplateModel
from shoal.api.template import WorkflowTemplate as TemplateModel
from shoal.api.workflow import Node
from shoal.core.templates import Template, TemplateKey
from shoal.sdk.builder import Step, Workflow, _references, model_errors
from shoal.sdk.refs import SdkError, templated

__all__ = ["ClusterWorkflowTemplate", "TemplateStep", "WorkflowTemplate", "template_set"]


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


TemplateLike = WorkflowTemplate | TemplateModel | ClusterTemplateModel


def template_set(templates: Iterable[TemplateLike]) -> dict[TemplateKey, Template]:
    """The resolver's view of templates given to `validate`/`run_local`."""
    found: dict[TemplateKey, Template] = {}
    for item in templates:
        model = item.build() if isinstance(item, WorkflowTemplate) else item
        cluster = isinstance(model, ClusterTemplateModel)
        template = Template(cluster, model.metadata.name or "", model.spec)
        found[template.key] = template
    return found


class TemplateStep(Step):
    """A node that reuses one node, or the whole DAG, of a template."""

    def __init__(
        self,
        name: str,
        template: str | WorkflowTemplate,
        *,
        node: str | None = None,
        cluster_scope: bool | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        if isinstance(template, WorkflowTemplate):
            scope = template.cluster_scope if cluster_scope is None else cluster_scope
            template_name = template.metadata.name or ""
        else:
            scope, template_name = bool(cluster_scope), template
        self._ref = {"name": template_name, "node": node, "cluster_scope": scope}
        self._parameters = dict(parameters or {})

    def build(self, known: list[str]) -> Node:
        fields: dict[str, Any] = {"template_ref": self._ref}
        if self._parameters:
            fields["parameters"] = templated(self._parameters)
        fields |= self._settings()
        wanted = set(self._after) | _references(fields)
        depends = [n for n in known if n in wanted and n != self.name]
        try:
            return Node.model_validate({"name": self.name, **fields, "depends_on": depends})
        except ValidationError as err:
            raise SdkError(f"node {self.name!r}: {model_errors(err)}") from None
