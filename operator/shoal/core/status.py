"""The one renderer of a run's status: RunState -> the typed `WorkflowStatus` (pure).

The operator writes it to the Workflow object, `shoal run -o json` prints a summary of it
and the archive records it, so all three agree by construction. The status stays compact
whatever the fan-out size: per node a phase, counts and the first few failures, never one
entry per item, and outputs only up to a size cap (`limits=False` lifts the caps for a
local run, whose document is never stored in the API server).
"""

from __future__ import annotations

from typing import Any

from shoal.api import limits
from shoal.api.workflow import ItemCounts, ItemFailure, NodeStatus, WorkflowStatus
from shoal.core.compiled import CompiledWorkflow
from shoal.core.flow_gates import flow_status
from shoal.core.item_gc import live_fields
from shoal.core.sizes import json_size, too_large_note
from shoal.core.state import NodeState, RunState
from shoal.core.text import clip as clip_text
from shoal.core.timestamps import format_rfc3339, parse_rfc3339

__all__ = [
    "MAX_FAILED_ITEMS_IN_STATUS",
    "MAX_MESSAGE",
    "MAX_NODE_OUTPUTS_BYTES",
    "clip",
    "parse_timestamp",
    "render_status",
    "run_summary",
    "status_dict",
    "timestamp",
]

MAX_MESSAGE = 1024
MAX_NODE_OUTPUTS_BYTES = limits.MAX_STATUS_OUTPUTS_BYTES
"""Outputs above this stay out of the status (the artifact store carries large ones)."""
MAX_FAILED_ITEMS_IN_STATUS = 10
MAX_ITEM_MESSAGE = 300


def timestamp(value: float | None) -> str | None:
    """Epoch seconds as the status spells a time (RFC 3339, microseconds, `Z`)."""
    return None if value is None else format_rfc3339(value, fraction=True)


def parse_timestamp(value: str | None) -> float | None:
    """A status time back as epoch seconds; None when absent or unreadable (a hand-edited
    status must not stop the operator)."""
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        return None
    return None if parsed is None else parsed.timestamp()


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """A status message cut to `limit` characters (see `shoal.core.text.clip`)."""
    return clip_text(text, limit)


def _outputs_too_large(outputs: dict[str, Any]) -> str | None:
    size = json_size(outputs)
    return None if size <= MAX_NODE_OUTPUTS_BYTES else too_large_note(size, "status")


def _items(ns: NodeState) -> ItemCounts:
    finished = ns.phase.finished
    return ItemCounts(
        total=ns.total,
        pending=ns.pending_items if not finished else 0,
        running=ns.running,
        succeeded=ns.succeeded,
        failed=ns.failed,
        skipped=ns.total - ns.next_index if finished else 0,
    )


def _node(ns: NodeState, fan_out: bool, limits: bool) -> NodeStatus:
    """One node's entry; only the fields that say something are set (and so written)."""
    fields: dict[str, Any] = {"phase": ns.phase}
    if ns.attempts:
        fields["attempts"] = ns.attempts
    if ns.started_at is not None:
        fields["started_at"] = timestamp(ns.started_at)
    if ns.finished_at is not None:
        fields["finished_at"] = timestamp(ns.finished_at)
    if ns.exit_code is not None:
        fields["exit_code"] = ns.exit_code
    if ns.message:
        fields["message"] = clip(ns.message) if limits else ns.message
    if ns.progress is not None and not ns.phase.finished:
        fields["progress"] = ns.progress
    if ns.outputs:
        omitted = _outputs_too_large(ns.outputs) if limits else None
        if omitted is None:
            fields["outputs"] = ns.outputs
        else:
            fields["outputs_omitted"] = omitted
    if ns.fan_out or (ns.total and fan_out):
        # (a finished fan-out restored from the status has counts but no items list)
        fields["items"] = _items(ns)
        if ns.failures:
            fields["failed_items"] = [
                ItemFailure(index=i, message=clip(m, MAX_ITEM_MESSAGE))
                for i, m in ns.failures[:MAX_FAILED_ITEMS_IN_STATUS]
            ]
        if ns.succeeded_items and "outputs_omitted" not in fields:
            fields["succeeded_items"] = ns.succeeded_items  # what a retry keeps
        if limits:
            live_fields(ns, fields)  # a running fan-out's record of its items (core/item_gc)
    return NodeStatus(**fields)


def render_status(wf: CompiledWorkflow, state: RunState, *, limits: bool = True) -> WorkflowStatus:
    """The status of the current state. `limits` clips messages and leaves oversized
    outputs out, as the Workflow object needs; a local run's document keeps them whole."""
    fields: dict[str, Any] = {
        "phase": state.phase,
        "progress": state.progress,
        "nodes": {
            name: _node(state.nodes[name], wf.nodes[name].fan_out, limits) for name in wf.order
        },
    }
    if state.message:
        fields["message"] = clip(state.message) if limits else state.message
    if state.started_at is not None:
        fields["started_at"] = timestamp(state.started_at)
    if state.finished_at is not None:
        fields["finished_at"] = timestamp(state.finished_at)
    fields.update(flow_status(wf, state, fields["nodes"]))  # synchronization's `locks`
    return WorkflowStatus(**fields)


def status_dict(status: WorkflowStatus) -> dict[str, Any]:
    """The wire form (camelCase, only the fields that were set).

    Outputs are put back as the very objects the jobs produced: JSON-mode dumping would
    rewrite values it cannot represent (NaN) and walk every output for nothing.
    """
    wire = status.model_dump(
        by_alias=True,
        exclude_unset=True,
        mode="json",
        exclude={"nodes": {"__all__": {"outputs"}}},
    )
    for name, node in status.nodes.items():
        if "outputs" in node.model_fields_set:  # null removes a running fan-out's record
            wire["nodes"][name]["outputs"] = node.outputs
    return wire


def run_summary(name: str | None, status: WorkflowStatus, duration: float | None) -> dict[str, Any]:
    """What `shoal run -o json` prints: the status's phase, progress, message and per
    node its phase, attempts, message, exit code, outputs and item counts."""
    nodes: dict[str, Any] = {}
    for node_name, node in status.nodes.items():
        entry: dict[str, Any] = {"phase": node.phase.value, "attempts": node.attempts}
        if node.message:
            entry["message"] = node.message
        if node.exit_code is not None:
            entry["exitCode"] = node.exit_code
        if node.outputs:
            entry["outputs"] = node.outputs
        if node.memoized is not None:
            entry["memoized"] = {"key": node.memoized.key, "hit": node.memoized.hit}
        if node.items is not None:
            counts = node.items
            entry["items"] = {
                "total": counts.total,
                "succeeded": counts.succeeded,
                "failed": counts.failed,
            }
        nodes[node_name] = entry
    doc: dict[str, Any] = {
        "name": name,
        "phase": status.phase.value,
        "progress": status.progress,
        "nodes": nodes,
    }
    if status.message:
        doc["message"] = status.message
    if duration is not None:
        doc["durationSeconds"] = duration
    return doc
