"""One watch of every Workflow in the cluster, shared by every live stream.

The server lists and watches Workflows once, with its own identity, keeps the latest
summary of each, and hands each change to every subscriber's bounded queue; a browser
tab costs a queue, not an API server watch, so the API server's watch count stays the
same with one client or a thousand. What a subscriber may see is decided per event by
`stream.py` (an access review for the caller, cached): nothing here is sent anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from shoal.kube.api import KubeApi, workflows_path
from shoal.kube.listwatch import watch_events
from shoal.server.models import WorkflowSummary, workflow_summary

__all__ = ["Change", "Subscriber", "WorkflowInformer", "change_of"]

LOG = logging.getLogger("shoal.server.informer")
QUEUE_SIZE = 1000
"""Changes a subscriber may fall behind by; past that it is ended (`overflow`), so a slow
client never grows the server's memory. It reconnects and gets a fresh snapshot."""
RESTART_SECONDS = (0.5, 1, 2, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class Change:
    """One Workflow change: `ADDED`, `MODIFIED` or `DELETED`, summarized (and encoded as
    JSON) once for every subscriber."""

    type: str
    namespace: str
    summary: WorkflowSummary
    data: str = ""
    """`{"type": ..., "object": <summary>}` as JSON: what a stream sends."""
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """The whole object, while the change is handed out (not kept in the snapshot)."""


def change_of(
    kind: str, namespace: str, summary: WorkflowSummary, raw: dict[str, Any] | None = None
) -> Change:
    body = summary.model_dump(mode="json", by_alias=True, exclude_none=True)
    data = json.dumps({"type": kind, "object": body}, separators=(",", ":"))
    return Change(kind, namespace, summary, data, raw)


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[Change | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    ended: str | None = None
    """Why the informer ended this subscription (`overflow`, `resync`, `shutdown`)."""


class WorkflowInformer:
    """The shared list+watch (started by the first subscriber, stopped with the server)."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.objects: dict[str, Change] = {}
        """The latest summary of every Workflow, by uid."""
        self.subscribers: set[Subscriber] = set()
        self.synced = asyncio.Event()
        self.lists = 0
        """Full listings made (one at start, one after each expired watch)."""
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> Subscriber:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="workflow-informer")
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def snapshot(self) -> list[Change]:
        return list(self.objects.values())

    def _publish(self, change: Change) -> None:
        for subscriber in list(self.subscribers):
            try:
                subscriber.queue.put_nowait(change)
            except asyncio.QueueFull:
                self._end(subscriber, "overflow")

    def _end(self, subscriber: Subscriber, reason: str) -> None:
        """End one subscription: its stream says why and the client reconnects."""
        subscriber.ended = reason
        self.subscribers.discard(subscriber)
        with contextlib.suppress(asyncio.QueueEmpty):
            subscriber.queue.get_nowait()  # room for the end marker
        subscriber.queue.put_nowait(None)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "RESET":
            if self.lists:  # a re-list: deletions during the gap are unknown
                for subscriber in list(self.subscribers):
                    self._end(subscriber, "resync")
            self.lists += 1
            self.objects.clear()
            self.synced.clear()
            return
        if kind == "SYNCED":
            self.synced.set()
            return
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        change = change_of(kind, str(meta.get("namespace") or ""), workflow_summary(obj), obj)
        if kind == "DELETED":
            self.objects.pop(uid, None)
        else:
            self.objects[uid] = dataclasses.replace(change, raw=None)
        if self.synced.is_set():
            self._publish(change)

    async def _run(self) -> None:
        """Watch for as long as the server runs; a failure restarts the watch (backoff)."""
        failures = 0
        while True:
            try:
                async for kind, obj in watch_events(self.api, workflows_path(None)):
                    self._apply(kind, obj)
                    failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:
                LOG.warning("workflow watch failed (%s); restarting", type(err).__name__)
            delay = RESTART_SECONDS[min(failures, len(RESTART_SECONDS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscriber in list(self.subscribers):
            self._end(subscriber, "shutdown")
        await self.api.close()
