"""Every finished attempt of every item into the archive, without making the runner wait.

The Workflow object keeps per-node aggregates only (a 100,000-item fan-out must fit in
it), so the detail of each item and each retry — phase, times, exit code, message,
outputs — is kept here. `AttemptRecorder.record` is the runner's `AttemptSink`: it is
synchronous and O(1), appending to a bounded buffer that one asyncio task writes in
batches. When the database is slow or gone the OLDEST unwritten attempts are dropped
(counted, reported through `on_dropped` for a metric, and logged once per episode):
memory stays bounded and reconciliation never waits on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shoal.api.limits import MAX_ARCHIVED_OUTPUTS_BYTES
from shoal.archive.pgtext import pg_json, pg_text
from shoal.archive.writer import BackgroundWriter, transient
from shoal.core.sizes import too_large_note
from shoal.core.state import TaskFinished

log = logging.getLogger("shoal.archive")

MAX_MESSAGE_CHARS = 4096
ROW_OVERHEAD_BYTES = 256
"""A rough per-row cost on top of message and outputs, for the memory bound."""


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    """One row of `shoal_attempts`, ready to write (outputs already JSON-encoded)."""

    uid: str
    node: str
    index: int
    attempt: int
    retry: int
    """The workflow's `shoal retry` round (`status.retries`): attempts restart at 1 in each."""
    phase: str
    exit_code: int | None
    message: str | None
    outputs_json: str | None
    outputs_omitted: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def size(self) -> int:
        return ROW_OVERHEAD_BYTES + len(self.message or "") + len(self.outputs_json or "")


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def finished_attempt(
    uid: str, event: TaskFinished, started_at: float | None, retry: int = 0
) -> FinishedAttempt:
    """The row for an attempt that ended (pure: caps and cleaning happen here)."""
    outputs_json: str | None = None
    omitted: str | None = None
    if event.outputs:
        encoded = pg_json(event.outputs) or "{}"
        size = len(encoded.encode())
        if size <= MAX_ARCHIVED_OUTPUTS_BYTES:
            outputs_json = encoded
        else:
            omitted = too_large_note(size, "archive")
    message = pg_text(event.message)[:MAX_MESSAGE_CHARS] if event.message else None
    return FinishedAttempt(
        uid=uid,
        node=event.node,
        index=event.index,
        attempt=event.attempt,
        retry=retry,
        phase="Succeeded" if event.succeeded else "Failed",
        exit_code=event.exit_code,
        message=message,
        outputs_json=outputs_json,
        outputs_omitted=omitted,
        started_at=_time(started_at),
        finished_at=_time(event.at),
    )


SaveAttempts = Callable[[Sequence[FinishedAttempt]], Awaitable[None]]


class AttemptRecorder(BackgroundWriter[list[FinishedAttempt]]):
    """The runner's `AttemptSink`: a bounded buffer and one batch-writing task."""

    task_name = "shoal-archive-attempts"

    def __init__(
        self,
        save: SaveAttempts,
        *,
        max_pending: int = 50_000,
        max_pending_bytes: int = 64 * 1024 * 1024,
        batch_size: int = 1000,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 10.0,
        max_tries: int = 3,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds)
        self.save = save
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.batch_size = batch_size
        self.max_tries = max_tries
        """A batch refused this many times for a reason other than the connection (bad
        data) is dropped rather than blocking every later attempt."""
        self.on_dropped = on_dropped
        self.written = 0
        self.dropped_total = 0
        self._buffer: deque[FinishedAttempt] = deque()
        self._bytes = 0
        self._dropping = False  # in a drop episode: logged once when it starts

    # -- the runner's side -----------------------------------------------------------

    def record(
        self, uid: str, event: TaskFinished, started_at: float | None, retry: int = 0
    ) -> None:
        """An attempt ended: archive it soon. Never waits, never raises."""
        row = finished_attempt(uid, event, started_at, retry)
        self._buffer.append(row)
        self._bytes += row.size
        dropped = 0
        while len(self._buffer) > 1 and (
            len(self._buffer) > self.max_pending or self._bytes > self.max_pending_bytes
        ):
            self._bytes -= self._buffer.popleft().size
            dropped += 1
        if dropped:
            self._drop(dropped, "the archive is too slow or unreachable")
        self._wake_writer()

    @property
    def pending(self) -> int:
        """Attempts held in memory: buffered plus the batch in flight."""
        return len(self._buffer) + len(self._inflight or ())

    # -- the writer task -------------------------------------------------------------

    def _drop(self, count: int, why: str) -> None:
        self.dropped_total += count
        if self.on_dropped is not None:
            self.on_dropped(count)
        if not self._dropping:
            self._dropping = True
            log.warning("archive: dropping attempt records: %s", why)

    def _holding(self) -> bool:
        return bool(self._buffer)

    def _take(self) -> list[FinishedAttempt] | None:
        take = min(self.batch_size, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(take)]
        self._bytes -= sum(r.size for r in batch)
        return batch or None

    async def _write(self, batch: list[FinishedAttempt]) -> None:
        await self.save(batch)

    def _written(self, batch: list[FinishedAttempt]) -> None:
        self.written += len(batch)
        if self._dropping:
            self._dropping = False
            log.info(
                "archive: writing attempt records again (%d dropped so far)",
                self.dropped_total,
            )

    def _failed(
        self, batch: list[FinishedAttempt], err: Exception, backoff: float
    ) -> list[FinishedAttempt] | None:
        if self.tries >= self.max_tries and not transient(err):
            log.error("archive: %d attempt records refused (%s); dropped", len(batch), err)
            self._drop(len(batch), str(err))
            return None
        log.warning(
            "archive: writing %d attempt records failed (%s); retrying in %.1fs",
            len(batch),
            err,
            backoff,
        )
        return batch
