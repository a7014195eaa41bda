"""AttemptRecorder (per-item, per-attempt history) without a database: rows, bound, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from shoal.api.limits import MAX_ARCHIVED_OUTPUTS_BYTES as MAX_OUTPUTS_BYTES
from shoal.archive.attempts import (
    AttemptRecorder,
    FinishedAttempt,
    finished_attempt,
)
from shoal.core.state import TaskFinished


def finished(index: int, attempt: int = 1, *, ok: bool = True, **extra: object) -> TaskFinished:
    return TaskFinished("fan", index, attempt, ok, 1_700_000_010.0, **extra)  # type: ignore[arg-type]


def test_a_row_holds_what_the_attempt_ended_with() -> None:
    event = finished(3, 2, ok=False, exit_code=1, message="boom\x00", outputs={})
    row = finished_attempt("u1", event, 1_700_000_000.0, retry=1)
    assert (row.uid, row.node, row.index, row.attempt, row.retry) == ("u1", "fan", 3, 2, 1)
    assert (row.phase, row.exit_code, row.message) == ("Failed", 1, "boom\ufffd")
    assert row.outputs_json is None
    assert row.started_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert row.finished_at == datetime.fromtimestamp(1_700_000_010, UTC)

    ok = finished_attempt("u1", finished(0, outputs={"n": 3, "s": "a\x00b"}), None)
    assert ok.phase == "Succeeded"
    assert ok.started_at is None
    assert json.loads(ok.outputs_json or "") == {"n": 3, "s": "a\ufffdb"}


def test_outputs_over_the_cap_are_replaced_by_a_note() -> None:
    big = {"blob": "x" * (MAX_OUTPUTS_BYTES + 10)}
    row = finished_attempt("u1", finished(0, outputs=big), None)
    assert row.outputs_json is None
    assert row.outputs_omitted == "outputs of 64 KiB are too large for the archive"


async def test_attempts_are_written_in_batches_and_retried_while_the_database_is_down() -> None:
    saved: list[FinishedAttempt] = []
    up = asyncio.Event()
    calls: list[int] = []

    async def save(rows: Sequence[FinishedAttempt]) -> None:
        calls.append(len(rows))
        if not up.is_set():
            raise ConnectionRefusedError("down")
        saved.extend(rows)

    rec = AttemptRecorder(save, batch_size=40, backoff_seconds=0.001, max_backoff_seconds=0.01)
    rec.start()
    try:
        for n in range(100):
            rec.record("u1", finished(n), None)
        async with asyncio.timeout(5):
            while rec.failures < 3:  # noqa: ASYNC110 (a counter, not an event)
                await asyncio.sleep(0.001)
        assert rec.written == 0
        up.set()
        await asyncio.wait_for(rec.drain(), 5)
    finally:
        await rec.close()
    assert [r.index for r in saved] == list(range(100))
    assert max(calls) == 40
    assert rec.dropped_total == 0


async def test_a_full_buffer_drops_the_oldest_counts_them_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drops: list[int] = []
    never = asyncio.Event()

    async def save(rows: Sequence[FinishedAttempt]) -> None:
        await never.wait()  # a frozen database: the first batch hangs

    rec = AttemptRecorder(save, max_pending=10, batch_size=5, on_dropped=drops.append)
    rec.start()
    try:
        rec.record("u1", finished(0), None)
        await asyncio.sleep(0)  # the writer takes it and hangs
        assert rec.pending == 1
        for n in range(1, 101):
            rec.record("u1", finished(n), None)
            assert rec.pending <= 10 + 5
    finally:
        await rec.close(grace_seconds=0)
    assert rec.dropped_total == sum(drops) == 100 - 10
    assert rec.pending == 11  # one in flight, the ten newest buffered
    warnings = [r for r in caplog.records if "dropping attempt records" in r.getMessage()]
    assert len(warnings) == 1


async def test_the_byte_bound_holds_with_large_rows() -> None:
    async def save(rows: Sequence[FinishedAttempt]) -> None:
        await asyncio.Event().wait()

    rec = AttemptRecorder(save, max_pending_bytes=200_000)
    outputs = {"v": "y" * 30_000}
    for n in range(50):
        rec.record("u1", finished(n, outputs=outputs), None)
    assert rec.dropped_total > 0
    assert rec.pending * 30_000 <= 200_000 + 30_000


async def test_a_batch_refused_as_bad_data_is_dropped_after_three_tries() -> None:
    class BadData(Exception):
        pass

    seen: list[int] = []

    async def save(rows: Sequence[FinishedAttempt]) -> None:
        if any(r.index == 1 for r in rows):
            raise BadData("invalid input syntax")
        seen.extend(r.index for r in rows)

    rec = AttemptRecorder(save, batch_size=1, backoff_seconds=0.001)
    rec.start()
    try:
        for n in range(3):
            rec.record("u1", finished(n), None)
        await asyncio.wait_for(rec.drain(), 5)
    finally:
        await rec.close()
    assert seen == [0, 2]
    assert rec.dropped_total == 1
    assert rec.failures == 3
