"""A Workflow's node attempts (`GET .../nodes/{node}/attempts`) and its Events
(`GET .../events`), as the caller.

Attempts merge what only the archive keeps (every finished attempt of every item and
`shoal retry` round) with the pods in the cluster (running attempts, and finished ones
not archived yet), so a 10,000-item fan-out's attempts are one bounded, paged read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from shoal.archive.objects import rfc3339_or_none
from shoal.core.status_reader import read_status
from shoal.core.timestamps import format_rfc3339
from shoal.kube.api import KubeApi, pods_path, workflows_path
from shoal.kube.naming import LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID
from shoal.kube.pods import PodView, read_pod
from shoal.server.archive_db import archive_handle
from shoal.server.errors import ApiProblem
from shoal.server.identity import caller_api
from shoal.server.params import Name, Namespace, NodeName
from shoal.server.workflows import ERRORS, call

__all__ = ["Attempt", "AttemptPage", "Event", "EventPage", "archived_attempt", "router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERRORS)
Caller = Annotated[KubeApi, Depends(caller_api)]
MAX_ATTEMPTS = 1000
DEFAULT_ATTEMPTS = 200
MAX_EVENTS = 500


class Attempt(BaseModel):
    """One attempt of one item of a node."""

    item: int
    attempt: int
    retry: int = 0
    """The `shoal retry` round it ran in (attempt numbers restart at 1 in each)."""
    phase: str
    exit_code: int | None = Field(None, alias="exitCode")
    reason: str | None = None
    message: str | None = None
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    pod: str | None = None
    """The pod, while it exists."""
    source: str
    """`cluster` (a pod) or `archive`."""


def archived_attempt(r: Any) -> Attempt:
    """One finished attempt as the archive recorded it (an `archive.reader` row)."""
    return Attempt(
        item=r.index,
        attempt=r.attempt,
        retry=r.retry,
        phase=r.phase,
        exitCode=r.exit_code,
        message=r.message,
        startedAt=rfc3339_or_none(r.started_at, True),
        finishedAt=rfc3339_or_none(r.finished_at, True),
        source="archive",
    )


class AttemptPage(BaseModel):
    items: list[Attempt]
    truncated: bool = False
    """More attempts exist than `limit` (name an `item`, or raise `limit`)."""
    archive: str
    """`included`, `not-configured` or `unavailable`: whether archived attempts are in."""


def _pod_attempt(view: PodView, retry: int) -> Attempt:
    def when(value: float | None) -> str | None:
        return None if value is None else format_rfc3339(value, fraction=True)

    return Attempt(
        item=view.index,
        attempt=view.attempt,
        retry=retry,
        phase=view.phase,
        exitCode=view.exit_code,
        reason=view.reason or view.waiting_reason,
        message=view.message or view.waiting_message,
        startedAt=when(view.started_at),
        finishedAt=when(view.finished_at),
        pod=view.name,
        source="cluster",
    )


async def _archived(
    request: Request, uid: str, node: str, item: int | None, limit: int
) -> tuple[list[Attempt], str]:
    handle = archive_handle(request.app)
    if handle is None:
        return [], "not-configured"
    from shoal.archive.reader import list_attempts

    try:
        rows = await list_attempts(await handle.pool(), uid, node, index=item, limit=limit)
    except Exception:
        return [], "unavailable"
    attempts = [archived_attempt(r) for r in rows]
    return attempts, "included"


@router.get(
    "/{namespace}/{name}/nodes/{node}/attempts",
    response_model=AttemptPage,
    response_model_by_alias=True,
)
async def node_attempts(
    request: Request,
    api: Caller,
    namespace: Namespace,
    name: Name,
    node: NodeName,
    item: Annotated[int | None, Query(ge=0, description="one fan-out item")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ATTEMPTS)] = DEFAULT_ATTEMPTS,
) -> AttemptPage:
    """Every attempt of the node (or of one `item`), by item, retry round and attempt:
    exit codes and reasons, live from pods and archived once they are gone."""
    obj = await call(api, "GET", workflows_path(namespace, name))
    if node not in {str(n.get("name")) for n in (obj.get("spec") or {}).get("nodes") or []}:
        raise ApiProblem.of(404, "NotFound", f"workflow {name} has no node {node!r}")
    uid = str(obj["metadata"]["uid"])
    retry = read_status(obj.get("status")).retries or 0
    selector = f"{LABEL_WORKFLOW_UID}={uid},{LABEL_NODE}={node}"
    if item is not None:
        selector += f",{LABEL_ITEM}={item}"
    pods = await call(
        api, "GET", pods_path(namespace), params={"labelSelector": selector, "limit": limit}
    )
    archived, archive = await _archived(request, uid, node, item, limit + 1)
    seen = {(a.item, a.retry, a.attempt) for a in archived}
    rows = list(archived)
    for pod in pods.get("items") or []:
        view = read_pod(pod)
        if view is not None and (view.index, retry, view.attempt) not in seen:
            rows.append(_pod_attempt(view, retry))
    rows.sort(key=lambda a: (a.item, a.retry, a.attempt))
    more = len(rows) > limit or bool((pods.get("metadata") or {}).get("continue"))
    return AttemptPage(items=rows[:limit], truncated=more, archive=archive)


class Event(BaseModel):
    """One Kubernetes Event about the Workflow."""

    type: str | None = None
    reason: str | None = None
    message: str | None = None
    count: int | None = None
    first_time: str | None = Field(None, alias="firstTime")
    last_time: str | None = Field(None, alias="lastTime")
    source: str | None = None


class EventPage(BaseModel):
    items: list[Event]
    truncated: bool = False


def _event(obj: dict[str, Any]) -> Event:
    source = obj.get("source") or {}
    return Event(
        type=obj.get("type"),
        reason=obj.get("reason"),
        message=obj.get("message") or obj.get("note"),
        count=obj.get("count"),
        firstTime=obj.get("firstTimestamp") or obj.get("eventTime"),
        lastTime=obj.get("lastTimestamp") or obj.get("eventTime"),
        source=source.get("component") or obj.get("reportingComponent"),
    )


@router.get("/{namespace}/{name}/events", response_model=EventPage, response_model_by_alias=True)
async def workflow_events(
    api: Caller,
    namespace: Namespace,
    name: Name,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
) -> EventPage:
    """The Events recorded about this Workflow (oldest first; needs `list` on events)."""
    obj = await call(api, "GET", workflows_path(namespace, name))
    fields = f"involvedObject.kind=Workflow,involvedObject.name={name}"
    uid = (obj.get("metadata") or {}).get("uid")
    if uid:
        fields += f",involvedObject.uid={uid}"
    listing = await call(
        api,
        "GET",
        f"/api/v1/namespaces/{namespace}/events",
        params={"fieldSelector": fields, "limit": limit},
    )
    items = [_event(e) for e in listing.get("items") or []]
    items.sort(key=lambda e: e.last_time or "")
    more = bool((listing.get("metadata") or {}).get("continue"))
    return EventPage(items=items, truncated=more)
