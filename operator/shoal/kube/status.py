"""A run's state in and out of the Workflow's status (pure).

`render_status` keeps the object compact whatever the fan-out size: per node a phase,
counts and the first few failures, never one entry per item, and outputs only up to a
size cap. `rebuild_state` is the other direction, for a restarted operator: the status
holds what finished, the cluster's Jobs and pods hold what is in flight, and together they
give back a RunState from which planning simply carries on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.expressions import ExpressionError
from shoal.core.planner import resolve_items
from shoal.core.state import MAX_INFRASTRUCTURE_RETRIES, NodeState, RunState, Task, TaskPhase
from shoal.kube.pods import parse_time

MAX_MESSAGE = 1024
MAX_NODE_OUTPUTS_BYTES = 32 * 1024
"""Outputs above this stay out of the status (the artifact store carries large ones)."""
MAX_FAILED_ITEMS_IN_STATUS = 10


def timestamp(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _outputs(outputs: dict[str, Any]) -> dict[str, Any] | str:
    encoded = json.dumps(outputs, separators=(",", ":"), default=str)
    if len(encoded.encode()) <= MAX_NODE_OUTPUTS_BYTES:
        return outputs
    return f"outputs of {len(encoded.encode()) // 1024} KiB are too large for the status"


def render_status(wf: CompiledWorkflow, state: RunState) -> dict[str, Any]:
    """The `status` object (wire form, camelCase) for the current state."""
    nodes: dict[str, Any] = {}
    for name in wf.order:
        ns = state.nodes[name]
        entry: dict[str, Any] = {"phase": ns.phase.value}
        if ns.attempts:
            entry["attempts"] = ns.attempts
        for key, value in (("startedAt", ns.started_at), ("finishedAt", ns.finished_at)):
            if value is not None:
                entry[key] = timestamp(value)
        if ns.exit_code is not None:
            entry["exitCode"] = ns.exit_code
        if ns.message:
            entry["message"] = clip(ns.message)
        if ns.progress is not None and not ns.phase.finished:
            entry["progress"] = ns.progress
        if ns.outputs:
            outputs = _outputs(ns.outputs)
            if isinstance(outputs, dict):
                entry["outputs"] = outputs
            else:
                entry["outputsOmitted"] = outputs
        if ns.fan_out or (ns.total and wf.nodes[name].fan_out):
            # (a finished fan-out restored from the status has counts but no items list)
            running = ns.running
            entry["items"] = {
                "total": ns.total,
                "pending": ns.pending_items if not ns.phase.finished else 0,
                "running": running,
                "succeeded": ns.succeeded,
                "failed": ns.failed,
                "skipped": ns.total - ns.next_index if ns.phase.finished else 0,
            }
            if ns.failures:
                entry["failedItems"] = [
                    {"index": i, "message": clip(m, 300)}
                    for i, m in ns.failures[:MAX_FAILED_ITEMS_IN_STATUS]
                ]
        nodes[name] = entry
    status: dict[str, Any] = {
        "phase": state.phase.value,
        "progress": state.progress,
        "nodes": nodes,
    }
    if state.message:
        status["message"] = clip(state.message)
    if state.started_at is not None:
        status["startedAt"] = timestamp(state.started_at)
    if state.finished_at is not None:
        status["finishedAt"] = timestamp(state.finished_at)
    return status


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
    status: dict[str, Any] | None,
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
    """
    status = status or {}
    state = RunState.new(list(wf.order))
    state.stop_requested = stop_requested
    state.loaded = dict(loaded or {})
    phase = status.get("phase")
    if phase in {p.value for p in WorkflowPhase}:
        state.phase = WorkflowPhase(phase)
    state.started_at = parse_time(status.get("startedAt"))
    state.finished_at = parse_time(status.get("finishedAt"))
    state.message = status.get("message") or ""
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

    node_status: dict[str, Any] = status.get("nodes") or {}
    for name in wf.order:
        ns = state.nodes[name]
        saved = node_status.get(name) or {}
        saved_phase = NodePhase(saved.get("phase", NodePhase.PENDING.value))
        if saved_phase.finished:
            ns.phase = saved_phase
            ns.message = saved.get("message") or ""
            ns.outputs = saved.get("outputs") or {}
            ns.exit_code = saved.get("exitCode")
            ns.attempts = int(saved.get("attempts") or 0)
            ns.started_at = parse_time(saved.get("startedAt"))
            ns.finished_at = parse_time(saved.get("finishedAt"))
            items = saved.get("items") or {}
            ns.succeeded = int(items.get("succeeded") or 0)
            ns.failed = int(items.get("failed") or 0)
            ns.total = int(items.get("total") or (1 if saved_phase is NodePhase.SUCCEEDED else 0))
            ns.next_index = ns.total - int(items.get("skipped") or 0)
            ns.failures = [
                (int(f["index"]), str(f.get("message") or ""))
                for f in saved.get("failedItems") or []
            ]
            continue
        in_flight = latest.get(name) or {}
        started = parse_time(saved.get("startedAt"))
        if not in_flight and (saved_phase is not NodePhase.RUNNING or started is None):
            continue  # Pending: the planner expands it again
        # Running: it has Jobs, or the status says it was expanded (and none of its Jobs
        # was created yet), which keeps its place in the order tasks are started in.
        ns.phase = NodePhase.RUNNING
        first = min((a.started_at for a in in_flight.values()), default=started)
        assert first is not None
        ns.started_at = started if started is not None else first
        ns.attempts = counted.get(name, 0)
        for index, a in in_flight.items():
            ns.tasks[index] = Task(index, a.attempt, TaskPhase.RUNNING, started_at=a.started_at)
        ns.next_index = max(in_flight, default=-1) + 1
        ns.running = len(in_flight)
        state.running += ns.running
        for index in range(ns.next_index):
            if index not in in_flight:  # decided, but its Job was never created
                ns.tasks[index] = Task(index, 0, TaskPhase.WAITING, first, retry_at=first)
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
