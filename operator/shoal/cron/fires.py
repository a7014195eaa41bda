"""CronWorkflow fires into the PostgreSQL archive, without ever delaying a fire.

The controller offers each fire (a run it created) and carries on; one task writes them
with `archive.store.record_cron_fire`. A slow or absent database costs at most
`capacity` pending records (the oldest are dropped, and counted); a failed write is
retried with backoff. Writes are idempotent (the table's key is the fire's time), so a
record repeated after a restart is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from shoal.archive.sink import drain_then_cancel

log = logging.getLogger("shoal.cron")


@dataclass(frozen=True, slots=True)
class Fire:
    namespace: str
    cron: str
    at: datetime
    """The time the run is for: scheduled time, poll check, upstream finish, creation."""
    workflow: str


Record = Callable[[Fire], Awaitable[object]]


class FireRecorder:
    """Bounded, non-blocking writer of cron fires."""

    def __init__(
        self,
        record: Record,
        *,
        capacity: int = 10_000,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.record = record
        self.capacity = capacity
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.written = 0
        self.dropped = 0
        self._pending: deque[Fire] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def offer(self, fire: Fire) -> None:
        """Record `fire` soon; never waits."""
        if len(self._pending) >= self.capacity:
            self._pending.popleft()
            self.dropped += 1
            log.warning("archive: too many cron fires pending; the oldest is not recorded")
        self._pending.append(fire)
        self._idle.clear()
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._writer(), name="shoal-archive-cron-fires")

    async def drain(self) -> None:
        while self._pending:
            await self._idle.wait()

    async def close(self, grace_seconds: float = 5.0) -> None:
        await drain_then_cancel(self.drain, self._task, grace_seconds)
        self._task = None

    async def _writer(self) -> None:
        backoff = self.backoff_seconds
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            fire = self._pending[0]
            try:
                await self.record(fire)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("archive: recording a fire of %s failed (%s); retrying", fire.cron, err)
                await asyncio.sleep(backoff)  # a retry timer, not a synchronisation
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            backoff = self.backoff_seconds
            self.written += 1
            if self._pending and self._pending[0] is fire:
                self._pending.popleft()
