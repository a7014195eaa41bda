"""Templates on the cluster: fetched for a Workflow, resolved once, frozen in its status.

The operator resolves a Workflow's template references when it first starts the run and
records the result in `status.resolvedSpec` (with each template's resourceVersion in
`status.templates`); from then on, restarts and retries run the recorded spec, so editing
or deleting a template never changes a run that has started (docs/templates.md). The
admission webhook fetches the same way to refuse a Workflow whose template is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shoal.api.limits import MAX_TEMPLATES
from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate
from shoal.api.workflow import FINISHED_PHASES, WorkflowPhase, WorkflowSpec, WorkflowStatus
from shoal.core.resolved_spec import RESOLVED_SPEC
from shoal.core.status import status_dict
from shoal.core.templates import (
    Resolved,
    Template,
    TemplateKey,
    missing_templates,
    resolve_spec,
    uses_templates,
)
from shoal.core.validation import InvalidWorkflow, Problem
from shoal.kube.api import ApiError, KubeApi, workflows_path

__all__ = [
    "RESOLVED_SPEC",
    "fetch_templates",
    "frozen_body",
    "spec_of",
    "template_path",
]

log = logging.getLogger("shoal.templates")
_LIVE_FIELDS = ("stop", "terminate")
"""Spec fields read from the live object even when the recorded spec runs."""

EventSink = Callable[[dict[str, Any], str, str, str], None]


def template_path(key: TemplateKey, namespace: str) -> str:
    base = "/apis/shoal.dev/v1alpha1"
    cluster, name = key
    if cluster:
        return f"{base}/clusterworkflowtemplates/{name}"
    return f"{base}/namespaces/{namespace}/workflowtemplates/{name}"


def spec_of(raw: Any) -> WorkflowSpec | None:
    """The spec whose references matter in a raw object (a Workflow's, a CronWorkflow's
    workflowSpec, a template's), or None when it does not parse (validation says why)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("spec"), dict):
        return None
    spec = raw["spec"]
    if raw.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec")
    try:
        return WorkflowSpec.model_validate(spec)
    except ValidationError:
        return None


async def _fetch_one(api: KubeApi, key: TemplateKey, namespace: str) -> Template | None:
    try:
        raw = await api.get(template_path(key, namespace))
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    model = ClusterWorkflowTemplate if key[0] else WorkflowTemplate
    try:
        resource = model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        msg = f"{model.__name__} {key[1]!r} is invalid: {where}: {first['msg']}"
        raise InvalidWorkflow([Problem(msg, field="templateRef")]) from None
    meta = raw.get("metadata") or {}
    version, uid = str(meta.get("resourceVersion") or ""), str(meta.get("uid") or "")
    return Template(key[0], key[1], resource.spec, version, uid)


async def fetch_templates(
    api: KubeApi, namespace: str, spec: WorkflowSpec
) -> dict[TemplateKey, Template]:
    """Every template `spec` uses, nested ones included; missing ones are left out (the
    resolver names them). At most MAX_TEMPLATES + 1 reads, whatever the templates hold."""
    found: dict[TemplateKey, Template] = {}
    tried: set[TemplateKey] = set()
    while missing := missing_templates(spec, found) - tried:
        for key in sorted(missing):
            if len(tried) > MAX_TEMPLATES:
                return found  # the resolver reports the limit, or a missing template
            tried.add(key)
            template = await _fetch_one(api, key, namespace)
            if template is not None:
                found[key] = template
    return found


def _with_spec(body: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any]:
    live = body.get("spec") or {}
    spec = {**resolved, **{k: live[k] for k in _LIVE_FIELDS if k in live}}
    return {**body, "spec": spec}


def _record(resolved: Resolved) -> dict[str, Any]:
    return {
        RESOLVED_SPEC: resolved.spec.dump(),
        "templates": [
            {"kind": t.kind, "name": t.name, "resourceVersion": t.version, "uid": t.uid}
            for t in resolved.templates
        ],
    }


async def frozen_body(
    api: KubeApi, body: dict[str, Any], post_event: EventSink
) -> dict[str, Any] | None:
    """The body the runner runs: the recorded resolved spec, or the spec resolved now and
    recorded; None when it cannot run (phase Error and an Event already written)."""
    status = body.get("status") or {}
    recorded = status.get(RESOLVED_SPEC)
    if isinstance(recorded, dict):
        return _with_spec(body, recorded)
    spec = spec_of(body)
    if spec is None or not uses_templates(spec):
        return body  # the runner compiles it and reports what is wrong
    if status.get("phase") in FINISHED_PHASES:
        return None  # finished before anything was recorded: nothing to run
    meta = body["metadata"]
    path = workflows_path(meta["namespace"], meta["name"]) + "/status"
    try:
        templates = await fetch_templates(api, meta["namespace"], spec)
        resolved = resolve_spec(spec, templates)
    except InvalidWorkflow as err:
        message = "; ".join(p.describe() for p in err.problems)[:4096]
        post_event(body, "Warning", "TemplateUnresolved", message[:1024])
        error = status_dict(WorkflowStatus(phase=WorkflowPhase.ERROR, message=message))
        await api.merge_patch(path, {"status": error})
        return None
    record = _record(resolved)
    await api.merge_patch(path, {"status": record})
    names = ", ".join(f"{t.kind}/{t.name}@{t.version}" for t in resolved.templates)
    log.info("workflow %s/%s: resolved from %s", meta["namespace"], meta["name"], names)
    return _with_spec(body, record[RESOLVED_SPEC])
