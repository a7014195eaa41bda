"""The archive's log buffer and sink without a database: drops, markers, memory bound."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from shoal.archive.sink import ArchiveLogSink, LogBuffer, Record, capped_marker, dropped_marker

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(node: str, n: int, index: int = 0) -> Record:
    return ("uid", node, index, 1, T0, f"{node}-{n}", 0, n)


def test_buffer_keeps_everything_below_the_cap() -> None:
    buf = LogBuffer(10)
    for n in range(10):
        assert buf.append(rec("a", n)) == 0
    assert [r[5] for r in buf.take(100)] == [f"a-{n}" for n in range(10)]
    assert buf.empty


def test_full_buffer_drops_the_oldest_and_marks_the_gap() -> None:
    buf = LogBuffer(3)
    dropped = sum(buf.append(rec("a", n)) for n in range(5))
    assert dropped == 2
    assert buf.dropped_total == 2
    assert len(buf) == 3
    assert [r[5] for r in buf.take(100)] == [dropped_marker(2), "a-2", "a-3", "a-4"]


def test_each_stream_gets_its_own_marker_before_its_remaining_lines() -> None:
    buf = LogBuffer(2)
    for record in (rec("a", 0), rec("b", 0), rec("b", 1, index=3), rec("a", 1)):
        buf.append(record)
    batch = buf.take(100)
    markers = {(r[1], r[2]): r[5] for r in batch if r[5].startswith("[shoal]")}
    assert markers == {("a", 0): dropped_marker(1), ("b", 0): dropped_marker(1)}
    assert [r[5] for r in batch[2:]] == ["b-1", "a-1"]


def test_take_respects_the_batch_limit_and_the_marker_keeps_the_first_lost_time() -> None:
    buf = LogBuffer(2)
    late = datetime(2026, 1, 2, tzinfo=UTC)
    buf.append(rec("a", 0))
    buf.append(("uid", "a", 0, 1, late, "a-1"))
    buf.append(rec("a", 2))
    batch = buf.take(1)
    assert batch[0][4] == T0
    assert [r[5] for r in batch] == [dropped_marker(1), "a-1"]
    assert [r[5] for r in buf.take(1)] == ["a-2"]


def test_the_buffer_is_bounded_by_characters_too() -> None:
    """Long lines fill memory long before many short ones: 100 lines of 1,000 chars in a
    buffer of 10,000 chars keep only the newest 10, and say how many went."""
    buf = LogBuffer(max_lines=1_000, max_chars=10_000)
    for n in range(100):
        buf.append(("uid", "a", 0, 1, T0, f"{n:04d}" + "x" * 996))
    assert buf.chars <= 10_000
    assert len(buf) == 10
    batch = buf.take(100)
    assert batch[0][5] == dropped_marker(90)
    assert [r[5][:4] for r in batch[1:]] == [f"{n:04d}" for n in range(90, 100)]
    assert buf.chars == 0


def test_one_line_over_the_character_bound_is_still_kept() -> None:
    buf = LogBuffer(max_lines=10, max_chars=5)
    buf.append(rec("a", 0))
    assert buf.append(("uid", "a", 0, 1, T0, "y" * 50)) == 1
    assert [r[5] for r in buf.take(10)] == [dropped_marker(1), "y" * 50]


def test_a_buffer_needs_room_for_a_line() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LogBuffer(0)
    with pytest.raises(ValueError, match="at least 1"):
        LogBuffer(10, max_chars=0)


class _DeadPool:
    """A pool whose database is unreachable."""

    def __init__(self) -> None:
        self.tries = 0

    def acquire(self, timeout: float | None = None) -> Any:
        self.tries += 1
        raise ConnectionRefusedError("no database")


async def test_sink_memory_is_bounded_while_the_database_is_unreachable() -> None:
    drops: list[int] = []
    pool = _DeadPool()
    sink = ArchiveLogSink(
        pool, max_lines=1000, batch_lines=100, backoff_seconds=0.001, on_dropped=drops.append
    )
    sink.start()
    try:
        for n in range(50_000):
            sink.write("uid", "a", 0, 1, f"line {n}")
            assert sink.pending <= 1000 + 100 + 1  # buffer, one batch, its gap marker
            if n % 5000 == 0:
                await asyncio.sleep(0.01)  # let the writer fail and back off meanwhile
        assert pool.tries > 1
        assert sink.acknowledged == 0
        assert sink.buffer.dropped_total == sum(drops) >= 50_000 - 1100
        assert sink.accepted == 50_000
    finally:
        await sink.close(grace_seconds=0.05)


async def test_write_never_waits_for_the_database() -> None:
    sink = ArchiveLogSink(_DeadPool(), max_lines=10)
    # No running writer task at all: write still returns at once.
    for n in range(100):
        sink.write("uid", "a", 0, 1, str(n))
    assert len(sink.buffer) == 10
    assert sink.buffer.dropped_total == 90


def test_long_lines_are_truncated_and_a_run_over_its_cap_is_marked_once() -> None:
    sink = ArchiveLogSink(_DeadPool(), max_line_chars=10, max_run_chars=40)
    sink.write("u", "a", 0, 1, "x" * 50)
    assert sink.buffer.take(1)[0][5] == "x" * 10 + " [shoal] line truncated"
    sink.write("u", "a", 0, 1, "y" * 5)
    sink.write("u", "a", 0, 1, "z" * 5)
    sink.write("u", "a", 0, 1, "never archived")
    assert [r[5] for r in sink.buffer.take(10)] == ["y" * 5, capped_marker(40)]
    sink.forget("u")
    sink.write("u", "a", 0, 1, "again")
    assert [r[5] for r in sink.buffer.take(10)] == ["again"]
