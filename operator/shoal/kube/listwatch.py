"""A reconnecting list+watch over the Kubernetes REST API, as `(type, object)` pairs.

Generic (any collection path, any selector): the CLI follows Workflows, pods and Jobs
with it. A watch the server ends is resumed from the last resourceVersion seen, an
expired one (410 Gone) lists again, and transient failures back off a bounded number
of times before the error reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx

from shoal.core import jsonbounds
from shoal.kube.api import ApiError, KubeApi

__all__ = [
    "MAX_STREAM_FAILURES",
    "WATCH_GRACE",
    "WATCH_SECONDS",
    "left_at_deadline",
    "lines_until",
    "watch_events",
]

WATCH_SECONDS = 240
"""How long one watch request lasts on the server before it is reconnected."""
WATCH_GRACE = 30.0
"""A watch connection that outlives its server-side timeout by this much is dropped."""
MAX_STREAM_FAILURES = 6
"""Consecutive failed reconnections (of a watch or a log stream) before giving up."""


async def lines_until(
    api: KubeApi, path: str, params: dict[str, Any], until: float
) -> AsyncGenerator[str, None]:
    """The lines of one streamed response, cut off at monotonic time `until`.

    The read runs in this task under `asyncio.timeout` (not `wait_for`, whose inner task
    can swallow a cancellation that arrives as a line does, on Python 3.11).
    """
    stream = cast(AsyncGenerator[str, None], api.lines(path, **params))
    async with contextlib.aclosing(stream):
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    line = await anext(stream)
            except (StopAsyncIteration, TimeoutError):
                return
            yield line


def _watch_query(
    params: dict[str, Any], version: str, deadline: float | None
) -> tuple[dict[str, Any], float]:
    """One watch request's query, and the monotonic time its connection is cut at."""
    now = time.monotonic()
    seconds = (
        WATCH_SECONDS if deadline is None else max(1, min(WATCH_SECONDS, math.ceil(deadline - now)))
    )
    until = now + seconds + WATCH_GRACE
    if deadline is not None:
        until = min(until, deadline)
    query = {
        **params,
        "watch": "true",
        "resourceVersion": version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(seconds),
    }
    return query, until


async def watch_events(
    api: KubeApi, path: str, deadline: float | None = None, **params: Any
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """List, then watch: `(type, object)` pairs.

    A listing is announced by ("RESET", {}) (forget what the earlier ones said), replays
    what exists as ADDED events, and ends with ("SYNCED", {}). A watch the server ends is
    reconnected from the last resourceVersion seen; an expired one (410 Gone) lists
    again. Ends at the monotonic `deadline`, if one is given.
    """
    version: str | None = None
    failures = 0
    while deadline is None or time.monotonic() < deadline:
        if version is None:
            listing = await api.get(path, **params)
            yield "RESET", {}
            for item in listing.get("items") or []:
                yield "ADDED", item
            version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
            yield "SYNCED", {}
        query, until = _watch_query(params, version, deadline)
        try:
            async with contextlib.aclosing(lines_until(api, path, query, until)) as lines:
                async for line in lines:
                    if not line.strip():
                        continue
                    event = jsonbounds.loads(line)
                    kind, obj = str(event.get("type")), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            version = None  # too old: list again
                            break
                        raise ApiError(
                            int(obj.get("code") or 500),
                            str(obj.get("reason") or "WatchError"),
                            str(obj.get("message") or obj),
                        )
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        yield kind, obj
            failures = 0
        except ApiError as err:
            if err.status == 410:
                version = None
                continue
            if err.status not in (0, 429) and err.status < 500:
                raise
            failures += 1
            if failures >= MAX_STREAM_FAILURES:
                raise
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))  # back off before reconnecting
        except (httpx.HTTPError, ValueError):
            failures += 1
            if failures >= MAX_STREAM_FAILURES:
                raise
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))


async def left_at_deadline(api: KubeApi, path: str, deadline: float, selector: str) -> set[str]:
    """Watch until nothing under `path` matches `selector`: the names still there when
    the monotonic `deadline` passed (empty once every object is gone)."""
    left: set[str] = set()
    synced = False
    events = watch_events(api, path, deadline, labelSelector=selector)
    try:
        async for kind, item in events:
            if kind == "RESET":
                left.clear()
                synced = False
            elif kind == "SYNCED":
                synced = True
            elif kind == "DELETED":
                left.discard(item["metadata"]["name"])
            else:
                left.add(item["metadata"]["name"])
            if synced and not left:
                return set()
    finally:
        await events.aclose()
    return left or {"(not listed before the deadline)"}
