"""A CronWorkflow's runs: their names, annotations and labels, and reading them back.

Every run is created under a deterministic name (scheduled time; poll sequence and
content hash; upstream uid), so a 409 AlreadyExists means "already fired". The
annotations written here are what `list_runs` reads back after a restart: the schedule's
cursor is the scheduled-time annotation of its runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shoal.api.cron import AfterTrigger, CronWorkflowSpec
from shoal.core.timestamps import format_rfc3339, parse_rfc3339
from shoal.cron import after as after_trigger
from shoal.cron.schedule import AFTER, POLL, SCHEDULE, Run
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.naming import GROUP, LABEL_MANAGED_BY, MANAGED_BY, label_value

__all__ = [
    "ANNOTATION_SCHEDULED",
    "ANNOTATION_TRIGGER",
    "ANNOTATION_UPSTREAM",
    "LABEL_CRON",
    "MANUAL",
    "OwnRuns",
    "build_run",
    "cronworkflows_path",
    "list_runs",
    "list_upstream",
    "manual_time",
    "parse_time",
    "rfc3339",
    "rfc3339_precise",
    "upstream_of",
    "utc_now",
]

VERSION, PLURAL = "v1alpha1", "cronworkflows"
LABEL_CRON = f"{GROUP}/cron-workflow"
ANNOTATION_SCHEDULED = f"{GROUP}/scheduled-time"
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
"""`schedule`, `poll`, `after` (or `manual`, from `shoal trigger`)."""
ANNOTATION_UPSTREAM = f"{GROUP}/upstream-uid"
MANUAL = "manual"


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    return format_rfc3339(value)


def rfc3339_precise(value: datetime) -> str:
    """With microseconds: poll times round-trip through the status exactly."""
    return format_rfc3339(value, fraction=True)


def parse_time(value: str | None) -> datetime | None:
    """A status or annotation time (`core/timestamps`); ValueError when malformed."""
    return parse_rfc3339(value)


def cronworkflows_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def build_run(
    raw: dict[str, Any],
    spec: CronWorkflowSpec,
    name: str,
    at: datetime,
    *,
    trigger: str = SCHEDULE,
    parameters: dict[str, Any] | None = None,
    upstream_uid: str | None = None,
) -> dict[str, Any]:
    """The Workflow for a run at `at` (raw `workflowSpec`, parameters merged).

    Every run declares what any trigger of its CronWorkflow passes (placeholders unless
    this trigger sets them), so a `workflowSpec` reading `params.pollBody` also validates
    in a scheduled or manual run. Only scheduled runs carry the scheduled-time
    annotation: it is the schedule's cursor.
    """
    meta = raw["metadata"]
    wf_spec = dict(raw["spec"]["workflowSpec"])
    wf_spec["parameters"] = {
        **spec.run_parameters(),
        **(wf_spec.get("parameters") or {}),
        **spec.parameters,
        **(parameters or {}),
        "scheduledTime": rfc3339(at),
    }
    annotations = {ANNOTATION_TRIGGER: trigger}
    if trigger == SCHEDULE:
        annotations[ANNOTATION_SCHEDULED] = rfc3339(at)
    if upstream_uid is not None:
        annotations[ANNOTATION_UPSTREAM] = upstream_uid
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CRON: label_value(meta["name"])},
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "CronWorkflow",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": wf_spec,
    }


@dataclass
class OwnRuns:
    runs: list[Run] = field(default_factory=list)
    """Runs of the schedule, poll and after triggers (manual runs are left alone)."""
    upstream: set[str] = field(default_factory=set)
    """Upstream uids an `after` run was fired for."""


async def list_runs(api: KubeApi, raw: dict[str, Any]) -> OwnRuns:
    """This CronWorkflow's runs: labelled with its name and owned by its uid."""
    meta = raw["metadata"]
    found = await api.get(
        workflows_path(meta["namespace"]),
        labelSelector=f"{LABEL_CRON}={label_value(meta['name'])}",
    )
    own = OwnRuns()
    for item in found.get("items") or []:
        m = item.get("metadata") or {}
        if meta["uid"] not in {o.get("uid") for o in m.get("ownerReferences") or []}:
            continue
        annotations = m.get("annotations") or {}
        phase = (item.get("status") or {}).get("phase")
        scheduled = parse_time(annotations.get(ANNOTATION_SCHEDULED))
        trigger = annotations.get(ANNOTATION_TRIGGER)
        created = parse_time(m.get("creationTimestamp"))
        if scheduled is not None:
            own.runs.append(Run(m["name"], scheduled, phase))
        elif trigger in (POLL, AFTER) and created is not None:
            own.runs.append(Run(m["name"], created, phase, trigger))
        if annotations.get(ANNOTATION_UPSTREAM):
            own.upstream.add(annotations[ANNOTATION_UPSTREAM])
    return own


def upstream_of(item: dict[str, Any]) -> after_trigger.Upstream:
    """A listed Workflow as an upstream run: identity, phase, finish time, node outputs."""
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    outputs = {
        name: node["outputs"]
        for name, node in (status.get("nodes") or {}).items()
        if isinstance(node, dict) and node.get("outputs")
    }
    return after_trigger.Upstream(
        uid=str(meta.get("uid")),
        name=str(meta.get("name")),
        phase=status.get("phase"),
        finished=parse_time(status.get("finishedAt")),
        outputs=outputs,
    )


async def list_upstream(
    api: KubeApi, namespace: str, trigger: AfterTrigger
) -> list[after_trigger.Upstream]:
    """The named Workflow, or every run of the named CronWorkflow."""
    if trigger.workflow is not None:
        try:
            return [upstream_of(await api.get(workflows_path(namespace, trigger.workflow)))]
        except ApiError as err:
            if err.status == 404:
                return []
            raise
    cron = str(trigger.cron_workflow)
    found = await api.get(
        workflows_path(namespace), labelSelector=f"{LABEL_CRON}={label_value(cron)}"
    )
    return [
        upstream_of(item)
        for item in found.get("items") or []
        if any(
            o.get("kind") == "CronWorkflow" and o.get("name") == cron
            for o in (item.get("metadata") or {}).get("ownerReferences") or []
        )
    ]


def manual_time(uid: str, created: datetime) -> datetime:
    """A manual run's creation time, its sub-second part taken from its uid.

    The API server keeps whole seconds; the archive keys fires by time, so two manual
    runs created in one second would otherwise be one record. Deterministic, so a repeat
    after a restart is the same record.
    """
    micros = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % 1_000_000
    return created.replace(microsecond=0) + timedelta(microseconds=micros)
