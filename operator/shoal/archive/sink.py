"""Job log lines into PostgreSQL, without ever blocking the runner.

`ArchiveLogSink.write` is synchronous and O(1): it appends to a bounded in-memory
buffer. One asyncio task takes batches from that buffer and writes each with COPY; a
line is *acknowledged* once the COPY that carried it has committed. When the database
is slow, paused or gone, the buffer fills and the OLDEST unsent lines are dropped —
memory stays bounded and reconciliation never waits — and each affected stream gets a
marker line saying how many of its lines were lost, at the place they were lost.

A failed batch is retried with exponential backoff until it is written. If a connection
breaks after the server committed but before it answered, the retry writes the batch a
second time: delivery is at least once, never silently less.

Lines are stamped when `write` is called, to the millisecond; `id` (write order) orders
lines that share a stamp.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shoal.archive.pgtext import pg_text
from shoal.archive.writer import BackgroundWriter, transient

log = logging.getLogger("shoal.archive")

COLUMNS = ("workflow_uid", "node", "item_index", "attempt", "at", "line")
"""The columns every row has (the floor a plain COPY is measured with in bench/)."""
TABLE = "shoal_log_lines"
SINK_COLUMNS = (*COLUMNS, "retry", "line_no")
_STAGE = "shoal_log_lines_in"
# Each batch is COPYed into a session-local stage and moved with ON CONFLICT DO NOTHING:
# COPY alone cannot skip a line the archive already holds (schema v3's unique index).
_CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
    seq bigserial, workflow_uid text, node text, item_index integer, attempt integer,
    at timestamptz, line text, retry integer, line_no integer
) ON COMMIT DELETE ROWS
"""
_MOVE_STAGE = f"""
INSERT INTO {TABLE} ({", ".join(SINK_COLUMNS)})
SELECT {", ".join(SINK_COLUMNS)} FROM {_STAGE} ORDER BY seq
ON CONFLICT DO NOTHING
"""

Record = tuple[str, str, int, int, datetime, str, int, int | None]
"""One row of `shoal_log_lines`, in `SINK_COLUMNS` order: the stream (uid, node, item,
attempt), when, the line, the `shoal retry` round and the line's number in its log (None
for Shoal's own marker lines)."""
StreamKey = tuple[str, str, int, int]
"""(workflow uid, node, item index, attempt): one container's log."""


def dropped_marker(count: int) -> str:
    return f"[shoal] {count} log lines dropped: the archive was too slow"


def capped_marker(limit: int) -> str:
    return f"[shoal] log size cap of {limit} characters reached: later lines are not archived"


@dataclass(slots=True)
class _Gap:
    count: int
    first_at: datetime


class LogBuffer:
    """Unsent lines, oldest first, never more than `max_lines` of them nor more than
    `max_chars` characters of line text (a count of lines alone let 100,000 lines of
    64 KiB each hold gigabytes during an outage).

    Pure bookkeeping (no I/O), so the drop policy is unit-tested on its own.
    """

    def __init__(self, max_lines: int, max_chars: int = 32 * 1024 * 1024) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.dropped_total = 0
        self.chars = 0
        """Characters of line text held now."""
        self._lines: deque[Record] = deque()
        self._gaps: dict[StreamKey, _Gap] = {}

    def __len__(self) -> int:
        return len(self._lines)

    def append(self, record: Record) -> int:
        """Add a line; returns how many old lines were dropped to make room.

        A line is always kept (the newest), even alone over `max_chars`: the sink caps
        each line's length before it gets here.
        """
        dropped = 0
        self.chars += len(record[5])
        self._lines.append(record)
        while len(self._lines) > 1 and (
            len(self._lines) > self.max_lines or self.chars > self.max_chars
        ):
            old = self._lines.popleft()
            self.chars -= len(old[5])
            self.lost(old[:4], old[4], 1)
            dropped += 1
        return dropped

    def lost(self, key: StreamKey, first_at: datetime, count: int) -> None:
        """Count lines of one stream that will never be written (a marker replaces them)."""
        gap = self._gaps.get(key)
        if gap is None:
            self._gaps[key] = _Gap(count, first_at)
        else:
            gap.count += count
        self.dropped_total += count

    @property
    def empty(self) -> bool:
        """Nothing to write: no lines and no pending marker."""
        return not self._lines and not self._gaps

    def take(self, limit: int) -> list[Record]:
        """Remove and return up to `limit` lines, preceded by a marker for each gap.

        A stream's marker comes before its remaining lines, which are all newer than the
        ones dropped, so the marker sits exactly where the lines went missing.
        """
        batch: list[Record] = [
            (*key, gap.first_at, dropped_marker(gap.count), 0, None)
            for key, gap in self._gaps.items()
        ]
        self._gaps.clear()
        lines = self._lines
        for _ in range(min(limit, len(lines))):
            record = lines.popleft()
            self.chars -= len(record[5])
            batch.append(record)
        return batch


