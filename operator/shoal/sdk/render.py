"""Rendering built resources to manifests, and validating them as `shoal validate` does.

`model_dump(exclude_defaults=True)` drops `apiVersion` and `kind` (they are defaults);
rendering puts them back first, keeps the models' field order, writes integral floats
as the API server stores them (`1.0` as `1`) and quotes every string kubectl would read
as something else (`y`, `0x10`), so render -> parse -> render gives the same text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import yaml

from shoal.api.cron import CronWorkflow
from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate
from shoal.api.workflow import Node, PodSettings, Workflow
from shoal.core.compiled import CompiledWorkflow
from shoal.core.templates import Template, TemplateKey
from shoal.manifests import Manifest, compile_manifest, parse_document
from shoal.yamlread import go_scalar, load_documents

__all__ = [
    "Buildable",
    "ResourceModel",
    "parse_yaml",
    "resource_of",
    "template_set",
    "to_dict",
    "to_yaml",
    "validate",
]

ResourceModel = Workflow | CronWorkflow | WorkflowTemplate | ClusterWorkflowTemplate


class Buildable(Protocol):
    """A builder of the SDK: anything with `build()` returning an API model."""

    def build(self) -> ResourceModel: ...


def resource_of(obj: Buildable | ResourceModel) -> ResourceModel:
    """The API model of a builder, or the model itself."""
    models = Workflow | CronWorkflow | WorkflowTemplate | ClusterWorkflowTemplate
    return obj if isinstance(obj, models) else obj.build()


def _json_number(value: Any) -> Any:
    """Integral floats as ints, everywhere: what the API server stores for `8.0`."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def _alias(name: str) -> str:
    return Node.model_fields[name].alias or name


NODE_ORDER = [_alias(f) for f in Node.model_fields if f not in PodSettings.model_fields] + [
    _alias(f) for f in PodSettings.model_fields
]
"""A node's keys as people read them: what it is (name, job, args...) before pod settings."""


def _ordered_nodes(spec: dict[str, Any]) -> None:
    nodes = spec.get("nodes", [])
    spec["nodes"] = [{k: n[k] for k in NODE_ORDER if k in n} for n in nodes]


def to_dict(obj: Buildable | ResourceModel) -> dict[str, Any]:
    """The manifest as JSON-like data: apiVersion and kind first, defaults left out."""
    res = resource_of(obj)
    body = res.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    body.pop("apiVersion", None)
    body.pop("kind", None)
    spec = body["spec"]
    _ordered_nodes(spec.get("workflowSpec", spec))
    for part in (spec, spec.get("workflowSpec") or {}):
        if part.get("nodes") == [] and "workflowTemplateRef" in part:
            del part["nodes"]  # the template brings them
    head: dict[str, Any] = {"apiVersion": res.api_version, "kind": res.kind}
    normalized: dict[str, Any] = _json_number(head | body)
    return normalized


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors, strings quoted whenever kubectl would not read them back."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_BREAKS = frozenset("\r\x85\u2028\u2029")
"""Characters YAML reads as line breaks: only a double-quoted scalar keeps them as they are."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if any(c in _BREAKS or (not c.isprintable() and c != "\n") for c in text):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    if text and go_scalar(text) != text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
    return dumper.represent_str(text)


_Dumper.add_representer(str, _represent_str)


def to_yaml(obj: Buildable | ResourceModel) -> str:
    """The manifest as YAML text, ready for `kubectl apply -f` or `shoal run`."""
    return yaml.dump(to_dict(obj), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def parse_yaml(text: str, source: str = "<sdk>") -> ResourceModel:
    """One manifest read as `shoal validate` reads it (kubectl's scalar rules)."""
    documents = load_documents(text, source)
    if len(documents) != 1:
        raise ValueError(f"{source}: expected one document, found {len(documents)}")
    return parse_document(documents[0].raw, source)


def template_set(templates: Iterable[Any]) -> dict[TemplateKey, Template]:
    """The resolver's view of the templates given to `validate`/`run_local` (builders or
    models)."""
    found: dict[TemplateKey, Template] = {}
    for item in templates:
        model = (
            item if isinstance(item, WorkflowTemplate | ClusterWorkflowTemplate) else item.build()
        )
        cluster = isinstance(model, ClusterWorkflowTemplate)
        template = Template(cluster, model.metadata.name or "", model.spec)
        found[template.key] = template
    return found


def validate(
    obj: Buildable | ResourceModel,
    params: dict[str, Any] | None = None,
    templates: Iterable[Any] = (),
) -> CompiledWorkflow:
    """The same compile as `shoal validate`/`shoal run`; InvalidWorkflow lists problems.
    `templates` (builders or models) are those its references may name."""
    res = resource_of(obj)
    source = f"<sdk {res.kind} {res.metadata.name or res.metadata.generate_name or ''}>"
    given = template_set(templates) or None  # none: TemplatesNeeded names the references
    return compile_manifest(Manifest(res, source), params, given)
