"""A run's state in and out of the Workflow's status.

`render_status` writes the core's typed status (`shoal.core.status`) in its wire form;
`rebuild_state` is the other direction, for a restarted operator: the status (read by
`shoal.core.status_reader`, which never fails) holds what finished, the cluster's Jobs and
pods hold what is in flight, and together they give back a RunState from which planning
simply carries on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoal.api.workflow import NodePhase, NodeStatus, WorkflowPhase, WorkflowStatus
from shoal.core import status as typed
from shoal.core.compiled import CompiledWorkflow
from shoal.core.expressions import ExpressionError
from shoal.core.kept_items import keep_items, kept_items
from shoal.core.planner import resolve_items
from shoal.core.state import MAX_INFRASTRUCTURE_RETRIES, NodeState, RunState, Task, TaskPhase
from shoal.core.status import (
    MAX_FAILED_ITEMS_IN_STATUS,
    MAX_MESSAGE,
    MAX_NODE_OUTPUTS_BYTES,
    clip,
    parse_timestamp,
    timestamp,
)
from shoal.core.status_reader import read_status

__all__ = [
    "MAX_FAILED_ITEMS_IN_STATUS",
    "MAX_MESSAGE",
    "MAX_NODE_OUTPUTS_BYTES",
    "InFlight",
    "clip",
    "rebuild_state",
    "render_status",
    "timestamp",
]


def render_status(wf: CompiledWorkflow, state: RunState) -> dict[str, Any]:
    """The `status` object (wire form, camelCase) for the current state."""
    return typed.status_dict(typed.render_status(wf, state))


@dataclass(frozen=True, slots=True)
class InFlight:
    """An attempt that exists in the cluster (a Job, with or without its pod yet)."""

    node: str
    index: int
    attempt: int
    started_at: float
    infrastructure: bool = False
    """Its pod already ended as an infrastructure failure (evicted, deleted from outside,
    lost with its node): the retry that followed did not spend `retries.limit`."""


def rebuild_state(
    wf: CompiledWorkflow,
    status: WorkflowStatus | dict[str, Any] | None,
    attempts: Iterable[InFlight],
    stop_requested: str | None = None,
    loaded: dict[str, list[Any] | str] | None = None,
) -> RunState:
    """The RunState a restarted operator continues from.

    A running fan-out over an offloaded list needs that list: `NeedItems` is raised
    until the caller passes it in `loaded` (artifact key -> items, or the read error).

    Finished nodes come from the status (their Jobs may be gone). A node with Jobs in the
    cluster is Running, and the latest attempt of each of its items is a running task:
    attempts that already ended are then reported through the same path as live pod
    events, so a result is never recorded twice and never lost. Items below its highest
    started index without a Job (their create request died with the operator) wait to be
    started again, and an item keeps the free retries that its earlier attempts'
    infrastructure failures gave it (`InFlight.infrastructure`).

    A node without Jobs that the status shows Running stays Running with nothing started,
    which keeps its place in the order tasks start in; other unfinished nodes without Jobs
    go back to Pending, and the planner expands them again from the same inputs. So does a
    running fan-out whose items cannot be derived from the status (a dependency's end was
    not written yet when its Jobs were created): its Jobs keep their names, so expanding
    it again adopts them (409) instead of running them twice.

    A fan-out reopened by `shoal retry` whose status keeps `succeededItems` resumes
    Running with those items Succeeded and their outputs back (`core/kept_items`); an
    offloaded output list it needs raises `NeedItems` like an offloaded `forEach` list.
    """
    saved = status if isinstance(status, WorkflowStatus) else read_status(status)
    state = RunState.new(list(wf.order))
    state.stop_requested = stop_requested
    state.loaded = dict(loaded or {})
    state.phase = saved.phase
    state.started_at = parse_timestamp(saved.started_at)
    state.finished_at = parse_timestamp(saved.finished_at)
    state.message = saved.message or ""
    if state.phase is WorkflowPhase.PENDING and state.started_at is not None:
        state.phase = WorkflowPhase.RUNNING

    latest: dict[str, dict[int, InFlight]] = {}
    counted: dict[str, int] = {}
    lost: list[InFlight] = []
    for a in attempts:
        per_node = latest.setdefault(a.node, {})
        counted[a.node] = counted.get(a.node, 0) + 1
        if a.index not in per_node or per_node[a.index].attempt < a.attempt:
            per_node[a.index] = a
        if a.infrastructure:
            lost.append(a)

    for name in wf.order:
        node = saved.nodes.get(name) or NodeStatus()
        if node.phase.finished:
            _restore_finished(state.nodes[name], node)
            continue
        _restore_unfinished(wf, state, name, node, latest.get(name) or {}, counted.get(name, 0))
    for a in lost:
        task = state.nodes[a.node].tasks.get(a.index)
        if task is not None and a.attempt < task.attempt:
            task.free_attempts = min(task.free_attempts + 1, MAX_INFRASTRUCTURE_RETRIES)
    for name in wf.order:
        ns = state.nodes[name]
        if ns.phase is NodePhase.RUNNING:
            try:
                ns.items = resolve_items(wf, state, name)
            except ExpressionError:
                state.running -= ns.running
                state.nodes[name] = NodeState()
                continue
            ns.total = len(ns.items) if ns.items is not None else 1
    state.loaded.clear()  # the items live in their nodes now
    return state


def _restore_finished(ns: NodeState, saved: NodeStatus) -> None:
    """A finished node as its status entry left it (its Jobs may be gone)."""
    ns.phase = saved.phase
    ns.message = saved.message or ""
    ns.outputs = saved.outputs or {}
    ns.exit_code = saved.exit_code
    ns.attempts = saved.attempts
    ns.started_at = parse_timestamp(saved.started_at)
    ns.finished_at = parse_timestamp(saved.finished_at)
    counts = saved.items
    ns.succeeded = counts.succeeded if counts else 0
    ns.failed = counts.failed if counts else 0
    total = counts.total if counts else 0
    ns.total = total or (1 if saved.phase is NodePhase.SUCCEEDED else 0)
    ns.next_index = ns.total - (counts.skipped if counts else 0)
    ns.failures = [(f.index, f.message) for f in saved.failed_items or []]
    ns.succeeded_items = saved.succeeded_items


def _restore_unfinished(
    wf: CompiledWorkflow,
    state: RunState,
    name: str,
    node: NodeStatus,
    in_flight: dict[int, InFlight],
    attempts: int,
) -> None:
    """An unfinished node: Running when it has Jobs, when the status says it was expanded
    (and none of its Jobs was created yet: that keeps its place in the order tasks start
    in), or when a retry kept some of its items; Pending otherwise (the planner expands
    it again)."""
    started = parse_timestamp(node.started_at)
    kept = kept_items(wf, state, name, node) if state.started_at is not None else None
    if kept is not None and started is None:
        started = state.started_at
    if not in_flight and kept is None and (node.phase is not NodePhase.RUNNING or started is None):
        return
    # A fan-out's deleted item Jobs are counted in its status, not in the cluster
    # (core/item_gc); any other node's attempts are its Jobs (or its child Workflow,
    # adopted by the next start of the same attempt).
    recorded = node.attempts if node.items is not None else 0
    _restore_running(state, name, in_flight, started, max(attempts, recorded))
    if kept is not None:
        assert started is not None
        keep_items(state.nodes[name], kept, started)


def _restore_running(
    state: RunState,
    name: str,
    in_flight: dict[int, InFlight],
    started: float | None,
    attempts: int,
) -> None:
    """A running node: the latest attempt of each item with a Job runs; items below the
    highest started index without one wait to be started again."""
    ns = state.nodes[name]
    ns.phase = NodePhase.RUNNING
    first = min((a.started_at for a in in_flight.values()), default=started)
    assert first is not None
    ns.started_at = started if started is not None else first
    ns.attempts = attempts
    for index, a in in_flight.items():
        ns.tasks[index] = Task(index, a.attempt, TaskPhase.RUNNING, started_at=a.started_at)
    ns.next_index = max(in_flight, default=-1) + 1
    ns.running = len(in_flight)
    state.running += ns.running
    for index in range(ns.next_index):
        if index not in in_flight:  # decided, but its Job was never created
            ns.tasks[index] = Task(index, 0, TaskPhase.WAITING, first, retry_at=first)
