"""`GET /api/v1/stream/workflows`: live Workflow changes as Server-Sent Events, for the
dashboard's list, fed by the one shared watch (`informer.py`).

Before the stream starts the caller is authenticated and, for one `namespace`, must be
allowed to `watch` workflows there (403 otherwise). Then every event, the snapshot
included, is sent only if an access review says the caller may `watch` workflows in
that event's namespace (cached per caller for 10 s, `access.py`): the server's own
identity reads, the caller's RBAC decides what leaves. A stream lasts at most `seconds`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from shoal.kube.api import KubeApi
from shoal.server.access import Check, access_cache, require
from shoal.server.errors import ApiProblem
from shoal.server.identity import Cluster, caller_key, open_caller
from shoal.server.informer import Change, Subscriber, WorkflowInformer
from shoal.server.params import NamespaceFilter
from shoal.server.workflows import ERRORS

__all__ = [
    "HEARTBEAT_SECONDS",
    "MAX_STREAM_SECONDS",
    "changes",
    "frame",
    "informer_of",
    "router",
    "synced",
]

router = APIRouter(prefix="/api/v1/stream", tags=["stream"], responses=ERRORS)
MAX_STREAM_SECONDS = 3600.0
HEARTBEAT_SECONDS = 15.0
SYNC_SECONDS = 30.0


def informer_of(request: Request) -> WorkflowInformer:
    """The application's one informer (made on first use, with the server's identity)."""
    informer: WorkflowInformer | None = getattr(request.app.state, "informer", None)
    if informer is None:
        cluster: Cluster = request.app.state.cluster
        if cluster.watcher is None:
            raise ApiProblem.of(
                503, "stream-unavailable", "this server has no identity to watch with"
            )
        informer = WorkflowInformer(KubeApi(cluster.watcher))
        request.app.state.informer = informer
    return informer


def frame(kind: str, data: object) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _change(change: Change) -> str:
    return f"event: workflow\ndata: {change.data}\n\n"


@router.get(
    "/workflows",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_workflows(
    request: Request,
    namespace: NamespaceFilter = None,
    seconds: Annotated[float, Query(gt=0, le=MAX_STREAM_SECONDS)] = 600.0,
) -> StreamingResponse:
    """A snapshot of the Workflows the caller may watch (`workflow` events of type ADDED,
    then `synced`), then every change (`ADDED`, `MODIFIED`, `DELETED`) as it happens,
    and one `end` event saying why the stream ended."""
    api = open_caller(request)
    key = caller_key(request)
    cache = access_cache(request)
    try:
        if namespace:
            await require(request, api, Check("watch", "workflows", namespace))
        else:  # authenticates the token (401) before the stream starts
            await cache.allowed(api, key, Check("watch", "workflows", ""))
        informer = informer_of(request)
    except ApiProblem:
        await api.close()
        raise
    subscriber = informer.subscribe()

    async def may(change: Change) -> bool:
        if namespace and change.namespace != namespace:
            return False
        if namespace:
            return await cache.allowed(api, key, Check("watch", "workflows", namespace))
        if await cache.allowed(api, key, Check("watch", "workflows", "")):
            return True
        return await cache.allowed(api, key, Check("watch", "workflows", change.namespace))

    async def events() -> AsyncIterator[str]:
        deadline = time.monotonic() + seconds
        reason = "deadline"
        try:
            reason = await synced(informer, deadline)
            if reason == "synced":
                for change in informer.snapshot():
                    if await may(change):
                        yield _change(change)
                yield frame("synced", {})
                reason = "deadline"
                async for text in changes(request, subscriber, may, deadline):
                    if text.startswith("end:"):
                        reason = text[4:]
                        break
                    yield text
        except ApiProblem as problem:  # the caller's token expired mid-stream
            yield frame("error", problem.body.model_dump(exclude_none=True))
            reason = "error"
        finally:
            informer.unsubscribe(subscriber)
            await api.close()  # a no-op for a caller's token (a shared pool)
        yield frame("end", {"reason": reason})

    return StreamingResponse(events(), media_type="text/event-stream")


async def synced(informer: WorkflowInformer, deadline: float) -> str:
    """Wait (bounded) for the shared watch's first listing."""
    try:
        async with asyncio.timeout(max(0.1, min(SYNC_SECONDS, deadline - time.monotonic()))):
            await informer.synced.wait()
    except TimeoutError:
        return "not-synced"
    return "synced"


async def changes(
    request: Request,
    subscriber: Subscriber,
    may: Callable[[Change], Awaitable[bool]],
    deadline: float,
    render: Callable[[Change], str] = _change,
) -> AsyncIterator[str]:
    """Frames for the subscriber's changes the caller may see, heartbeats, and an
    `end:<reason>` marker when it must stop."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            yield "end:deadline"
            return
        if await request.is_disconnected():
            yield "end:disconnected"
            return
        try:
            async with asyncio.timeout(min(remaining, HEARTBEAT_SECONDS)):
                change = await subscriber.queue.get()
        except TimeoutError:
            yield ": keep-alive\n\n"
            continue
        if change is None:
            yield f"end:{subscriber.ended or 'shutdown'}"
            return
        if await may(change):
            yield render(change)
