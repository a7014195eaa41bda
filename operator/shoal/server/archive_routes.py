"""`/api/v1/archive/workflows`: finished (and recorded) runs from the PostgreSQL archive,
including runs whose Workflow and pods are long gone.

The server reads the archive with its own database credentials, so every read is first
authorized for the caller by the API server (`access.py`): `list` on workflows for a
search (cross-namespace: only the namespaces the caller may list are searched), `get`
on workflows for one run and its attempts, `get` on `pods/log` for its logs. No row of
a namespace the caller may not read is ever fetched for them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from shoal.archive.objects import archived_object, rfc3339_or_none
from shoal.archive.reader import RunSummary, get_run, list_attempts, read_logs
from shoal.archive.search import (
    decode_cursor,
    encode_cursor,
    namespaces,
    parse_selector,
    search_runs,
)
from shoal.kube.api import KubeApi
from shoal.server.access import Check, access_cache, require
from shoal.server.archive_db import archive_pool, query
from shoal.server.errors import ApiProblem
from shoal.server.identity import caller_api, caller_key
from shoal.server.models import (
    ObjectMeta,
    WorkflowDetail,
    WorkflowPage,
    WorkflowSummary,
    page_response,
    workflow_detail,
)
from shoal.server.node_views import AttemptPage, archived_attempt
from shoal.server.params import (
    DEFAULT_LIMIT,
    Continue,
    Limit,
    Namespace,
    NamespaceFilter,
    NodeName,
    Selector,
)
from shoal.server.workflows import ERRORS

__all__ = ["ArchivedLogLine", "ArchivedLogPage", "router"]

router = APIRouter(
    prefix="/api/v1/archive/workflows",
    tags=["archive"],
    responses={**ERRORS, 503: ERRORS[502]},
)
Caller = Annotated[KubeApi, Depends(caller_api)]
Pool = Annotated[Any, Depends(archive_pool)]
Uid = Annotated[str, Path(max_length=64, pattern=r"^[-a-f0-9]+$")]
REVIEWS_AT_ONCE = 8
MAX_LOG_LINES = 10_000


def _row(run: RunSummary) -> WorkflowSummary:
    return WorkflowSummary(
        metadata=ObjectMeta(
            namespace=run.namespace,
            name=run.name,
            uid=run.uid,
            labels=run.labels,
            createdAt=rfc3339_or_none(run.created_at),
        ),
        phase=run.phase,
        progress=run.progress,
        message=run.message,
        startedAt=rfc3339_or_none(run.started_at, True),
        finishedAt=rfc3339_or_none(run.finished_at, True),
    )


async def _readable(request: Request, api: KubeApi, pool: Any) -> list[str] | None:
    """The namespaces whose archived runs the caller may list (None: all of them)."""
    cache, key = access_cache(request), caller_key(request)
    if await cache.allowed(api, key, Check("list", "workflows", "")):
        return None
    gate = asyncio.Semaphore(REVIEWS_AT_ONCE)

    async def may(namespace: str) -> bool:
        async with gate:
            return await cache.allowed(api, key, Check("list", "workflows", namespace))

    known = await query(namespaces, pool)
    answers = await asyncio.gather(*(may(ns) for ns in known))
    return [ns for ns, ok in zip(known, answers, strict=True) if ok]


@router.get("", response_model=WorkflowPage, response_model_by_alias=True)
async def search_archive(
    request: Request,
    api: Caller,
    pool: Pool,
    namespace: NamespaceFilter = None,
    phase: Annotated[str | None, Query(max_length=32)] = None,
    name_prefix: Annotated[str | None, Query(alias="namePrefix", max_length=253)] = None,
    label_selector: Selector = None,
    since: Annotated[datetime | None, Query(description="created at or after")] = None,
    until: Annotated[datetime | None, Query(description="created before")] = None,
    limit: Limit = DEFAULT_LIMIT,
    continue_token: Continue = None,
) -> Response:
    """Archived runs, newest first, in the namespaces the caller may list."""
    try:
        labels = parse_selector(label_selector or "")
        after = decode_cursor(continue_token) if continue_token else None
    except ValueError as err:
        raise ApiProblem.of(400, "BadRequest", str(err)) from None
    if namespace:
        await require(request, api, Check("list", "workflows", namespace))
        allowed: list[str] | None = [namespace]
    else:
        allowed = await _readable(request, api, pool)
    runs, cursor = await query(
        search_runs,
        pool,
        namespaces=allowed,
        phase=phase,
        name_prefix=name_prefix,
        labels=labels,
        since=since,
        until=until,
        after=after,
        limit=limit,
    )
    token = encode_cursor(cursor) if cursor else None
    return page_response(WorkflowPage(items=[_row(r) for r in runs], **{"continue": token}))


async def _run(request: Request, api: KubeApi, pool: Any, namespace: str, uid: str) -> Any:
    """The run, once the caller may `get` workflows in `namespace`; 404 if it is not there."""
    await require(request, api, Check("get", "workflows", namespace))
    detail = await query(get_run, pool, uid)
    if detail is None or detail.run.namespace != namespace:
        raise ApiProblem.of(404, "NotFound", f"no archived run {uid} in namespace {namespace}")
    return detail


@router.get("/{namespace}/{uid}", response_model=WorkflowDetail, response_model_by_alias=True)
async def archived_run(
    request: Request, api: Caller, pool: Pool, namespace: Namespace, uid: Uid
) -> WorkflowDetail:
    """One archived run: its spec and its last recorded status."""
    return workflow_detail(archived_object(await _run(request, api, pool, namespace, uid)))


@router.get(
    "/{namespace}/{uid}/nodes/{node}/attempts",
    response_model=AttemptPage,
    response_model_by_alias=True,
)
async def archived_attempts(
    request: Request,
    api: Caller,
    pool: Pool,
    namespace: Namespace,
    uid: Uid,
    node: NodeName,
    item: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AttemptPage:
    """Every finished attempt of a node of an archived run (or of one `item`)."""
    await _run(request, api, pool, namespace, uid)
    rows = await query(list_attempts, pool, uid, node, index=item, limit=limit + 1)
    items = [archived_attempt(r) for r in rows[:limit]]
    return AttemptPage(items=items, truncated=len(rows) > limit, archive="included")


class ArchivedLogLine(BaseModel):
    id: int
    """Pass the last one as `after` for the next page."""
    item: int
    attempt: int
    at: str | None
    text: str


class ArchivedLogPage(BaseModel):
    lines: list[ArchivedLogLine]
    next_after: int | None = Field(None, alias="nextAfter")
    """Set when more lines follow: the `after` of the next page."""


@router.get(
    "/{namespace}/{uid}/nodes/{node}/log",
    response_model=ArchivedLogPage,
    response_model_by_alias=True,
)
async def archived_log(
    request: Request,
    api: Caller,
    pool: Pool,
    namespace: Namespace,
    uid: Uid,
    node: NodeName,
    item: Annotated[int | None, Query(ge=0)] = None,
    attempt: Annotated[int | None, Query(ge=1)] = None,
    after: Annotated[int, Query(ge=0, description="the previous page's nextAfter")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LINES)] = 1000,
) -> ArchivedLogPage:
    """A node's archived log lines, in the order written (needs `get` on `pods/log`)."""
    await require(request, api, Check("get", "pods", namespace, group="", subresource="log"))
    await _run(request, api, pool, namespace, uid)
    rows = await query(
        read_logs, pool, uid, node, index=item, attempt=attempt, after_id=after, limit=limit + 1
    )
    lines = [
        ArchivedLogLine(
            id=r.id, item=r.index, attempt=r.attempt, at=rfc3339_or_none(r.at, True), text=r.line
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit and lines
    return ArchivedLogPage(lines=lines, nextAfter=lines[-1].id if more else None)
