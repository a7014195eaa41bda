"""Runs and nodes into the archive as they change, without ever making anyone wait.

The operator offers every Workflow object it sees (each status patch comes back as a
watch event); one task writes them. Only the latest body per run is kept while a write
is pending, so a slow or absent database costs at most one object per live run, and a
write that fails is retried, newest state first, with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.archive.writer import BackgroundWriter

log = logging.getLogger("shoal.archive")

SaveRun = Callable[[dict[str, Any]], Awaitable[None]]
_Pending = tuple[str, dict[str, Any]]


class RunRecorder(BackgroundWriter[_Pending]):
    """Coalescing, non-blocking writer of Workflow objects (see `store.save_run`)."""

    task_name = "shoal-archive-runs"
    retake_after_failure = True  # the newest state of the oldest pending run goes next

    def __init__(
        self, save: SaveRun, *, backoff_seconds: float = 0.5, max_backoff_seconds: float = 30.0
    ) -> None:
        super().__init__(backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds)
        self.save = save
        self.written = 0
        self._latest: dict[str, dict[str, Any]] = {}

    def offer(self, body: dict[str, Any]) -> None:
        """Record this Workflow object soon (replacing any unwritten older one)."""
        uid = (body.get("metadata") or {}).get("uid")
        if uid and body.get("status"):
            self._latest.pop(uid, None)  # re-insert: oldest pending first
            self._latest[uid] = body
            self._wake_writer()

    @property
    def pending(self) -> int:
        return len(self._latest)

    def _holding(self) -> bool:
        return bool(self._latest)

    def _take(self) -> _Pending | None:
        # The body stays in `_latest` while it is written, so a newer one replaces it.
        return next(iter(self._latest.items()), None)

    async def _write(self, batch: _Pending) -> None:
        await self.save(batch[1])

    def _written(self, batch: _Pending) -> None:
        uid, body = batch
        self.written += 1
        if self._latest.get(uid) is body:  # not replaced by a newer one meanwhile
            del self._latest[uid]

    def _failed(self, batch: _Pending, err: Exception, backoff: float) -> _Pending | None:
        log.warning("archive: recording run %s failed (%s); retrying", batch[0], err)
        return batch
