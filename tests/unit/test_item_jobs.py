"""The runner's Job clean-up after status writes (kube/item_jobs.JobCleanup).

What a user relies on: an item's Job is deleted only after a status write that records
the item has landed (never before, never for a failed item or one podGC keeps), every
attempt of an item goes in the same request, and a new item's Job waits (bounded) while
its node already has `parallelism` succeeded items' Jobs on their way out.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from shoal.kube import item_jobs
from shoal.kube.attempts import Attempt
from shoal.kube.item_jobs import MAX_ROOM_WAIT_SECONDS, JobCleanup
from shoal.kube.pod_gc import PodCleanup


class FakeApi:
    """Records delete-collection selectors; each call waits on `gate` when one is set."""

    def __init__(self) -> None:
        self.selectors: list[str] = []
        self.gate: asyncio.Event | None = None

    async def delete_collection(self, path: str, label_selector: str, **_: Any) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.selectors.append(label_selector)


def cleanup(strategy: str | None = "OnPodSuccess") -> tuple[JobCleanup, FakeApi, list[Any]]:
    api = FakeApi()
    tasks: list[Any] = []
    attempts: dict[tuple[str, int, int], Attempt] = {}
    gc = PodCleanup(uid="u1", strategy=strategy)
    spawned = JobCleanup(
        cast(Any, api), "ns", gc, attempts, lambda c: tasks.append(asyncio.ensure_future(c))
    )
    return spawned, api, tasks


def attempt(index: int, number: int = 1) -> Attempt:
    return Attempt("fan", index, number, job=f"j-{index}-{number}", created_at=0.0)


def status(ranges: str | None, total: int = 10, phase: str = "Running") -> dict[str, Any]:
    entry: dict[str, Any] = {"phase": phase, "items": {"total": total}}
    if ranges is not None:
        entry["succeededItems"] = ranges
    return {"nodes": {"fan": entry}}


async def test_a_job_goes_only_after_a_write_that_records_its_item() -> None:
    jobs, api, tasks = cleanup()
    jobs.ended(attempt(0, 1), succeeded=False)
    jobs.ended(attempt(0, 2), succeeded=True)
    jobs.ended(attempt(1), succeeded=True)
    jobs.ended(attempt(2), succeeded=False)
    jobs.written(status(None), [])  # a write from before the items were recorded
    await asyncio.gather(*tasks)
    assert api.selectors == []
    jobs.written(status("0-1"), [])
    await asyncio.gather(*tasks)
    # Both attempts of item 0 and item 1, in one request; failed item 2 stays.
    assert api.selectors == [
        "app.kubernetes.io/managed-by=shoal,shoal.dev/workflow-uid=u1,"
        "shoal.dev/node=fan,shoal.dev/item in (0,1)"
    ]
    assert jobs.deleted == 2
    jobs.written(status("0-1"), [])
    await asyncio.gather(*tasks)
    assert len(api.selectors) == 1, "deleted once"


async def test_podgc_selectors_wait_for_the_write_and_survive_a_failed_one() -> None:
    jobs, api, tasks = cleanup()
    jobs.after_next_write("sel-a")
    due = jobs.take()
    jobs.after_next_write("sel-b")  # decided while the write was in flight
    jobs.put_back(due)  # that write failed
    due = jobs.take()
    assert due == ["sel-a", "sel-b"]
    jobs.written(status(None, phase="Succeeded"), due)
    await asyncio.gather(*tasks)
    assert api.selectors == ["sel-a", "sel-b"]


async def test_the_default_keeps_the_first_items_and_a_finished_node_is_left_to_podgc() -> None:
    jobs, api, tasks = cleanup(strategy=None)
    jobs.pod_gc.limit = 3
    for i in range(5):
        jobs.ended(attempt(i), succeeded=True)
    jobs.written(status("0-4"), [])
    await asyncio.gather(*tasks)
    assert api.selectors[0].endswith("shoal.dev/item in (3,4)")
    jobs.ended(attempt(5), succeeded=True)
    jobs.written(status("0-5", phase="Succeeded"), [])
    await asyncio.gather(*tasks)
    assert len(api.selectors) == 1


async def test_a_new_items_job_waits_while_parallelism_items_are_leaving() -> None:
    jobs, api, tasks = cleanup()
    api.gate = asyncio.Event()
    for i in range(2):
        jobs.ended(attempt(i), succeeded=True)
    waiter = asyncio.ensure_future(jobs.room("fan", 2))
    await asyncio.sleep(0)  # let it start waiting
    assert not waiter.done()
    jobs.written(status("0-1"), [])  # recorded: the deletion is in flight, still leaving
    await asyncio.sleep(0)
    assert not waiter.done()
    jobs.written(status("0-1"), [])  # a later write does not forget a deletion in flight
    await asyncio.sleep(0)
    assert not waiter.done()
    api.gate.set()  # the deletion landed
    await asyncio.wait_for(waiter, 1)
    await asyncio.gather(*tasks)
    await asyncio.wait_for(jobs.room("fan", 2), 1)  # no wait once they are gone
    await asyncio.wait_for(jobs.room("fan", None), 1)  # no parallelism: never waits


async def test_items_whose_jobs_stay_stop_counting_as_leaving() -> None:
    jobs, _, tasks = cleanup()
    for i in range(3):
        jobs.ended(attempt(i), succeeded=True)
    jobs.written(status(None), [])  # the record does not fit: these Jobs stay
    await asyncio.wait_for(jobs.room("fan", 1), 1)
    await asyncio.gather(*tasks)


async def test_the_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_ROOM_WAIT_SECONDS <= 10  # a failing status write delays items, never stalls
    monkeypatch.setattr(item_jobs, "MAX_ROOM_WAIT_SECONDS", 0.2)
    jobs, _, _ = cleanup()
    jobs.ended(attempt(0), succeeded=True)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(jobs.room("fan", 1), 2)
    assert loop.time() - began >= 0.2
