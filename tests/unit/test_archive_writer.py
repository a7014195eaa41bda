"""BackgroundWriter: the loop every archive recorder shares, tested on a minimal queue."""

from __future__ import annotations

import asyncio
from collections import deque

from shoal.archive.writer import BackgroundWriter


class ListWriter(BackgroundWriter[str]):
    """Writes one string at a time; `refuse` names strings the database rejects."""

    def __init__(self, fail_first: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__(backoff_seconds=0.001, max_backoff_seconds=0.004)
        self.queue: deque[str] = deque()
        self.saved: list[str] = []
        self.given_up: list[str] = []
        self.backoffs: list[float] = []
        self.fail_first = fail_first
        self.refuse = refuse

    def offer(self, value: str) -> None:
        self.queue.append(value)
        self._wake_writer()

    def _holding(self) -> bool:
        return bool(self.queue)

    def _take(self) -> str | None:
        return self.queue.popleft() if self.queue else None

    async def _write(self, batch: str) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ConnectionResetError("connection lost")
        if batch in self.refuse:
            raise ValueError(f"bad row {batch}")
        self.saved.append(batch)

    def _written(self, batch: str) -> None:
        pass

    def _failed(self, batch: str, err: Exception, backoff: float) -> str | None:
        self.backoffs.append(backoff)
        if self.refusals >= 2:  # refused twice (not a lost connection): give it up
            self.given_up.append(batch)
            return None
        return batch


async def test_a_lost_connection_is_retried_with_capped_doubling_backoff_in_order() -> None:
    writer = ListWriter(fail_first=5)
    writer.start()
    try:
        for value in ("a", "b", "c"):
            writer.offer(value)
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        await writer.close()
    assert writer.saved == ["a", "b", "c"]
    assert writer.backoffs == [0.001, 0.002, 0.004, 0.004, 0.004]
    assert writer.failures == 5


async def test_a_refused_batch_is_given_up_and_the_rest_still_written() -> None:
    writer = ListWriter(refuse=frozenset({"bad"}))
    writer.start()
    try:
        for value in ("a", "bad", "c"):
            writer.offer(value)
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        await writer.close()
    assert writer.saved == ["a", "c"]
    assert writer.given_up == ["bad"]
    assert writer.tries == writer.refusals == 0  # reset for the next batch


async def test_close_gives_up_after_its_grace_when_the_database_never_answers() -> None:
    writer = ListWriter(fail_first=10**9)
    writer.start()
    writer.offer("a")
    await asyncio.wait_for(writer.close(grace_seconds=0.05), 5)
    assert writer.saved == []
    assert writer.failures > 0
    await writer.close()  # closing twice is harmless
