"""The shared Workflow watch's fan-out, fed by hand (no API server): subscribers get
every change after the first listing, in order; a slow one is ended, not buffered for
ever; a re-list ends every subscription so clients reload their snapshot."""

from __future__ import annotations

from typing import Any

from shoal.server.informer import QUEUE_SIZE, WorkflowInformer


def wf(name: str, namespace: str = "a", phase: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}"}}
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def informer() -> WorkflowInformer:
    api: Any = None  # never used: events are applied by hand
    return WorkflowInformer(api)


def drain(queue: Any) -> list[Any]:
    found = []
    while not queue.empty():
        found.append(queue.get_nowait())
    return found


async def test_changes_after_the_listing_reach_every_subscriber_in_order() -> None:
    shared = informer()
    first, second = shared.subscribe(), shared.subscribe()
    shared._task.cancel()  # type: ignore[union-attr]
    shared._apply("RESET", {})
    shared._apply("ADDED", wf("one"))
    shared._apply("SYNCED", {})
    assert [c.summary.metadata.name for c in shared.snapshot()] == ["one"]
    assert drain(first.queue) == []  # the listing is the snapshot, not changes
    shared._apply("MODIFIED", wf("one", phase="Running"))
    shared._apply("ADDED", wf("two", namespace="b"))
    shared._apply("DELETED", wf("one"))
    for subscriber in (first, second):
        seen = [(c.type, c.namespace, c.summary.metadata.name) for c in drain(subscriber.queue)]
        assert seen == [("MODIFIED", "a", "one"), ("ADDED", "b", "two"), ("DELETED", "a", "one")]
    assert [c.summary.metadata.name for c in shared.snapshot()] == ["two"]
    shared.unsubscribe(second)
    shared._apply("ADDED", wf("three"))
    assert len(drain(first.queue)) == 1
    assert drain(second.queue) == []


async def test_a_slow_subscriber_is_ended_and_a_relist_ends_everyone() -> None:
    shared = informer()
    slow, other = shared.subscribe(), shared.subscribe()
    shared._task.cancel()  # type: ignore[union-attr]
    shared._apply("RESET", {})
    shared._apply("SYNCED", {})
    for index in range(QUEUE_SIZE + 1):
        shared._apply("ADDED", wf(f"w{index}"))
        if index == QUEUE_SIZE // 2:
            drain(other.queue)  # this one keeps up
    assert slow.ended == "overflow"
    assert slow.queue.qsize() <= QUEUE_SIZE
    assert drain(slow.queue)[-1] is None  # its stream ends, saying why
    assert other.ended is None
    shared._apply("RESET", {})  # the watch expired: deletions in between are unknown
    assert other.ended == "resync"
    assert drain(other.queue)[-1] is None
    assert shared.subscribers == set()
