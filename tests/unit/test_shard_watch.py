"""A sharded replica watches only its shards' pods (kube/shard_watch.py): the shard label
on every Job and pod, the server-side selectors, the restart when the held shards
change (make before break), the gate a newly held shard's work waits behind, and the
per-replica count of pod events."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.decisions import StartTask
from shoal.core.planner import advance
from shoal.core.state import RunState
from shoal.core.validation import compile_workflow
from shoal.kube import shard_watch
from shoal.kube.api import KubeApi
from shoal.kube.jobs import JobDefaults, build_job
from shoal.kube.shard_leases import ShardLeases
from shoal.kube.shard_watch import (
    ShardPodWatch,
    counted,
    held_selector,
    shard_of_pod,
    unsharded_selector,
)
from shoal.sharding.policy import ShardTiming, shard_of
from tests.unit.test_shard_leases import NS, Clock, FakeLeases

BASE = "app.kubernetes.io/managed-by=shoal"
LEGACY = f"{BASE},!shoal.dev/shard"
TIMING = ShardTiming(shards=4, lease_duration=6.0, renew_deadline=4.0, retry_period=1.0)


# -- the label, written once ----------------------------------------------------------


def starts(uid: str) -> tuple[CompiledWorkflow, list[StartTask]]:
    """A fan-out of two items, compiled, and the planner's first StartTasks."""
    spec = {"nodes": [{"name": "fan", "forEach": [1, 2], "command": ["true"]}]}
    meta = WorkflowMeta(name="wf", namespace="a", uid=uid)
    wf = compile_workflow(WorkflowSpec.model_validate(spec), meta, None)
    decisions = advance(wf, RunState.new(list(wf.order)), 0.0).decisions
    return wf, [d for d in decisions if isinstance(d, StartTask)]


@pytest.mark.parametrize("uid", ["uid-1", "uid-2", "3f6c-…-uid"])
def test_a_sharded_operators_jobs_and_pods_carry_the_workflows_shard(uid: str) -> None:
    wf, tasks = starts(uid)
    assert len(tasks) == 2
    for task in tasks:
        job = build_job(wf, task, JobDefaults(shards=8), token="t")
        expected = str(shard_of(uid, 8))
        assert job["metadata"]["labels"]["shoal.dev/shard"] == expected
        assert job["spec"]["template"]["metadata"]["labels"]["shoal.dev/shard"] == expected


def test_an_unsharded_operators_jobs_carry_no_shard_label() -> None:
    wf, tasks = starts("uid-1")
    job = build_job(wf, tasks[0], JobDefaults(), token="t")
    assert "shoal.dev/shard" not in job["metadata"]["labels"]
    assert "shoal.dev/shard" not in job["spec"]["template"]["metadata"]["labels"]
    sharded = json.loads(json.dumps(build_job(wf, tasks[0], JobDefaults(shards=4), token="t")))
    assert sharded["metadata"]["labels"].pop("shoal.dev/shard")
    assert sharded["spec"]["template"]["metadata"]["labels"].pop("shoal.dev/shard")
    assert sharded == job, "the label is the only difference"


# -- selectors and the metric label ---------------------------------------------------


def test_selectors_select_the_held_shards_or_the_unlabelled_pods_on_the_server() -> None:
    assert held_selector(BASE, [5, 1, 5, 3]) == f"{BASE},shoal.dev/shard in (1,3,5)"
    assert held_selector(BASE, []) is None
    assert unsharded_selector(BASE) == LEGACY


def test_the_metric_label_is_bounded_whatever_a_pod_claims() -> None:
    def pod(labels: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"labels": labels}}

    assert shard_of_pod(pod({"shoal.dev/shard": "3"}), 8) == "3"
    assert shard_of_pod(pod({"shoal.dev/shard": "03"}), 8) == "3"
    assert shard_of_pod(pod({}), 8) == "none"
    assert shard_of_pod({"metadata": None}, 8) == "none"
    for hostile in ("8", "-1", "x", "", "٣", 3):
        assert shard_of_pod(pod({"shoal.dev/shard": hostile}), 8) == "other", hostile


def test_counted_counts_by_shard_and_hands_the_same_pod_on() -> None:
    counter = PromCounter("pods", "test", ["shard"], registry=CollectorRegistry())
    seen: list[dict[str, Any]] = []
    handle = counted(counter, 4, lambda kind, pod: seen.append(pod))
    pods = [{"metadata": {"labels": {"shoal.dev/shard": s}}} for s in ("1", "1", "2")]
    for pod in [*pods, {"metadata": {}}]:
        handle("ADDED", pod)
    assert [p is q for p, q in zip(seen, pods, strict=False)] == [True] * 3
    values = {s: counter.labels(s)._value.get() for s in ("1", "2", "none", "other")}
    assert values == {"1": 2, "2": 1, "none": 1, "other": 0}


