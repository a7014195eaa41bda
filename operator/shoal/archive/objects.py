"""An archived run as the objects the live views show: a Workflow object (metadata, spec,
status) and one attempt as JSON. Shared by `shoal get`/`shoal resubmit` and the REST API,
so an archived run reads the same whichever door it is opened through."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from shoal.core.timestamps import format_rfc3339

if TYPE_CHECKING:
    from shoal.archive.reader import AttemptRecord, RunDetail

__all__ = ["archived_object", "attempt_json", "rfc3339_or_none"]


def rfc3339_or_none(value: datetime | None, fraction: bool = False) -> str | None:
    return None if value is None else format_rfc3339(value, fraction=fraction)


def archived_object(detail: RunDetail) -> dict[str, Any]:
    """The archived run as a Workflow object (metadata, spec, status), for the same views.

    Runs archived before schema version 2 have no stored status: it is rebuilt from the
    run's and nodes' columns (no failed-item list, no retries count).
    """
    run = detail.run
    status = detail.status
    if status is None:
        nodes: dict[str, Any] = {}
        for n in detail.nodes:
            entry: dict[str, Any] = {"phase": n.phase, "attempts": n.attempts}
            fields = {
                "exitCode": n.exit_code,
                "message": n.message,
                "outputs": n.outputs,
                "items": n.items,
                "startedAt": rfc3339_or_none(n.started_at, True),
                "finishedAt": rfc3339_or_none(n.finished_at, True),
            }
            entry.update({k: v for k, v in fields.items() if v is not None})
            nodes[n.node] = entry
        status = {
            "phase": run.phase,
            "progress": run.progress,
            "message": run.message,
            "startedAt": rfc3339_or_none(run.started_at, True),
            "finishedAt": rfc3339_or_none(run.finished_at, True),
            "nodes": nodes,
        }
        status = {k: v for k, v in status.items() if v is not None}
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": run.name,
            "namespace": run.namespace,
            "uid": run.uid,
            "labels": run.labels,
            "creationTimestamp": rfc3339_or_none(run.created_at),
        },
        "spec": detail.spec,
        "status": status,
    }


def attempt_json(a: AttemptRecord) -> dict[str, Any]:
    doc = {
        "item": a.index,
        "attempt": a.attempt,
        "retry": a.retry,
        "phase": a.phase,
        "exitCode": a.exit_code,
        "message": a.message,
        "outputs": a.outputs,
        "outputsOmitted": a.outputs_omitted,
        "startedAt": rfc3339_or_none(a.started_at, True),
        "finishedAt": rfc3339_or_none(a.finished_at, True),
    }
    return {k: v for k, v in doc.items() if v is not None}