def _sanitize(record: Record) -> Record:
    return (*record[:5], pg_text(record[5]), *record[6:])


class ArchiveLogSink(BackgroundWriter[list[Record]]):
    """The runner's `LogSink`, backed by a bounded buffer and a COPY writer task."""

    task_name = "shoal-archive-logs"
    close_grace_seconds = 10.0

    def __init__(
        self,
        pool: Any,
        *,
        max_lines: int = 100_000,
        max_chars: int = 32 * 1024 * 1024,
        batch_lines: int = 10_000,
        max_line_chars: int = 64 * 1024,
        max_run_chars: int | None = None,
        timeout_seconds: float = 30.0,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 10.0,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds)
        self.pool = pool
        self.buffer = LogBuffer(max_lines, max_chars)
        self.batch_lines = batch_lines
        self.max_line_chars = max_line_chars
        self.max_run_chars = max_run_chars
        self.timeout_seconds = timeout_seconds
        self.on_dropped = on_dropped
        self.acknowledged = 0
        """Lines (markers included) whose COPY has committed."""
        self.accepted = 0
        """Lines `write` has taken (markers excluded, capped lines excluded)."""
        self._run_chars: dict[str, int] = {}
        self._tick = -1.0
        self._now = datetime.now(UTC)

    # -- the runner's side ----------------------------------------------------------

    def write(
        self,
        uid: str,
        node: str,
        index: int,
        attempt: int,
        line: str,
        *,
        retry: int = 0,
        line_no: int | None = None,
    ) -> None:
        """Archive one line. `line_no` (its number in the container's log) makes a line
        written twice (a re-read after a restart) land once."""
        if len(line) > self.max_line_chars:
            line = line[: self.max_line_chars] + " [shoal] line truncated"
        if self.max_run_chars is not None:
            used = self._run_chars.get(uid, 0)
            if used > self.max_run_chars:  # capped, and the marker already written
                return
            used += len(line)
            self._run_chars[uid] = used
            if used > self.max_run_chars:
                line, line_no = capped_marker(self.max_run_chars), None
        self.accepted += 1
        tick = time.monotonic()
        if tick - self._tick >= 0.001:  # datetime.now costs more than the rest of write
            self._tick, self._now = tick, datetime.now(UTC)
        dropped = self.buffer.append((uid, node, index, attempt, self._now, line, retry, line_no))
        if dropped and self.on_dropped is not None:
            self.on_dropped(dropped)
        self._wake_writer()

    def forget(self, uid: str) -> None:
        """The run is over: release its size accounting."""
        self._run_chars.pop(uid, None)

    @property
    def pending(self) -> int:
        """Lines held in memory: buffered plus the batch in flight.

        At most `max_lines` + `batch_lines` + one marker per stream that lost lines.
        """
        return len(self.buffer) + len(self._inflight or ())

    # -- the writer task ------------------------------------------------------------

    def _holding(self) -> bool:
        return not self.buffer.empty

    def _take(self) -> list[Record] | None:
        return self.buffer.take(self.batch_lines) or None

    async def _write(self, batch: list[Record]) -> None:
        await self._copy(batch)

    def _written(self, batch: list[Record]) -> None:
        self.acknowledged += len(batch)

    def _failed(self, batch: list[Record], err: Exception, backoff: float) -> list[Record] | None:
        if transient(err):
            pass
        elif self.refusals == 1:  # refused, not lost: perhaps a byte PostgreSQL rejects
            batch = [_sanitize(r) for r in batch]
        elif self.refusals >= 3:
            log.error("archive: dropping a batch of %d lines: %s", len(batch), err)
            self._lose(batch)
            return None
        log.warning(
            "archive: writing %d log lines failed (%s); retrying in %.1fs",
            len(batch),
            err,
            backoff,
        )
        return batch

    def _lose(self, batch: list[Record]) -> None:
        # Per stream, so each affected log shows its own gap.
        for record in batch:
            self.buffer.lost(record[:4], record[4], 1)
        if self.on_dropped is not None:
            self.on_dropped(len(batch))

    async def _copy(self, records: list[Record]) -> None:
        async with self.pool.acquire(timeout=self.timeout_seconds) as conn, conn.transaction():
            await conn.execute(_CREATE_STAGE, timeout=self.timeout_seconds)
            await conn.copy_records_to_table(
                _STAGE, records=records, columns=SINK_COLUMNS, timeout=self.timeout_seconds
            )
            await conn.execute(_MOVE_STAGE, timeout=self.timeout_seconds)
