"""CronWorkflow fires into the PostgreSQL archive, without ever delaying a fire.

The controller offers each fire (a run it created) and carries on; one task writes them
with `archive.store.record_cron_fire`. A slow or absent database costs at most
`capacity` pending records (the oldest are dropped, and counted); a failed write is
retried with backoff. Writes are idempotent (the table's key is the fire's time), so a
record repeated after a restart is harmless.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from shoal.archive.writer import BackgroundWriter

log = logging.getLogger("shoal.cron")


@dataclass(frozen=True, slots=True)
class Fire:
    namespace: str
    cron: str
    at: datetime
    """The time the run is for: scheduled time, poll check, upstream finish, creation."""
    workflow: str


Record = Callable[[Fire], Awaitable[object]]


class FireRecorder(BackgroundWriter[Fire]):
    """Bounded, non-blocking writer of cron fires."""

    task_name = "shoal-archive-cron-fires"
    retake_after_failure = True  # the oldest fire may have been dropped meanwhile

    def __init__(
        self,
        record: Record,
        *,
        capacity: int = 10_000,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        super().__init__(backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds)
        self.record = record
        self.capacity = capacity
        self.written = 0
        self.dropped = 0
        self._pending: deque[Fire] = deque()

    def offer(self, fire: Fire) -> None:
        """Record `fire` soon; never waits."""
        if len(self._pending) >= self.capacity:
            self._pending.popleft()
            self.dropped += 1
            log.warning("archive: too many cron fires pending; the oldest is not recorded")
        self._pending.append(fire)
        self._wake_writer()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _holding(self) -> bool:
        return bool(self._pending)

    def _take(self) -> Fire | None:
        # The fire stays queued while it is written, so the capacity counts it.
        return self._pending[0] if self._pending else None

    async def _write(self, batch: Fire) -> None:
        await self.record(batch)

    def _written(self, batch: Fire) -> None:
        self.written += 1
        if self._pending and self._pending[0] is batch:
            self._pending.popleft()

    def _failed(self, batch: Fire, err: Exception, backoff: float) -> Fire | None:
        log.warning("archive: recording a fire of %s failed (%s); retrying", batch.cron, err)
        return batch
