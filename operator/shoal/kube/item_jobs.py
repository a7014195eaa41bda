"""Deleting Jobs after the status write that records their results (one runner's).

Two kinds of clean-up wait on a status write: `spec.podGC`'s selectors (a node or the run
ended: `kube/pod_gc`), and a running fan-out's finished items, whose Jobs go as soon as
a written status records them (`core/item_gc`), so live Jobs stay near the parallelism
whatever the item count. Deletion follows the write, never precedes it: a crash between
the two leaves an extra Job (adopted and reported once after a restart), never a lost
outcome. Each write's items go in one delete-collection request per node (chunked), every
attempt of an item at once: one request, so a crash never leaves an earlier failed
attempt as the item's latest.

Fast items can end faster than writes and deletions land, so a new item's Job waits
(`room`, at most `MAX_ROOM_WAIT_SECONDS`) while its node has `parallelism` succeeded items
whose Jobs are still on their way out: live Jobs stay within twice the parallelism. An
item stops counting as leaving when a write shows its Job stays (kept by podGC, or its
node's record no longer fits the status).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.core.item_gc import durable_items, jobs_to_delete, recorded
from shoal.kube.api import KubeApi, jobs_path
from shoal.kube.attempts import Attempt
from shoal.kube.naming import LABEL_ITEM, LABEL_NODE, workflow_selector
from shoal.kube.pod_gc import PodCleanup

__all__ = ["JobCleanup"]

AttemptKey = tuple[str, int, int]
MAX_ITEMS_PER_REQUEST = 200
"""Item indexes named in one delete-collection selector (its URL stays a few KiB)."""
MAX_ROOM_WAIT_SECONDS = 5.0
"""Longest a new item's Job waits for its node's ended items' Jobs to go (a status write
that keeps failing must not stall the run)."""


class JobCleanup:
    """What to delete once a status write lands, and the deleting."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        pod_gc: PodCleanup,
        attempts: dict[AttemptKey, Attempt],
        spawn: Callable[[Awaitable[Any]], object],
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.pod_gc = pod_gc
        self.attempts = attempts
        """The runner's attempts by key: a deleted item's are dropped from it."""
        self.spawn = spawn
        self._selectors: list[str] = []
        self._ended: dict[tuple[str, int], list[Attempt]] = {}
        """Reported attempts whose Jobs may still exist, by (node, item)."""
        self.deleted = 0
        """Items whose Jobs were deleted so far."""
        self._leaving: dict[str, set[int]] = {}
        """Per node, succeeded items whose Jobs a coming write should record."""
        self._deleting: dict[str, set[int]] = {}
        """Per node, items whose Jobs' deletion is in flight. With `_leaving`, what `room`
        waits on."""
        self._changed = asyncio.Event()

    def after_next_write(self, selector: str | None) -> None:
        """Delete the Jobs `selector` names after the next status write that succeeds."""
        if selector is not None:
            self._selectors.append(selector)

    def take(self) -> list[str]:
        """The selectors due after the write about to be rendered (decisions taken while
        it is in flight wait for the next one, which will hold their results)."""
        due, self._selectors = self._selectors, []
        return due

    def put_back(self, due: list[str]) -> None:
        """The write failed: its selectors wait for the next one."""
        self._selectors = due + self._selectors

    def ended(self, attempt: Attempt, succeeded: bool) -> None:
        """An attempt's outcome is reported: its Job may go once a write records it."""
        self._ended.setdefault((attempt.node, attempt.index), []).append(attempt)
        if succeeded:
            self._leaving.setdefault(attempt.node, set()).add(attempt.index)

    async def room(self, node: str, parallelism: int | None) -> None:
        """Wait (bounded) until `node` has fewer than `parallelism` succeeded items whose
        Jobs are on their way out."""
        if parallelism is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_ROOM_WAIT_SECONDS
        while self._on_the_way_out(node) >= parallelism:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - loop.time()):
                    await self._changed.wait()
            if loop.time() >= deadline:
                return

    def _on_the_way_out(self, node: str) -> int:
        return len(self._leaving.get(node, ())) + len(self._deleting.get(node, ()))

    def _settled(self, node: str, indexes: list[int]) -> None:
        self._deleting.get(node, set()).difference_update(indexes)
        self._changed.set()

    def written(self, status: dict[str, Any], due: list[str]) -> None:
        """A status write landed with `status`: delete what it makes safe to delete."""
        for selector in due:
            # One request per node, whatever its size.
            self.spawn(self.api.delete_collection(jobs_path(self.namespace), selector))
        nodes = status.get("nodes") or {}
        running = {
            n for n, e in nodes.items() if isinstance(e, dict) and e.get("phase") == "Running"
        }
        # A node that ended leaves its Jobs to podGC's selectors.
        self._ended = {k: v for k, v in self._ended.items() if k[0] in running}
        leaving, self._leaving = self._leaving, {}

        def keep_below(node: str) -> int | None:
            return self.pod_gc.item_keep_below(node, int(nodes[node]["items"]["total"]))

        going: dict[str, list[int]] = {}
        for node, index in jobs_to_delete(list(self._ended), nodes, keep_below):
            for attempt in self._ended.pop((node, index)):
                self.attempts.pop(attempt.key, None)
            going.setdefault(node, []).append(index)
        for node in running & leaving.keys():
            spans = durable_items(nodes[node])
            if spans:  # the others are being deleted now, or their Jobs stay
                self._leaving[node] = {i for i in leaving[node] if not recorded(spans, i)}
        self._changed.set()
        for node, indexes in going.items():
            self._deleting.setdefault(node, set()).update(indexes)
            for at in range(0, len(indexes), MAX_ITEMS_PER_REQUEST):
                chunk = indexes[at : at + MAX_ITEMS_PER_REQUEST]
                self.spawn(self._delete(node, chunk))

    async def _delete(self, node: str, indexes: list[int]) -> None:
        items = ",".join(str(i) for i in indexes)
        selector = (
            f"{workflow_selector(self.pod_gc.uid)},{LABEL_NODE}={node},{LABEL_ITEM} in ({items})"
        )
        try:
            await self.api.delete_collection(jobs_path(self.namespace), selector)
        finally:
            self._settled(node, indexes)
        self.deleted += len(indexes)
