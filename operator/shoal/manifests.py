"""Reading manifests from YAML files, with errors that name the file, node and field.

Both `shoal validate`/`shoal run` and the tests go through here, so a schema error reads
the same everywhere: `wf.yaml: node 'publish': retries.limit: Input should be ...`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shoal.api.cron import CronWorkflow
from shoal.api.limits import MAX_DECODE_DEPTH
from shoal.api.workflow import Workflow
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.validation import InvalidWorkflow, Problem, compile_workflow

Resource = Workflow | CronWorkflow
KINDS: dict[str, type[Workflow] | type[CronWorkflow]] = {
    "Workflow": Workflow,
    "CronWorkflow": CronWorkflow,
}


@dataclass(frozen=True, slots=True)
class Manifest:
    """One parsed document and where it came from."""

    resource: Resource
    source: str


# Where a DAG's node list sits: in a Workflow, and in a CronWorkflow's workflowSpec.
_NODE_LISTS = (("spec", "nodes"), ("spec", "workflowSpec", "nodes"))


def _field_path(loc: Sequence[int | str], raw: Any) -> tuple[str | None, str]:
    """Turn a pydantic error location into (node name, dotted field path)."""
    node: str | None = None
    parts = [str(p) for p in loc]
    for prefix in _NODE_LISTS:
        n = len(prefix)
        if len(parts) > n and tuple(parts[:n]) == prefix:
            index = loc[n]
            nodes: Any = raw
            for key in prefix:
                nodes = nodes.get(key) if isinstance(nodes, dict) else None
            if isinstance(index, int) and isinstance(nodes, list) and index < len(nodes):
                name = nodes[index].get("name") if isinstance(nodes[index], dict) else None
                node = str(name) if name else f"#{index + 1}"
            return node, ".".join(parts[n + 1 :]) or "node"
    return None, ".".join(parts) or "document"


def problems_from(error: ValidationError, raw: Any) -> list[Problem]:
    """One Problem per pydantic error, located by node name where possible."""
    problems = []
    for item in error.errors():
        # Drop pydantic's union branch markers (e.g. `list[...]`) from the location.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and "[" in p)]
        node, field = _field_path(loc, raw)
        message = item["msg"].removeprefix("Value error, ")
        problems.append(Problem(message, node, field))
    return problems


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
        raise InvalidWorkflow(problems_from(err, raw), source) from None


def yaml_depth_problem(text: str, limit: int = MAX_DECODE_DEPTH) -> str | None:
    """Why `text` nests too deep to load, or None.

    PyYAML builds documents recursively, so a 3,000-deep flow mapping raises
    RecursionError; its event parser is iterative, so the depth is measured on events first.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit:
                return f"nests deeper than {limit} levels (limit {limit})"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def load_file(path: str | Path) -> list[Manifest]:
    """Every document in a YAML file (`---`-separated), parsed."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidWorkflow([Problem(f"cannot read: {err.strerror}")], source) from None
    try:
        if (too_deep := yaml_depth_problem(text)) is not None:
            raise InvalidWorkflow([Problem(too_deep)], source)
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise InvalidWorkflow([Problem(f"not valid YAML: {err}")], source) from None
    if not docs:
        raise InvalidWorkflow([Problem("no manifest in file")], source)
    return [Manifest(parse_document(doc, source), source) for doc in docs]


def meta_of(workflow: Workflow, default_name: str = "workflow") -> WorkflowMeta:
    """The run identity expressions see, from the manifest's metadata."""
    md = workflow.metadata
    name = md.name or (md.generate_name or f"{default_name}-").rstrip("-")
    return WorkflowMeta(name=name, namespace=md.namespace or "default", uid=md.uid or "")


def compile_manifest(
    manifest: Manifest, parameters: dict[str, Any] | None = None
) -> CompiledWorkflow:
    """Validate a Workflow manifest for a run; CronWorkflows validate their workflowSpec."""
    res = manifest.resource
    if isinstance(res, CronWorkflow):
        name = res.metadata.name or "cron"
        meta = WorkflowMeta(name=name, namespace=res.metadata.namespace or "default")
        params = {**res.spec.parameters, **(parameters or {})}
        spec = res.spec.workflow_spec
        declared = {**spec.parameters, **res.spec.run_parameters()}  # scheduledTime, poll...
        spec = spec.model_copy(update={"parameters": declared})
        return compile_workflow(spec, meta, params, source=manifest.source)
    return compile_workflow(res.spec, meta_of(res), parameters, source=manifest.source)
