"""The local executor's inbox (local/inbox.py): an event posted from a callback wakes the
loop's one wait, events that arrive together are taken as one batch in order, and a wait
with a bound ends at it with nothing to take."""

from __future__ import annotations

import asyncio
import time

from shoal.local.inbox import Inbox


def test_events_posted_together_are_taken_together_in_order() -> None:
    async def scenario() -> tuple[bool, list[str], list[str]]:
        inbox: Inbox[str] = Inbox()
        loop = asyncio.get_running_loop()
        loop.call_soon(inbox.post, "first")  # both from callbacks of one loop turn
        loop.call_soon(inbox.post, "second")
        woke = await asyncio.wait_for(inbox.wait(None), 30)
        return woke, inbox.take(), inbox.take()

    assert asyncio.run(scenario()) == (True, ["first", "second"], [])


def test_an_event_already_there_is_taken_without_waiting() -> None:
    async def scenario() -> tuple[bool, list[int]]:
        inbox: Inbox[int] = Inbox()
        inbox.post(1)
        return await asyncio.wait_for(inbox.wait(60), 1), inbox.take()

    assert asyncio.run(scenario()) == (True, [1])


def test_a_bounded_wait_ends_at_its_bound_with_nothing_to_take() -> None:
    async def scenario() -> tuple[bool, float, bool]:
        inbox: Inbox[int] = Inbox()
        start = time.monotonic()
        woke = await asyncio.wait_for(inbox.wait(0.05), 30)
        took = time.monotonic() - start
        inbox.post(2)  # after the wait: kept for the next one
        return woke, took, await asyncio.wait_for(inbox.wait(None), 30)

    woke, took, later = asyncio.run(scenario())
    assert (woke, later) == (False, True)
    assert 0.04 <= took < 30
