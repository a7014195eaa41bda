"""A cancelled runner records what it decided before it ends.

A shard hand-off (drain, then release) and an operator's shutdown both cancel runners.
Whatever the runner decided since its last status write (a node finished, the next one's
Job created) must reach the status, or the next holder rebuilds from an older status and
creates those Jobs again, falling back on AlreadyExists (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from shoal.kube.api import ApiError, KubeApi
from shoal.kube.jobs import job_token
from shoal.kube.runner import RunnerConfig, WorkflowRunner
from tests.unit.test_kube_ownership import (
    GENERATED_JOB_UID,
    REAL,
    FakeApi,
    body,
    final_status,
    finished_pod,
    until,
)

SLOW_WRITES = RunnerConfig(status_interval_seconds=600.0)
"""One status write, then none for ten minutes: only the last write can record more."""


def chain() -> dict[str, Any]:
    doc = body()
    doc["spec"]["nodes"].append({"name": "b", "job": "shoal.echo", "dependsOn": ["a"]})
    return doc


async def cancelled_after_b_started(api: FakeApi, *, deleted: bool = False) -> None:
    runner = WorkflowRunner(cast(KubeApi, api), chain(), SLOW_WRITES, lambda *a: None)
    task = asyncio.create_task(runner.run())
    await until(lambda: api.created and api.patches, "a's Job and the first status write")
    token = job_token(api.created[0])
    runner.pod_event("ADDED", finished_pod("real", "team-a", REAL, GENERATED_JOB_UID, token))
    await until(lambda: len(api.created) == 2, "b's Job")
    runner.deleted = deleted  # as the operator marks it on the Workflow's DELETED event
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_a_cancelled_runner_writes_the_finished_node_and_the_started_one() -> None:
    api = FakeApi()
    await cancelled_after_b_started(api)
    nodes = final_status(api)["nodes"]
    assert nodes["a"]["phase"] == "Succeeded"
    assert nodes["a"]["outputs"] == REAL
    assert nodes["b"]["phase"] == "Running"


async def test_a_runner_cancelled_because_its_workflow_was_deleted_writes_nothing() -> None:
    # The name may already be a new Workflow's: a write to it would hand the newcomer
    # this run's status.
    api = FakeApi()
    await cancelled_after_b_started(api, deleted=True)
    assert len(api.patches) == 1  # the first write only
    assert final_status(api)["nodes"]["a"]["phase"] != "Succeeded"


class RefusingApi(FakeApi):
    """Every status write after the first fails with `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def merge_patch(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        if self.patches:
            raise self.error
        return await super().merge_patch(path, body)


@pytest.mark.parametrize(
    "error",
    [
        ApiError(409, "ShardNotHeld", "shard 3 is not held by this replica"),  # shard lost
        RuntimeError("Cannot send a request, as the client has been closed."),  # exiting
    ],
)
async def test_a_failed_last_write_still_ends_the_runner_as_cancelled(error: Exception) -> None:
    api = RefusingApi(error)
    await asyncio.wait_for(cancelled_after_b_started(api), 30)
    assert final_status(api)["nodes"]["a"]["phase"] != "Succeeded"


class EndlessLogs(FakeApi):
    """A pod log that never ends (a long-running step): its follower waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.following = asyncio.Event()

    async def lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        self.following.set()
        await asyncio.Event().wait()
        yield ""


async def test_a_cancelled_runner_leaves_no_log_follower_behind() -> None:
    # After a drain the shard's new holder follows the pod; the old holder's follower
    # would stream on, and at exit meet a closed client (a traceback, a non-zero exit).
    api = EndlessLogs()
    runner = WorkflowRunner(cast(KubeApi, api), chain(), SLOW_WRITES, lambda *a: None)
    task = asyncio.create_task(runner.run())
    await until(lambda: api.created, "a's Job")
    pod = finished_pod("real", "team-a", REAL, GENERATED_JOB_UID, job_token(api.created[0]))
    pod["status"] = {
        "phase": "Running",
        "containerStatuses": [{"name": "main", "state": {"running": {}}}],
    }
    runner.pod_event("ADDED", pod)
    await asyncio.wait_for(api.following.wait(), 10)
    (follower,) = [a.follower for a in runner.attempts.values() if a.follower is not None]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert follower.cancelled()
