"""`GET /api/v1/stream/workflows/{namespace}/{name}`: one Workflow, whole (spec and typed
status: node phases, progress, messages, item counts), each time it changes, for the
dashboard's workflow page. Fed by the same shared watch as the list stream.

The caller must be allowed to `get` it: the first event is read from the API server as
the caller (so RBAC answers 403/404 before the stream starts), and every later one is
sent after a cached access review for `get` on workflows in its namespace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from shoal.kube.api import workflows_path
from shoal.server.access import Check, access_cache
from shoal.server.errors import ApiProblem
from shoal.server.identity import caller_key, open_caller
from shoal.server.informer import Change
from shoal.server.models import workflow_detail
from shoal.server.params import Name, Namespace
from shoal.server.stream import MAX_STREAM_SECONDS, changes, frame, informer_of
from shoal.server.workflows import ERRORS, call

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/stream", tags=["stream"], responses=ERRORS)


def _detail(obj: dict[str, object]) -> str:
    return f"event: workflow\ndata: {workflow_detail(obj).model_dump_json(by_alias=True)}\n\n"


@router.get(
    "/workflows/{namespace}/{name}",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_workflow(
    request: Request,
    namespace: Namespace,
    name: Name,
    seconds: Annotated[float, Query(gt=0, le=MAX_STREAM_SECONDS)] = 600.0,
) -> StreamingResponse:
    """The Workflow now (`workflow` event, a `WorkflowDetail`), then again after each
    change, `deleted` if it is deleted, and one `end` event saying why the stream ended."""
    api = open_caller(request)
    key, cache = caller_key(request), access_cache(request)
    try:
        informer = informer_of(request)
    except ApiProblem:
        await api.close()
        raise
    subscriber = informer.subscribe()  # before the read: no change in between is missed
    try:
        current = await call(api, "GET", workflows_path(namespace, name))
    except ApiProblem:
        informer.unsubscribe(subscriber)
        await api.close()
        raise
    uid = (current.get("metadata") or {}).get("uid")

    async def may(change: Change) -> bool:
        if change.raw is None or (change.raw.get("metadata") or {}).get("uid") != uid:
            return False
        return await cache.allowed(api, key, Check("get", "workflows", namespace))

    def render(change: Change) -> str:
        if change.type == "DELETED" or change.raw is None:
            return frame("deleted", {})
        return _detail(change.raw)

    async def events() -> AsyncIterator[str]:
        deadline = time.monotonic() + seconds
        reason = "deadline"
        try:
            yield _detail(current)
            async for text in changes(request, subscriber, may, deadline, render):
                if text.startswith("end:"):
                    reason = text[4:]
                    break
                yield text
                if text.startswith("event: deleted"):
                    reason = "deleted"
                    break
        except ApiProblem as problem:
            yield frame("error", problem.body.model_dump(exclude_none=True))
            reason = "error"
        finally:
            informer.unsubscribe(subscriber)
            await api.close()  # a no-op for a caller's token (a shared pool)
        yield frame("end", {"reason": reason})

    return StreamingResponse(events(), media_type="text/event-stream")
