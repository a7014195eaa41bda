"""The local executor's events (an attempt's end, an artifact step's result, a stop) and
the one wait of its loop.

Everything posted while the executor waits is taken as one batch, so exits that arrive
together cost one planner step. The wait runs on either kind of reactor
(local/reactor.py): `wait_blocking` runs a `SelectReactor` until an event is there (the
plain CLI), `wait` sleeps on one bare asyncio future with a timer armed only when the plan
has a deadline (`--ui`, tests). An `asyncio.Queue` under `asyncio.timeout` would cost a
getter future, a timeout context and two running-loop look-ups per wait, that is per item
in a fan-out of `true`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import asyncio

    from shoal.local.reactor import SelectReactor

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

    def __bool__(self) -> bool:
        return bool(self._items)

    def wait_blocking(self, reactor: SelectReactor, bound: float | None) -> bool:
        """Run `reactor` until an event is there or `bound` seconds have passed (None: no
        bound); True if there are events to take."""
        return reactor.run_until(self.__bool__, bound)

    async def wait(self, bound: float | None) -> bool:
        """On the running asyncio loop: until an event is there or `bound` seconds have
        passed (None: no bound); True if there are events to take."""
        if self._items:
            return True
        import asyncio

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
