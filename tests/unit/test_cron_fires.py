"""Cron fires into the archive: never waiting, bounded, retried until written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shoal.cron.fires import Fire, FireRecorder
from shoal.cron.runs import manual_time

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fire(n: int) -> Fire:
    return Fire("ns", "c", T0 + timedelta(seconds=n), f"c-{n}")


def test_offers_are_written_in_order_and_retried_after_a_failure() -> None:
    written: list[Fire] = []
    failures = [RuntimeError("db down")]

    async def record(f: Fire) -> object:
        if failures:
            raise failures.pop()
        written.append(f)
        return True

    async def go() -> FireRecorder:
        recorder = FireRecorder(record, backoff_seconds=0.001)
        recorder.start()
        for n in range(3):
            recorder.offer(fire(n))  # returns at once: nothing is awaited
        await asyncio.wait_for(recorder.drain(), timeout=10)
        await recorder.close()
        return recorder

    recorder = asyncio.run(go())
    assert written == [fire(0), fire(1), fire(2)]
    assert (recorder.written, recorder.pending, recorder.dropped) == (3, 0, 0)


def test_a_stuck_database_drops_the_oldest_beyond_capacity_and_close_is_bounded() -> None:
    async def record(f: Fire) -> object:
        await asyncio.Event().wait()  # never answers
        return True

    async def go() -> FireRecorder:
        recorder = FireRecorder(record, capacity=2)
        recorder.start()
        for n in range(5):
            recorder.offer(fire(n))
        await asyncio.wait_for(recorder.close(grace_seconds=0.05), timeout=10)
        return recorder

    recorder = asyncio.run(go())
    assert recorder.dropped == 3
    assert recorder.pending == 2
    assert recorder.written == 0


def test_a_manual_runs_time_is_its_creation_second_plus_a_uid_fraction() -> None:
    a, b = manual_time("uid-a", T0), manual_time("uid-b", T0)
    assert a == manual_time("uid-a", T0)  # the same after a restart
    assert a != b
    for t in (a, b):
        assert T0 <= t < T0 + timedelta(seconds=1)
