"""The operator's lock table and memo cache in Leases (kube/shared_lease, kube/locks,
kube/memo_store) against a fake API server that enforces resourceVersion: concurrent
acquisitions never over-grant, entries of gone or finished Workflows are released, a
hand-edited bad document is read as empty; and what `shoal get` shows of them."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from shoal.cli.get_command import describe_workflow
from shoal.core.locks import LockRequest
from shoal.kube import memo_store
from shoal.kube.api import ApiError
from shoal.kube.locks import acquire, read_table, release
from shoal.kube.shared_lease import ConflictLimit, update_json


class FakeApi:
    """Leases with resourceVersion checks; Workflows by name; a yield between read and
    write so that concurrent writers really interleave."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.workflows: dict[str, dict[str, Any]] = {}
        self.conflicts = 0

    async def get(self, path: str, **_: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        if "/workflows/" in path:
            found = self.workflows.get(path.rsplit("/", 1)[1])
        else:
            found = self.objects.get(path)
        if found is None:
            raise ApiError(404, "NotFound", path)
        return copy.deepcopy(found)

    async def create(
        self, path: str, body: dict[str, Any], *, contended: bool = False
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        full = f"{path}/{body['metadata']['name']}"
        if full in self.objects:
            self.conflicts += 1
            return None
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.objects[full] = body
        return body

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        assert method == "PUT"
        await asyncio.sleep(0)
        current = self.objects[path]
        if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise ApiError(409, "Conflict", path)
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = body
        return body

    def running(self, name: str, uid: str, phase: str = "Running") -> None:
        self.workflows[name] = {"metadata": {"name": name, "uid": uid}, "status": {"phase": phase}}


def ask(uid: str, limit: int = 2) -> LockRequest:
    return LockRequest(uid, f"wf-{uid}", {"semaphore/s": limit}, 0, float(uid[1:]))


async def test_concurrent_acquisitions_never_grant_more_than_the_limit() -> None:
    api = FakeApi()
    uids = [f"u{i}" for i in range(8)]
    for uid in uids:
        api.running(f"wf-{uid}", uid)
    results = await asyncio.gather(*(acquire(api, "ns", [ask(u)], u) for u in uids))  # type: ignore[arg-type]
    granted = [u for u, (held, _, _) in zip(uids, results, strict=True) if held]
    assert len(granted) == 2
    assert api.conflicts > 0  # they did race, and the resourceVersion check caught it
    table = await read_table(api, "ns")  # type: ignore[arg-type]
    assert sorted(r.holder for r in table.holders) == sorted(granted)
    assert len(table.waiters) == 6


async def test_entries_of_gone_or_finished_workflows_are_released() -> None:
    api = FakeApi()
    api.running("wf-u1", "u1")
    await acquire(api, "ns", [ask("u1", limit=1)], "u1")  # type: ignore[arg-type]
    api.running("wf-u2", "u2")
    held, blockers, _ = await acquire(api, "ns", [ask("u2", limit=1)], "u2")  # type: ignore[arg-type]
    assert held == set()
    assert blockers == {"u2": ["wf-u1"]}  # what the waiter's status names
    api.running("wf-u1", "u1", phase="Succeeded")  # its runner died before releasing
    held, _, _ = await acquire(api, "ns", [ask("u2", limit=1)], "u2")  # type: ignore[arg-type]
    assert held == {"u2"}
    api.running("wf-u3", "other-uid")  # wf-u3 was deleted and created again
    api.running("wf-u4", "u4")
    await acquire(api, "ns", [ask("u3", limit=1)], "u3")  # type: ignore[arg-type]
    await acquire(api, "ns", [ask("u4", limit=1)], "u4")  # type: ignore[arg-type]
    table = await read_table(api, "ns")  # type: ignore[arg-type]
    assert [r.holder for r in table.waiters] == ["u4"]  # u3's entry went with its Workflow
    await release(api, "ns", set(), "u2")  # type: ignore[arg-type]
    table = await read_table(api, "ns")  # type: ignore[arg-type]
    assert [r.holder for r in table.holders] == ["u4"]  # granted on release


async def test_a_bad_document_reads_as_empty_and_is_replaced() -> None:
    api = FakeApi()
    await update_json(api, "ns", "shoal-locks", lambda raw: ({"junk": 1}, None), {})  # type: ignore[arg-type]
    path = next(iter(api.objects))
    api.objects[path]["metadata"]["annotations"]["shoal.dev/shoal-locks"] = "{not json"
    assert (await read_table(api, "ns")).to_json() == {"holders": [], "waiters": []}  # type: ignore[arg-type]
    api.running("wf-u1", "u1")
    held, _, _ = await acquire(api, "ns", [ask("u1")], "u1")  # type: ignore[arg-type]
    assert held == {"u1"}


async def test_endless_conflicts_end_in_an_error_not_a_hang() -> None:
    api = FakeApi()
    await update_json(api, "ns", "x", lambda raw: ({}, None), {})  # type: ignore[arg-type]

    async def always_conflict(method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        raise ApiError(409, "Conflict", path)

    api.request = always_conflict  # type: ignore[method-assign]
    with pytest.raises(ConflictLimit):
        await update_json(api, "ns", "x", lambda raw: ({}, None), {})  # type: ignore[arg-type]


async def test_the_memo_cache_is_shared_and_ages_out() -> None:
    api = FakeApi()
    assert await memo_store.lookup(api, "ns", "k", 60, 100.0) is None  # type: ignore[arg-type]
    assert api.objects == {}  # a miss writes nothing
    assert await memo_store.store(api, "ns", "k", {"v": 1}, 100.0, "ns/a") is None  # type: ignore[arg-type]
    assert await memo_store.lookup(api, "ns", "k", 60, 150.0) == {"v": 1}  # type: ignore[arg-type]
    assert await memo_store.lookup(api, "ns", "k", 60, 161.0) is None  # type: ignore[arg-type]
    note = await memo_store.store(api, "ns", "big", {"v": "x" * 100_000}, 1.0, "ns/a")  # type: ignore[arg-type]
    assert note is not None
    assert "entry bound" in note


def test_shoal_get_shows_locks_and_memo() -> None:
    obj = {
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {"nodes": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Pending",
            "locks": {"waiting": ["mutex/deploy"], "holders": ["other-run"]},
            "nodes": {
                "a": {"phase": "Succeeded", "memoized": {"key": "k-1", "hit": True}},
                "b": {"phase": "Pending", "locks": {"held": ["semaphore/s"]}},
            },
        },
    }
    text = "\n".join(describe_workflow(obj))
    assert "Locks:      waiting for mutex/deploy (held by other-run)" in text
    assert "a: memo hit (outputs reused, no pod), key 'k-1'" in text
    assert "b: holds semaphore/s" in text
    assert json.dumps(obj)  # untouched, still plain data


async def test_a_restarted_runner_takes_back_its_locks_and_memo_verdicts() -> None:
    from shoal.api.synchronization import MemoStatus
    from shoal.api.workflow import NodePhase, NodeStatus, WorkflowStatus
    from shoal.core.decisions import FinishNode
    from shoal.core.state import RunState
    from shoal.kube.flow import KubeFlow
    from tests.unit.simulator import workflow

    api = FakeApi()
    api.running("w", "u1")
    await acquire(api, "ns", [LockRequest("u1/a", "w", {"mutex/m": 1}, 0, 1.0)], "u1")  # type: ignore[arg-type]
    wf = workflow(
        {"name": "a", "command": ["true"], "synchronization": {"mutexes": [{"name": "m"}]}},
        {"name": "b", "command": ["true"], "memoize": {"key": "k", "maxAge": "1h"}},
    )
    state = RunState.new(list(wf.order))
    state.nodes["a"].phase = NodePhase.RUNNING
    state.nodes["b"].phase = NodePhase.SUCCEEDED
    saved = WorkflowStatus(
        nodes={
            "b": NodeStatus(
                phase=NodePhase.SUCCEEDED, outputs={"x": 1}, memoized=MemoStatus(key="k", hit=True)
            )
        }
    )
    spawned: list[asyncio.Task[Any]] = []

    def spawn(coro: Any) -> asyncio.Task[Any]:
        spawned.append(asyncio.ensure_future(coro))
        return spawned[-1]

    flow = KubeFlow(api, "ns", "w", "u1", lambda event: None, spawn)  # type: ignore[arg-type]
    await flow.restore(wf, state, saved)
    assert state.locks_held == {"a"}
    assert state.memo["b"].hit
    assert state.memo["b"].outputs == {"x": 1}
    flow.act(state, FinishNode("a", NodePhase.SUCCEEDED))
    await asyncio.gather(*spawned)
    assert (await read_table(api, "ns")).holders == []  # type: ignore[arg-type]
