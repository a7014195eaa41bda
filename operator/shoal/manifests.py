"""Reading manifests from YAML files, with errors that name the file, node and field.

Both `shoal validate`/`shoal run` and the tests go through here, so a schema error reads
the same everywhere: `wf.yaml: node 'publish': retries.limit: Input should be ...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shoal.api.cron import CronWorkflow
from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate
from shoal.api.workflow import Workflow, WorkflowSpec
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta, meta_of
from shoal.core.templates import (
    Template,
    TemplateKey,
    TemplatesNeeded,
    resolve_spec,
    uses_templates,
)
from shoal.core.validation import InvalidWorkflow, Problem, compile_workflow
from shoal.schema_messages import NODE_LISTS, problems_from
from shoal.yamlread import Document, load_documents, yaml_depth_problem

__all__ = [
    "Manifest",
    "compile_manifest",
    "load_file",
    "load_text",
    "meta_of",
    "parse_document",
    "problems_from",
    "yaml_depth_problem",
]

Resource = Workflow | CronWorkflow | WorkflowTemplate | ClusterWorkflowTemplate
KINDS: dict[str, type[Resource]] = {
    "Workflow": Workflow,
    "CronWorkflow": CronWorkflow,
    "WorkflowTemplate": WorkflowTemplate,
    "ClusterWorkflowTemplate": ClusterWorkflowTemplate,
}
Templates = Mapping[TemplateKey, Template]


@dataclass(frozen=True, slots=True)
class Manifest:
    """One parsed document and where it came from."""

    resource: Resource
    source: str
    document: Document | None = None
    """The YAML it was read from, for line and column in later errors."""

    @property
    def warnings(self) -> list[str]:
        """Scalars kubectl would read differently from YAML 1.2, one line each."""
        if self.document is None:
            return []
        return [s.describe(self.source) for s in self.document.surprises]


def parse_document(raw: Any, source: str) -> Resource:
    """Parse one YAML document into a Workflow or CronWorkflow, or raise InvalidWorkflow."""
    if not isinstance(raw, dict):
        raise InvalidWorkflow([Problem("a manifest must be a mapping")], source)
    kind = raw.get("kind")
    model = KINDS.get(str(kind))
    if model is None:
        msg = f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
        raise InvalidWorkflow([Problem(msg, field="kind")], source)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise InvalidWorkflow(problems_from(err, raw, model), source) from None


def _node_path(raw: Any, node: str) -> list[str | int] | None:
    """Where the node named `node` sits in a raw document (by name, or `#N`)."""
    for prefix in NODE_LISTS:
        nodes: Any = raw
        for key in prefix:
            nodes = nodes.get(key) if isinstance(nodes, dict) else None
        if not isinstance(nodes, list):
            continue
        for index, entry in enumerate(nodes):
            name = entry.get("name") if isinstance(entry, dict) else None
            if name == node or (not name and node == f"#{index + 1}"):
                return [*prefix, index]
    return None


def locate(problems: list[Problem], document: Document | None) -> list[Problem]:
    """The same problems, each with the line and column of its node and field."""
    if document is None:
        return problems
    located = []
    for problem in problems:
        path: list[str | int] | None = []
        if problem.node is not None:
            path = _node_path(document.raw, problem.node)
        if path is not None and problem.field and problem.field not in ("node", "document"):
            path = [*path, *problem.field.split(".")]
        where = document.positions.locate(document.raw, path) if path else None
        if where is None:
            located.append(problem)
        else:
            line, column = where
            message = problem.message + "".join(
                f" ({s.text} on this line is read by kubectl as {s.reading}; quote it)"
                for s in document.surprises
                if s.line == line
            )
            located.append(problem.replace(message=message, line=line, column=column))
    return located


def load_file(path: str | Path) -> list[Manifest]:
    """Every document in a YAML file (`---`-separated), parsed as kubectl would send it."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidWorkflow([Problem(f"cannot read: {err.strerror}")], source) from None
    except UnicodeDecodeError as err:
        raise InvalidWorkflow([Problem(f"not UTF-8 text: {err.reason}")], source) from None
    return load_text(text, source)


def load_text(text: str, source: str) -> list[Manifest]:
    """Every document in YAML text (a file's, or stdin's), errors naming `source`."""
    try:
        if (too_deep := yaml_depth_problem(text)) is not None:
            raise InvalidWorkflow([Problem(too_deep)], source)
        documents = load_documents(text, source)
    except yaml.YAMLError as err:
        raise InvalidWorkflow([_yaml_problem(err)], source) from None
    if not documents:
        raise InvalidWorkflow([Problem("no manifest in file")], source)
    manifests = []
    for document in documents:
        try:
            resource = parse_document(document.raw, source)
        except InvalidWorkflow as err:
            raise InvalidWorkflow(locate(err.problems, document), source) from None
        manifests.append(Manifest(resource, source, document))
    return manifests


def _yaml_problem(err: yaml.YAMLError) -> Problem:
    """A YAML syntax error at its line and column, without PyYAML's own file header."""
    mark = getattr(err, "problem_mark", None)
    reason = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    message = f"not valid YAML: {context + ', ' if context else ''}{reason}"
    if mark is None:
        return Problem(message)
    return Problem(message, line=mark.line + 1, column=mark.column + 1)


def compile_manifest(
    manifest: Manifest, parameters: dict[str, Any] | None = None, templates: Templates | None = None
) -> CompiledWorkflow:
    """Validate a Workflow manifest for a run; CronWorkflows validate their workflowSpec,
    templates their spec. References are resolved from `templates` (TemplatesNeeded when
    there are references and the caller has no templates to give)."""
    try:
        return _compile(manifest, parameters, templates)
    except InvalidWorkflow as err:
        raise type(err)(locate(err.problems, manifest.document), err.source) from None


def _resolved(spec: WorkflowSpec, templates: Templates | None, source: str) -> WorkflowSpec:
    if not uses_templates(spec):
        return spec
    if templates is None:
        msg = "refers to templates, which this check cannot read; the cluster checks it"
        raise TemplatesNeeded([Problem(msg, field="templateRef")], source)
    return resolve_spec(spec, templates, source).spec


def _compile(
    manifest: Manifest, parameters: dict[str, Any] | None, templates: Templates | None
) -> CompiledWorkflow:
    res = manifest.resource
    if isinstance(res, WorkflowTemplate | ClusterWorkflowTemplate):
        name = res.metadata.name or "template"
        meta = WorkflowMeta(name=name, namespace=res.metadata.namespace or "default")
        spec = _resolved(res.spec, templates, manifest.source)
        return compile_workflow(spec, meta, parameters, source=manifest.source)
    if isinstance(res, CronWorkflow):
        name = res.metadata.name or "cron"
        meta = WorkflowMeta(name=name, namespace=res.metadata.namespace or "default")
        params = {**res.spec.parameters, **(parameters or {})}
        spec = _resolved(res.spec.workflow_spec, templates, manifest.source)
        declared = {**spec.parameters, **res.spec.run_parameters()}  # scheduledTime, poll...
        spec = spec.model_copy(update={"parameters": declared})
        return compile_workflow(spec, meta, params, source=manifest.source)
    spec = _resolved(res.spec, templates, manifest.source)
    return compile_workflow(spec, meta_of(res), parameters, source=manifest.source)
