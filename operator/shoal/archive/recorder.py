"""Runs and nodes into the archive as they change, without ever making anyone wait.

The operator offers every Workflow object it sees (each status patch comes back as a
watch event); one task writes them. Only the latest body per run is kept while a write
is pending, so a slow or absent database costs at most one object per live run, and a
write that fails is retried, newest state first, with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.archive.sink import drain_then_cancel

log = logging.getLogger("shoal.archive")

SaveRun = Callable[[dict[str, Any]], Awaitable[None]]


class RunRecorder:
    """Coalescing, non-blocking writer of Workflow objects (see `store.save_run`)."""

    def __init__(
        self, save: SaveRun, *, backoff_seconds: float = 0.5, max_backoff_seconds: float = 30.0
    ) -> None:
        self.save = save
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.written = 0
        self.failures = 0
        self._latest: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def offer(self, body: dict[str, Any]) -> None:
        """Record this Workflow object soon (replacing any unwritten older one)."""
        uid = (body.get("metadata") or {}).get("uid")
        if uid and body.get("status"):
            self._latest.pop(uid, None)  # re-insert: oldest pending first
            self._latest[uid] = body
            self._idle.clear()
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._latest)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._writer(), name="shoal-archive-runs")

    async def drain(self) -> None:
        """Wait until every offered object is written."""
        while self._latest:
            await self._idle.wait()

    async def close(self, grace_seconds: float = 5.0) -> None:
        await drain_then_cancel(self.drain, self._task, grace_seconds)
        self._task = None

    async def _writer(self) -> None:
        backoff = self.backoff_seconds
        while True:
            if not self._latest:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            uid, body = next(iter(self._latest.items()))
            try:
                await self.save(body)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.failures += 1
                log.warning("archive: recording run %s failed (%s); retrying", uid, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            backoff = self.backoff_seconds
            self.written += 1
            if self._latest.get(uid) is body:  # not replaced by a newer one meanwhile
                del self._latest[uid]
