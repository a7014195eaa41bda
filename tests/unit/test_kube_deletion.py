"""Deleting a Workflow needs no finalizer, and the deletion stops its runner (pure parts)."""

from __future__ import annotations

import asyncio

import pytest

from shoal.app import build_registry
from shoal.kube.controller import run_unless_gone
from shoal.kube.metrics import Metrics
from shoal.operator_context import OperatorConfig, OperatorMemo


def test_only_workflows_that_collect_artifacts_on_deletion_get_a_finalizer() -> None:
    registry = build_registry(OperatorMemo(config=OperatorConfig(), metrics=Metrics()))
    daemons = {h.fn.__name__: h.requires_finalizer for h in registry._spawning._handlers}
    assert daemons["workflow_daemon"] is False
    deleting = {h.fn.__name__: h.requires_finalizer for h in registry._changing._handlers}
    assert deleting == {"workflow_deleted": True}  # filtered to artifacts.gc: OnDeletion


async def test_a_run_ends_normally_when_nothing_is_deleted() -> None:
    done: list[str] = []

    async def run() -> None:
        done.append("ran")

    assert await run_unless_gone(run(), asyncio.Event()) is True
    assert done == ["ran"]


async def test_the_deletion_cancels_the_run_at_once() -> None:
    gone = asyncio.Event()
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def run() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a run that would never end by itself
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def delete_when_started() -> None:
        await started.wait()
        gone.set()

    deleter = asyncio.create_task(delete_when_started())
    assert await asyncio.wait_for(run_unless_gone(run(), gone), 5) is False
    await deleter
    assert cancelled == [True]


async def test_a_runs_own_error_still_reaches_the_caller() -> None:
    async def run() -> None:
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        await run_unless_gone(run(), asyncio.Event())
