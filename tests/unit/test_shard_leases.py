"""The shard-lease adapter against an in-memory API server with resourceVersions: who
acquires, the write guard, drain-then-release, and losing a lease changed by another."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import pytest

from shoal.kube import write_guard
from shoal.kube.api import ApiError, KubeApi
from shoal.kube.shard_leases import ShardLeases, ShardNotHeld, shard_lease_name
from shoal.sharding.policy import ShardTiming

TIMING = ShardTiming(shards=4, lease_duration=6.0, renew_deadline=4.0, retry_period=1.0)
NS = "ops"


class FakeLeases:
    """Leases by name, each write checked against the resourceVersion it carries."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.writes: list[tuple[str, str]] = []

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.items[body["metadata"]["name"]] = body
        return copy.deepcopy(body)

    async def get(self, path: str, **_: Any) -> dict[str, Any]:
        return {"items": [copy.deepcopy(i) for i in self.items.values()]}

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        body = write_guard.checked(method, path, body)
        self.writes.append((method, path))
        name = path.rsplit("/", 1)[-1]
        if method == "POST":
            if body["metadata"]["name"] in self.items:
                raise ApiError(409, "AlreadyExists", "exists")
            return self._store(body)
        current = self.items.get(name)
        if current is None:
            raise ApiError(404, "NotFound", name)
        if method == "PUT":
            if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "changed")
            return self._store(body)
        if method == "PATCH":
            return self._store({**current, "spec": {**current["spec"], **body["spec"]}})
        raise AssertionError(method)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], await self.request("PATCH", path, body=body))

    async def create(
        self, path: str, body: dict[str, Any], *, contended: bool = False
    ) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], await self.request("POST", path, body=body))
        except ApiError as err:
            if err.status == 409 and contended:
                return None
            raise

    async def delete(self, path: str) -> bool:
        return self.items.pop(path.rsplit("/", 1)[-1], None) is not None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replica(store: FakeLeases, name: str, clock: Clock) -> ShardLeases:
    return ShardLeases(cast(KubeApi, store), NS, name, TIMING, clock=clock)


async def test_a_lone_replica_takes_every_shard_and_its_guard_stamps_and_expires() -> None:
    store, clock = FakeLeases(), Clock()
    a = replica(store, "a", clock)
    await a.tick()
    assert sorted(a.renewed) == [0, 1, 2, 3]
    guard = a.guard(2)
    body = guard("POST", "/apis/batch/v1/namespaces/x/jobs", {"metadata": {"name": "j"}})
    assert body["metadata"]["annotations"][write_guard.CREATED_BY] == "a"
    clock.now += TIMING.renew_deadline  # no renewal since: the guard refuses
    with pytest.raises(ShardNotHeld):
        guard("PATCH", "/apis/shoal.dev/v1alpha1/namespaces/x/workflows/w/status", {})
    assert a.refused == 1


async def test_work_runs_only_while_held_and_a_newcomer_gets_drained_shards() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = replica(store, "a", clock), replica(store, "b", clock)
    await a.tick()
    uids = {a.shard(u): u for u in (f"uid-{i}" for i in range(200))}  # one per shard
    assert sorted(uids) == [0, 1, 2, 3]
    started = {u: asyncio.Event() for u in uids.values()}
    cancelled: set[str] = set()
    stopped = asyncio.Event()

    def work_of(uid: str) -> Any:
        async def work() -> None:
            await store.request("POST", "/x/jobs", body={"metadata": {"name": uid}})
            started[uid].set()
            try:
                await stopped.wait()
            except asyncio.CancelledError:
                cancelled.add(uid)
                raise

        return work

    daemons = [
        asyncio.create_task(a.run_while_owned(u, stopped, work_of(u))) for u in uids.values()
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 5)
    assert {
        store.items[u]["metadata"]["annotations"][write_guard.CREATED_BY] for u in uids.values()
    } == {"a"}
    await b.tick()  # b joins: nothing is free, it takes nothing
    assert b.renewed == {}
    await a.tick()  # a sees b under its share: drains two shards, then releases them
    moved = {uids[s] for s in range(4) if s not in a.renewed}
    assert len(moved) == 2
    assert cancelled == moved, "a released only shards whose work had stopped"
    await b.tick()
    assert {uids[s] for s in b.renewed} == moved
    stopped.set()
    await asyncio.wait_for(asyncio.gather(*daemons), 5)


async def test_a_lease_changed_by_another_replica_is_lost_at_once() -> None:
    store, clock = FakeLeases(), Clock()
    a = replica(store, "a", clock)
    await a.tick()
    lease = store.items[shard_lease_name(1)]
    store._store({**lease, "spec": {**lease["spec"], "holderIdentity": "thief"}})
    await a.tick()
    assert 1 not in a.renewed
    assert not a.may_write(1)
    with pytest.raises(ShardNotHeld):
        a.guard(1)("DELETE", "/apis/batch/v1/namespaces/x/jobs/j", None)
