"""`GET .../nodes/{node}/log`: a node's pod logs through the API server, as the caller.

The caller's own RBAC (`pods` list, `pods/log` get) decides, as for `kubectl logs`.
`follow=true` streams one pod's log as Server-Sent Events, for at most `seconds`: a
browser tab left open never holds a stream (and an API server connection) for ever.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from shoal.core.resolved_spec import run_spec
from shoal.kube.api import ApiError, KubeApi, pods_path, workflows_path
from shoal.kube.jobs import CONTAINER
from shoal.kube.naming import LABEL_ATTEMPT, LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID
from shoal.server.errors import ApiProblem, ErrorBody, from_kube
from shoal.server.identity import caller_api, open_caller
from shoal.server.log_lines import shown
from shoal.server.params import Name, Namespace, NodeName
from shoal.server.workflows import ERRORS, call

__all__ = ["LogLine", "LogPage", "router"]

MAX_PODS = 100
"""Pods one log request reads (a fan-out node: the first items; ask for one by `item`)."""
MAX_TAIL = 10_000
DEFAULT_TAIL = 1000
MAX_FOLLOW_SECONDS = 600.0
MAX_SINCE_SECONDS = 366 * 24 * 3600
MAX_POD_LOG_BYTES = 2 * 1024 * 1024
"""Read from one pod's log at most (Kubernetes' `limitBytes`)."""
MAX_LINES = 20_000
"""Lines in one response, over every pod it reads."""
router = APIRouter(prefix="/api/v1/workflows", tags=["logs"], responses=ERRORS)
Caller = Annotated[KubeApi, Depends(caller_api)]


class LogLine(BaseModel):
    """One line of one pod's log."""

    pod: str
    item: int
    attempt: int
    text: str


class LogPage(BaseModel):
    """A node's log lines, oldest first, pod after pod (items in order)."""

    lines: list[LogLine]
    pods: int
    """Pods read (at most MAX_PODS; more exist when `truncated`)."""
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class PodRef:
    name: str
    item: int
    attempt: int


def _number(labels: dict[str, Any], key: str) -> int:
    value = str(labels.get(key) or "0")
    return int(value) if value.isdigit() else 0


async def _pods(
    api: KubeApi, namespace: str, name: str, node: str, item: int | None, attempt: int | None
) -> tuple[list[PodRef], bool]:
    """The node's pods (latest attempt of each item unless `attempt`), and whether more
    than MAX_PODS matched."""
    obj = await call(api, "GET", workflows_path(namespace, name))
    nodes = {str(n.get("name")) for n in run_spec(obj).get("nodes") or []}
    if node not in nodes:
        raise ApiProblem.of(404, "NotFound", f"workflow {name} has no node {node!r}")
    parts = [f"{LABEL_WORKFLOW_UID}={obj['metadata']['uid']}", f"{LABEL_NODE}={node}"]
    if item is not None:
        parts.append(f"{LABEL_ITEM}={item}")
    if attempt is not None:
        parts.append(f"{LABEL_ATTEMPT}={attempt}")
    params = {"labelSelector": ",".join(parts), "limit": MAX_PODS}
    listing = await call(api, "GET", pods_path(namespace), params=params)
    latest: dict[int, PodRef] = {}
    for pod in listing.get("items") or []:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        ref = PodRef(
            pod["metadata"]["name"], _number(labels, LABEL_ITEM), _number(labels, LABEL_ATTEMPT)
        )
        if ref.item not in latest or ref.attempt > latest[ref.item].attempt:
            latest[ref.item] = ref
    more = bool((listing.get("metadata") or {}).get("continue"))
    return [latest[i] for i in sorted(latest)], more


