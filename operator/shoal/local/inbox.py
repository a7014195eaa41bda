"""The local executor's events (an attempt's end, an artifact step's result, a stop) and
the one wait of its loop.

An `asyncio.Queue` read under `asyncio.timeout` costs, per wait, a getter future, a
timeout context and two running-loop look-ups (each a `getpid` system call on Linux);
in a fan-out of `true` that is a wait per item. Here the loop sleeps on one bare future,
a timer is armed only when the plan has a deadline, and everything posted meanwhile is
taken as one batch, so exits that arrive together cost one planner step.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """Events posted from callbacks of the loop, awaited by one reader."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def post(self, item: T) -> None:
        """Add an event; wakes the reader if it waits (never blocks, never raises)."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, bound: float | None) -> bool:
        """Until an event is there or `bound` seconds have passed (None: no bound);
        True if there are events to take."""
        if self._items:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if bound is None else loop.call_later(bound, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        return bool(self._items)

    def take(self) -> list[T]:
        """Every event posted so far, oldest first."""
        items = list(self._items)
        self._items.clear()
        return items


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
