"""The operator's one watch of Shoal's pods, without kopf.

kopf deep-copies every event body it hands a handler; at one event per pod status
change that copy was over a third of the operator's CPU in a big fan-out. This watch
decodes each line once and hands the fresh dict on: nothing else holds it, so nothing
needs a copy, and nothing walks it (the runner reads fixed fields), so it needs none of
the depth cut `jsonbounds.loads` makes for kopf's deep copy either (see `decode`).

It lists, then watches from the list's resourceVersion; it resumes from the last
version it saw after a dropped connection or a server-side timeout, and lists again
when the server says that version is gone (410). A listed pod arrives as "ADDED", as
kopf delivered it; receivers already take repeated events (a relist repeats them all).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from shoal.core import jsonbounds
from shoal.kube.api import ApiError, KubeApi

__all__ = ["PodHandler", "WatchGone", "decode", "pods_paths", "watch_pods", "watch_pods_in"]

log = logging.getLogger("shoal.operator")
WATCH_SECONDS = 300
"""How long the server keeps one watch request open (then it is resumed)."""
CLIENT_MARGIN_SECONDS = 30
"""A watch silent this long past its server timeout is taken as dead."""
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Backoff between failed attempts (the last one repeats)."""
PodHandler = Callable[[str, dict[str, Any]], None]
"""Called with the event type ("ADDED", "MODIFIED", "DELETED") and the pod."""


class WatchGone(Exception):
    """The resourceVersion to resume from is no longer available: list again."""


def pods_paths(namespaces: Iterable[str]) -> list[str]:
    """One pods path per namespace; the cluster-wide path when there are none."""
    named = sorted(set(namespaces))
    return [f"/api/v1/namespaces/{ns}/pods" for ns in named] or ["/api/v1/pods"]


async def watch_pods_in(
    api: KubeApi,
    namespaces: Iterable[str],
    selector: str,
    on_event: PodHandler,
    on_listed: Callable[[str], None] | None = None,
) -> None:
    """`watch_pods` over each namespace (or the whole cluster), until cancelled."""
    watches = [
        watch_pods(api, path, selector, on_event, on_listed) for path in pods_paths(namespaces)
    ]
    await asyncio.gather(*watches)


async def watch_pods(
    api: KubeApi,
    path: str,
    selector: str,
    on_event: PodHandler,
    on_listed: Callable[[str], None] | None = None,
) -> None:
    """List and watch the pods under `path` that `selector` matches, until cancelled.

    `on_listed(path)` is called after each list has been delivered: from then on no event
    of a matching pod is missed (kube/shard_watch.py waits for it before switching)."""
    version: str | None = None
    failures = 0
    while True:
        try:
            if version is None:
                version = await _list(api, path, selector, on_event)
                if on_listed is not None:
                    on_listed(path)
            version = await _follow(api, path, selector, version, on_event)
            failures = 0
        except WatchGone:
            version = None  # relist at once: the watch itself worked
        except Exception as err:  # refused, dropped, undecodable: retry (never end the watch)
            if isinstance(err, ApiError) and err.status == 410:
                version = None  # the version is gone: list again
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            log.warning("pod watch %s: %s; again in %.1fs", path, err, delay)
            await asyncio.sleep(delay)


async def _list(api: KubeApi, path: str, selector: str, on_event: PodHandler) -> str:
    """Deliver every matching pod as ADDED; the list's resourceVersion."""
    listing = await api.get(path, labelSelector=selector)
    for pod in listing.get("items") or []:
        if isinstance(pod, dict):
            on_event("ADDED", pod)
    return str((listing.get("metadata") or {}).get("resourceVersion") or "")


async def _follow(
    api: KubeApi, path: str, selector: str, version: str, on_event: PodHandler
) -> str:
    """One watch request from `version`; the last version seen when the server ends it."""
    params = {
        "watch": "true",
        "labelSelector": selector,
        "resourceVersion": version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(WATCH_SECONDS),
    }
    async with asyncio.timeout(WATCH_SECONDS + CLIENT_MARGIN_SECONDS):
        async for line in api.lines(path, **params):
            version = _deliver(line, version, on_event)
    return version


def decode(line: str) -> Any:
    """One watch line: the C decoder, and the bounded one only where it gives up.

    A pod is validated against the Pod schema, so unlike a Workflow's `args` it holds no
    user value nested or sized without bound; lines past the client's line bound arrive
    cut and fail to decode. The full pass of `jsonbounds.loads` over every event (twice
    the decoding's own cost) buys nothing on this path.
    """
    try:
        return json.loads(line)
    except RecursionError:
        return jsonbounds.loads(line)


def _deliver(line: str, version: str, on_event: PodHandler) -> str:
    """Decode one watch line and hand its pod on; the resourceVersion to resume from."""
    if not line.strip():
        return version
    try:
        event = decode(line)
    except ValueError:  # a line cut at the client's bound: not a pod Shoal created
        log.debug("pod watch: an undecodable event was skipped")
        return version
    kind = event.get("type") if isinstance(event, dict) else None
    obj = event.get("object") if isinstance(event, dict) else None
    if not isinstance(obj, dict):
        return version
    if kind == "ERROR":
        if obj.get("code") == 410:
            raise WatchGone(str(obj.get("message") or "resourceVersion too old"))
        raise ApiError(int(obj.get("code") or 0), str(obj.get("reason")), str(obj.get("message")))
    seen = (obj.get("metadata") or {}).get("resourceVersion")
    if kind in ("ADDED", "MODIFIED", "DELETED"):
        on_event(kind, obj)
    return str(seen) if seen else version
