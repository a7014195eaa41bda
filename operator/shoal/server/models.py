"""The API's response bodies (its OpenAPI schemas); statuses are the CRDs' own models."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from shoal.api.cron import CronWorkflowStatus
from shoal.api.workflow import WorkflowStatus
from shoal.core.status_reader import read_status

__all__ = [
    "ActionResult",
    "CronDetail",
    "CronPage",
    "CronSummary",
    "Fire",
    "ObjectMeta",
    "WorkflowDetail",
    "WorkflowPage",
    "WorkflowSummary",
    "cron_detail",
    "cron_summary",
    "page_response",
    "workflow_detail",
    "workflow_summary",
]


class ObjectMeta(BaseModel):
    """The metadata a client shows: never managedFields or annotations' bulk."""

    model_config = ConfigDict(populate_by_name=True)

    namespace: str
    name: str
    uid: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: str | None = Field(None, alias="createdAt")
    resource_version: str | None = Field(None, alias="resourceVersion")


class WorkflowSummary(BaseModel):
    """One row of the Workflow list."""

    metadata: ObjectMeta
    phase: str
    progress: str | None = None
    message: str | None = None
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    stop_requested: bool = Field(False, alias="stopRequested")


class WorkflowPage(BaseModel):
    """A bounded page; pass `continue` back as `continue` for the next one."""

    items: list[WorkflowSummary]
    continue_token: str | None = Field(None, alias="continue")


def page_response(page: BaseModel) -> Response:
    """A page serialized once: FastAPI would validate a returned model against the
    declared `response_model` again, which doubles the cost of a 500-row page."""
    return Response(page.model_dump_json(by_alias=True), media_type="application/json")


class WorkflowDetail(BaseModel):
    """One Workflow: its spec as stored, and its status read into the typed model."""

    metadata: ObjectMeta
    spec: dict[str, Any]
    status: WorkflowStatus


class CronSummary(BaseModel):
    metadata: ObjectMeta
    schedule: str | list[str] | None = None
    suspend: bool = False
    next_schedule_time: str | None = Field(None, alias="nextScheduleTime")
    last_schedule_time: str | None = Field(None, alias="lastScheduleTime")


class CronPage(BaseModel):
    items: list[CronSummary]
    continue_token: str | None = Field(None, alias="continue")


class Fire(BaseModel):
    """One run a CronWorkflow started."""

    metadata: ObjectMeta
    phase: str
    trigger: str | None = None
    """`schedule`, `manual`, `poll` or `after`."""
    scheduled_time: str | None = Field(None, alias="scheduledTime")


class CronDetail(BaseModel):
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: CronWorkflowStatus
    next_fires: list[str] = Field(default_factory=list, alias="nextFires")
    """The next scheduled instants (UTC) from its schedule and time zone (none for a
    poll- or after-triggered one)."""
    recent_fires: list[Fire] | None = Field(None, alias="recentFires")
    """Its latest runs still in the cluster, newest first (absent when the caller may not
    list Workflows in its namespace)."""


class ActionResult(BaseModel):
    """What an action did, in words, and the object's metadata after it."""

    metadata: ObjectMeta
    message: str
    nodes: list[str] | None = None
    """For a retry: the nodes that run again."""


def meta(obj: dict[str, Any]) -> ObjectMeta:
    md = obj.get("metadata") or {}
    return ObjectMeta(
        namespace=str(md.get("namespace") or ""),
        name=str(md.get("name") or ""),
        uid=str(md.get("uid") or ""),
        labels={str(k): str(v) for k, v in (md.get("labels") or {}).items()},
        createdAt=md.get("creationTimestamp"),
        resourceVersion=md.get("resourceVersion"),
    )


def workflow_summary(obj: dict[str, Any]) -> WorkflowSummary:
    status = read_status(obj.get("status"))
    return WorkflowSummary(
        metadata=meta(obj),
        phase=status.phase.value,
        progress=status.progress,
        message=status.message,
        startedAt=status.started_at,
        finishedAt=status.finished_at,
        stopRequested=bool((obj.get("spec") or {}).get("stop")),
    )


def workflow_detail(obj: dict[str, Any]) -> WorkflowDetail:
    return WorkflowDetail(
        metadata=meta(obj), spec=obj.get("spec") or {}, status=read_status(obj.get("status"))
    )


def _cron_status(obj: dict[str, Any]) -> CronWorkflowStatus:
    """The stored CronWorkflow status, or an empty one if it does not fit the model."""
    from pydantic import ValidationError

    try:
        return CronWorkflowStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return CronWorkflowStatus()


def cron_summary(obj: dict[str, Any]) -> CronSummary:
    spec = obj.get("spec") or {}
    status = _cron_status(obj)
    return CronSummary(
        metadata=meta(obj),
        schedule=spec.get("schedule"),
        suspend=bool(spec.get("suspend")),
        nextScheduleTime=status.next_schedule_time,
        lastScheduleTime=status.last_schedule_time,
    )


def cron_detail(obj: dict[str, Any]) -> CronDetail:
    return CronDetail(metadata=meta(obj), spec=obj.get("spec") or {}, status=_cron_status(obj))