# -- the watch, restarted as the held shards change ------------------------------------


def noop(kind: str, pod: dict[str, Any]) -> None:
    """A pod handler that ignores what it is given."""


class FakePods:
    """Lists and watches by (path, selector): a list may be held back by a gate; a
    watch stream stays open (silent) until cancelled, and says so when it closes."""

    def __init__(self) -> None:
        self.lists: list[tuple[str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.open: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self._changed = asyncio.Event()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        """Wait (bounded) for a condition, woken by each list and each watch opened or
        closed (the watch switches coverage just before it opens its next stream)."""
        try:
            async with asyncio.timeout(5):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        selector = params["labelSelector"]
        self.lists.append((path, selector))
        self._poke()
        gate = self.gates.get(selector)
        if gate is not None:
            await gate.wait()
        return {"metadata": {"resourceVersion": "7"}, "items": self.items.get(selector, [])}

    async def lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        selector = params["labelSelector"]
        self.open[selector] += 1
        self._poke()
        try:
            await asyncio.Event().wait()
            yield ""  # never reached: a silent stream
        finally:
            self.open[selector] -= 1
            self.closed[selector] += 1
            self._poke()

    def selectors_listed(self) -> Counter[str]:
        return Counter(selector for _, selector in self.lists)


class FakeHeld:
    """The held set and its change signal, as `ShardLeases` publishes them."""

    def __init__(self) -> None:
        self.held: frozenset[int] = frozenset()
        self.changed = asyncio.Event()

    def publish(self, *shards: int) -> None:
        self.held = frozenset(shards)
        self.changed.set()
        self.changed = asyncio.Event()

    async def held_changed(self, seen: frozenset[int]) -> frozenset[int]:
        while self.held == seen:
            await self.changed.wait()
        return self.held


def sel(*shards: int) -> str:
    selector = held_selector(BASE, shards)
    assert selector is not None
    return selector


async def test_the_watch_follows_the_held_shards_and_switches_only_once_listed() -> None:
    api, held = FakePods(), FakeHeld()
    events: list[str] = []
    watch = ShardPodWatch(
        cast(KubeApi, api), ["b", "a"], BASE, lambda k, p: events.append(p["n"]), held
    )
    task = asyncio.create_task(watch.run())
    try:
        # Nothing held: only the unlabelled pods are watched, once per namespace.
        await api.until(lambda: api.open[LEGACY] == 2, "the unsharded watch")
        assert api.selectors_listed() == Counter({LEGACY: 2})
        assert watch.covered == frozenset()

        api.items[sel(1, 3)] = [{"n": "p1"}]
        held.publish(1, 3)
        await api.until(lambda: watch.covered == {1, 3}, "shards 1 and 3 covered")
        assert api.open[sel(1, 3)] == 2
        assert events == ["p1", "p1"]  # one list per namespace

        # Shard 1 goes, 5 comes: the old watch stays open until the new one has listed.
        api.gates[sel(3, 5)] = gate = asyncio.Event()
        held.publish(3, 5)
        await api.until(lambda: api.selectors_listed()[sel(3, 5)] == 2, "the new lists")
        assert api.open[sel(1, 3)] == 2, "no gap: the old watch runs while the new one lists"
        assert watch.covered == {1, 3}
        cover5 = asyncio.create_task(watch.covering(5))
        await asyncio.sleep(0)
        assert not cover5.done(), "shard 5's work waits for the watch that selects it"
        gate.set()
        await asyncio.wait_for(cover5, 5)
        assert watch.covered == {3, 5}
        await api.until(lambda: api.open[sel(1, 3)] == 0, "the old watch closed")
        assert api.open[sel(3, 5)] == 2
        assert api.open[LEGACY] == 2

        # Nothing held any more: no shard watch at all; the unsharded one stays.
        held.publish()
        await api.until(lambda: api.open[sel(3, 5)] == 0, "the shard watch closed")
        assert watch.covered == frozenset()
        assert api.open[LEGACY] == 2
        assert watch.restarts == 2
        assert api.selectors_listed() == Counter({LEGACY: 2, sel(1, 3): 2, sel(3, 5): 2})
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sum(api.open.values()) == 0, "cancelling the watch closes every stream"


async def test_a_change_before_the_pending_watch_listed_supersedes_it() -> None:
    api, held = FakePods(), FakeHeld()
    watch = ShardPodWatch(cast(KubeApi, api), ["a"], BASE, lambda k, p: None, held)
    task = asyncio.create_task(watch.run())
    try:
        api.gates[sel(1)] = asyncio.Event()  # never listed
        held.publish(1)
        await api.until(lambda: api.selectors_listed()[sel(1)] == 1, "shard 1's list")
        held.publish(1, 2)
        await api.until(lambda: watch.covered == {1, 2}, "shards 1 and 2 covered")
        assert api.open[sel(1)] == 0
        assert api.open[sel(1, 2)] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_unsharded_the_operator_watches_every_shoal_pod_as_before() -> None:
    api = FakePods()
    task = asyncio.create_task(
        shard_watch.pod_watch(cast(KubeApi, api), ["a", "b"], BASE, noop, None)
    )
    try:
        await api.until(lambda: api.open[BASE] == 2, "the watch of every Shoal pod")
        assert api.selectors_listed() == Counter({BASE: 2}), "no shard selector, no second watch"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_sharded_the_operator_gates_each_shards_work_on_its_watch() -> None:
    leases = ShardLeases(cast(KubeApi, FakeLeases()), NS, "a", TIMING, clock=Clock())
    coroutine = shard_watch.pod_watch(cast(KubeApi, FakePods()), ["a"], BASE, noop, leases)
    assert leases.work_gate is not None
    assert getattr(leases.work_gate, "__self__", None).__class__ is ShardPodWatch
    coroutine.close()


async def test_covering_is_bounded_when_the_watch_cannot_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shard_watch, "COVER_SECONDS", 0.05)
    watch = ShardPodWatch(cast(KubeApi, FakePods()), ["a"], BASE, lambda k, p: None, FakeHeld())
    await asyncio.wait_for(watch.covering(4), 5)  # returns (with a warning), never hangs
    assert watch.covered == frozenset()


# -- the change signal and the gate in ShardLeases --------------------------------------


async def test_the_leases_publish_the_held_set_once_per_pass() -> None:
    store, clock = FakeLeases(), Clock()
    leases = ShardLeases(cast(KubeApi, store), NS, "a", TIMING, clock=clock)
    waiter = asyncio.create_task(leases.held_changed(frozenset()))
    await asyncio.sleep(0)
    assert not waiter.done()
    await leases.tick()
    assert await asyncio.wait_for(waiter, 5) == {0, 1, 2, 3}
    again = asyncio.create_task(leases.held_changed(frozenset({0, 1, 2, 3})))
    await leases.tick()  # renewals only: no change, no signal
    assert not again.done()
    clock.now += TIMING.renew_deadline  # not renewed in time: every shard is let go
    leases._drop_expired()
    assert await asyncio.wait_for(again, 5) == frozenset()


async def test_a_newly_held_shards_work_starts_only_after_the_gate() -> None:
    store, clock = FakeLeases(), Clock()
    leases = ShardLeases(cast(KubeApi, store), NS, "a", TIMING, clock=clock)
    opened, gated = asyncio.Event(), asyncio.Event()
    asked: list[int] = []

    async def gate(shard: int) -> None:
        asked.append(shard)
        gated.set()
        await opened.wait()

    leases.work_gate = gate
    started, stopped = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()

    daemon = asyncio.create_task(leases.run_while_owned("uid-9", stopped, work))
    await leases.tick()
    await asyncio.wait_for(gated.wait(), 5)
    assert asked == [leases.shard("uid-9")]
    assert not started.is_set(), "no adoption before the watch covers the shard"
    opened.set()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(daemon, 5)


async def test_a_shards_work_starts_after_the_watch_that_selects_it_has_listed() -> None:
    """The lease loop, the watch and a Workflow's work together: the work (a runner that
    would adopt) starts only once the list of its shard's pods is done."""
    leases = ShardLeases(cast(KubeApi, FakeLeases()), NS, "a", TIMING, clock=Clock())
    api = FakePods()
    api.gates[sel(0, 1, 2, 3)] = listed = asyncio.Event()
    watch = asyncio.create_task(
        shard_watch.pod_watch(cast(KubeApi, api), ["a"], BASE, noop, leases)
    )
    gate, at_gate = leases.work_gate, asyncio.Event()
    assert gate is not None

    async def spied_gate(shard: int) -> None:
        at_gate.set()
        await gate(shard)

    leases.work_gate = spied_gate
    lists_done: list[tuple[Counter[str], bool]] = []

    async def work() -> None:
        lists_done.append((api.selectors_listed(), listed.is_set()))

    daemon = asyncio.create_task(leases.run_while_owned("uid-9", asyncio.Event(), work))
    try:
        await leases.tick()
        await asyncio.wait_for(at_gate.wait(), 5)
        await api.until(lambda: api.selectors_listed()[sel(0, 1, 2, 3)] == 1, "the shard list")
        assert lists_done == [], "the work waits while its shard's list is in flight"
        listed.set()
        await asyncio.wait_for(daemon, 5)
        assert lists_done == [(Counter({LEGACY: 1, sel(0, 1, 2, 3): 1}), True)]
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