@router.get(
    "/{namespace}/{name}/nodes/{node}/log",
    response_model=LogPage,
    responses={200: {"content": {"text/event-stream": {}}, "description": "with follow=true: SSE"}},
)
async def node_log(
    request: Request,
    api: Caller,
    namespace: Namespace,
    name: Name,
    node: NodeName,
    item: Annotated[int | None, Query(ge=0, description="one fan-out item")] = None,
    attempt: Annotated[int | None, Query(ge=1, description="default: the latest")] = None,
    tail: Annotated[int, Query(ge=1, le=MAX_TAIL, description="last lines per pod")] = DEFAULT_TAIL,
    follow: Annotated[bool, Query(description="stream new lines as Server-Sent Events")] = False,
    seconds: Annotated[float, Query(gt=0, le=MAX_FOLLOW_SECONDS)] = 60.0,
    since: Annotated[
        int | None, Query(ge=1, le=MAX_SINCE_SECONDS, description="only lines this recent (s)")
    ] = None,
) -> LogPage | StreamingResponse:
    """The node's log lines; with `follow`, one pod's (name an `item` for a fan-out)."""
    pods, more = await _pods(api, namespace, name, node, item, attempt)
    if not pods:
        raise ApiProblem.of(404, "NotFound", f"node {node!r} has no pod (not started, or gone)")
    if follow:
        if len(pods) > 1:
            raise ApiProblem.of(400, "BadRequest", "follow reads one pod: name an item")
        await _read(api, namespace, pods[0], 1)  # RBAC's answer before the stream starts
        stream = _follow(request, namespace, pods[0], tail, seconds, since)
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )
    lines: list[LogLine] = []
    for pod in pods:
        text = await _read(api, namespace, pod, tail, since)
        lines.extend(
            LogLine(pod=pod.name, item=pod.item, attempt=pod.attempt, text=shown(t))
            for t in text.splitlines()[: MAX_LINES - len(lines)]
        )
        if len(lines) >= MAX_LINES:
            return LogPage(lines=lines, pods=len(pods), truncated=True)
    return LogPage(lines=lines, pods=len(pods), truncated=more)


def _window(tail: int, since: int | None) -> dict[str, Any]:
    """Kubernetes' own `tailLines` and `sinceSeconds`: the API server cuts the log."""
    return {"tailLines": tail} | ({"sinceSeconds": since} if since else {})


async def _read(
    api: KubeApi, namespace: str, pod: PodRef, tail: int, since: int | None = None
) -> str:
    path = pods_path(namespace, pod.name) + "/log"
    try:
        return await api.text(
            path, container=CONTAINER, limitBytes=MAX_POD_LOG_BYTES, **_window(tail, since)
        )
    except ApiError as err:
        raise from_kube(err) from None
    except httpx.TransportError:
        raise ApiProblem.of(502, "KubernetesUnavailable", "the Kubernetes API failed") from None


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


async def _follow(
    request: Request, namespace: str, pod: PodRef, tail: int, seconds: float, since: int | None
) -> AsyncIterator[str]:
    """SSE: a `line` event per log line, then one `end` event saying why it ended."""
    api = open_caller(request)
    deadline = time.monotonic() + seconds
    path = pods_path(namespace, pod.name) + "/log"
    reason = "eof"
    lines = api.lines(path, follow="true", container=CONTAINER, **_window(tail, since))
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "deadline"
                break
            try:
                text = await asyncio.wait_for(anext(lines), remaining)
            except StopAsyncIteration:
                break
            except TimeoutError:
                reason = "deadline"
                break
            yield _event("line", {"pod": pod.name, "item": pod.item, "text": shown(text)})
    except (ApiError, httpx.TransportError) as err:
        reason = "error"
        problem = from_kube(err) if isinstance(err, ApiError) else None
        body = (
            problem.body
            if problem
            else ErrorBody(code="KubernetesUnavailable", message="the Kubernetes API failed")
        )
        yield _event("error", body.model_dump(exclude_none=True))
    finally:
        await lines.aclose()  # type: ignore[attr-defined]
        await api.close()
    yield _event("end", {"reason": reason})
