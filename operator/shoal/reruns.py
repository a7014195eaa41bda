"""A new run made from an old one: a resubmission (any past Workflow, live or archived)
and a CronWorkflow's manual trigger.

Shared by the CLI (`shoal resubmit`, `shoal trigger`) and the REST API, so both build
the same object, validate it the same way and name it the same way (a trigger with an
idempotency key gets a name derived from the key: the API server's AlreadyExists is the
lock that makes a repeated trigger find the first run instead of creating a second).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = [
    "FROM",
    "FROM_UID",
    "KEY_ANNOTATION",
    "MANUAL_ANNOTATION",
    "SHOAL_PREFIX",
    "build_manual_run",
    "check_cron_run",
    "manual_run_name",
    "resubmission",
    "templates_spec",
    "validate_resubmission",
]

FROM = "shoal.dev/resubmitted-from"
"""Label: the original's name (when it fits a label value). Annotation: namespace/name."""
FROM_UID = "shoal.dev/resubmitted-from-uid"
SHOAL_PREFIX = "shoal.dev/"
MANUAL_ANNOTATION = "shoal.dev/trigger"
KEY_ANNOTATION = "shoal.dev/idempotency-key-sha256"
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _prefix(name: str, given: str | None) -> str:
    if given:
        return given
    return name[:200].rstrip("-.") + "-"


def resubmission(
    source: dict[str, Any],
    params: dict[str, Any],
    *,
    new_name: str | None = None,
    generate_name: str | None = None,
) -> dict[str, Any]:
    """The Workflow to create from `source` (a live or archived Workflow object).

    Its spec as it ran, with `params` merged into the parameters and any stop request
    cleared; the source's own labels except Shoal's (a cron's label would make the copy
    count as one of its scheduled runs); no annotations but where it came from.
    """
    meta = source["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    spec = copy.deepcopy(source.get("spec") or {})
    spec.pop("stop", None)
    spec.pop("terminate", None)
    spec["parameters"] = {**(spec.get("parameters") or {}), **params}
    if not spec["parameters"]:
        del spec["parameters"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if not k.startswith(SHOAL_PREFIX)}
    if _LABEL_VALUE.match(name):
        labels[FROM] = name
    annotations = {FROM: f"{namespace}/{name}"}
    if meta.get("uid"):
        annotations[FROM_UID] = str(meta["uid"])
    new_meta: dict[str, Any] = {
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if new_name:
        new_meta["name"] = new_name
    else:
        new_meta["generateName"] = _prefix(name, generate_name)
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": new_meta,
        "spec": spec,
    }


def validate_resubmission(body: dict[str, Any], params: dict[str, Any], source: str) -> None:
    """The checks `shoal submit` makes; raises InvalidWorkflow. A spec that refers to
    templates is checked against them by the admission webhook and the operator."""
    from shoal.core.templates import TemplatesNeeded
    from shoal.manifests import Manifest, compile_manifest, parse_document

    with contextlib.suppress(TemplatesNeeded):
        compile_manifest(Manifest(parse_document(body, source), source), params)


def manual_run_name(cron: str, key: str | None) -> str | None:
    """`<cron>-manual-<hash of key>`, or None for a server-generated name (no key)."""
    if key is None:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{cron[: 253 - 20].rstrip('-.')}-manual-{digest}"


def templates_spec(cron: dict[str, Any], source: str) -> Any:
    """The WorkflowSpec a CronWorkflow stamps (what its template references are read
    from); raises InvalidWorkflow naming `source` for a malformed CronWorkflow."""
    from shoal.manifests import Manifest, parse_document

    return Manifest(parse_document(cron, source), source).resource.spec.workflow_spec  # type: ignore[union-attr]


def check_cron_run(
    cron: dict[str, Any],
    params: dict[str, Any],
    source: str,
    templates: Mapping[Any, Any] | None = None,
) -> None:
    """The checks `shoal run` makes on a CronWorkflow's run; raises InvalidWorkflow, so
    nothing is created for bad input. Without `templates`, a spec that refers to
    templates is left to the admission webhook and the operator to check against them."""
    from shoal.core.templates import TemplatesNeeded
    from shoal.manifests import Manifest, compile_manifest, parse_document

    with contextlib.suppress(TemplatesNeeded):
        compile_manifest(Manifest(parse_document(cron, source), source), params, templates)


def build_manual_run(
    cron: dict[str, Any], params: dict[str, Any], key: str | None, now: datetime
) -> dict[str, Any]:
    """The Workflow for a manual run: the cron's workflowSpec, its parameters, then
    `params`. A manual run carries no scheduled-time annotation, so it never moves the
    schedule's catch-up cursor."""
    from shoal.api.cron import CronWorkflow
    from shoal.cron.runs import ANNOTATION_SCHEDULED, build_run, rfc3339

    spec = CronWorkflow.model_validate(cron).spec
    name = manual_run_name(cron["metadata"]["name"], key)
    body = build_run(cron, spec, name or "", now)
    meta = body["metadata"]
    meta["annotations"].pop(ANNOTATION_SCHEDULED, None)  # not a scheduled run
    meta["annotations"][MANUAL_ANNOTATION] = "manual"
    if key is not None:
        meta["annotations"][KEY_ANNOTATION] = hashlib.sha256(key.encode()).hexdigest()
    else:
        del meta["name"]
        meta["generateName"] = f"{cron['metadata']['name'][:200]}-manual-"
    body["spec"]["parameters"] = {
        **body["spec"]["parameters"],
        **params,
        "scheduledTime": rfc3339(now),
    }
    return body
