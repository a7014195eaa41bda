"""Gates before a run or a node starts: `synchronization` locks and `memoize` lookups.

The planner asks `workflow_gate` before a run starts and `node_gate` once a pending node
is ready (its `when` held); each answers None (go on) or the decisions to make instead
for now. The executor carries `AcquireLocks`/`LookupMemo` out and reports back with
`LocksGranted`/`MemoFound` (`record_gate_event`); after each finish it releases what
`released_by` names and stores what `memo_result` returns. A memo hit is checked before
any lock is asked for: a reused node needs no lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal.api.enums import NodePhase
from shoal.core.compiled import CompiledNode, CompiledWorkflow
from shoal.core.decisions import (
    AcquireLocks,
    Decision,
    FinishNode,
    FinishWorkflow,
    LookupMemo,
)
from shoal.core.expressions import ExpressionError, render, to_text
from shoal.core.memo import MAX_KEY_LENGTH, MemoLookup, parse_duration
from shoal.core.state import RunState
from shoal_worker.records import Record

if TYPE_CHECKING:  # models, built only for locks and memos: `shoal run`'s fast path has neither
    from shoal.api.synchronization import LockStatus
    from shoal.api.workflow import NodeStatus

__all__ = [
    "WORKFLOW",
    "GateEvent",
    "LocksGranted",
    "LocksWaiting",
    "MemoFound",
    "apply_gate",
    "flow_status",
    "memo_result",
    "node_gate",
    "record_gate_event",
    "released_by",
    "workflow_gate",
]

WORKFLOW = ""
"""The holder name of the workflow-level locks in `RunState.locks_*`."""


class LocksGranted(Record):
    """The executor holds every lock `AcquireLocks` asked for."""

    node: str


class LocksWaiting(Record):
    """The executor asked, and `node` still waits: `holders` hold its locks."""

    node: str
    holders: tuple[str, ...]


class MemoFound(Record):
    """The answer to `LookupMemo`: the outputs to reuse, or None (a miss)."""

    node: str
    outputs: dict[str, Any] | None


GateEvent = LocksGranted | LocksWaiting | MemoFound
"""What an executor reports back about a gate decision."""


def workflow_gate(wf: CompiledWorkflow, state: RunState) -> list[Decision] | None:
    """Before the run starts: wait for the workflow-level locks (a stop ends the wait)."""
    sync = wf.spec.synchronization
    if sync is None or state.stop_requested is not None or WORKFLOW in state.locks_held:
        return None
    if WORKFLOW in state.locks_wanted:
        return []
    return [AcquireLocks(WORKFLOW, sync.lock_limits(), sync.priority)]


def node_gate(
    wf: CompiledWorkflow, node: CompiledNode, state: RunState, context: dict[str, Any]
) -> list[Decision] | None:
    """Once `node` is ready to run: reuse a memoized result, or wait for the locks (the
    workflow's own too: a run reopened by `shoal retry` is Running without them)."""
    memo = node.spec.memoize
    if memo is not None and node.memo_key is not None:
        found = state.memo.get(node.name)
        if found is None:
            try:
                key = to_text(render(node.memo_key, context))
            except ExpressionError as err:
                return [FinishNode(node.name, NodePhase.FAILED, f"memoize.key: {err}")]
            if not key or len(key) > MAX_KEY_LENGTH:
                msg = f"memoize.key: rendered to {len(key)} characters (1 to {MAX_KEY_LENGTH})"
                return [FinishNode(node.name, NodePhase.FAILED, msg)]
            return [LookupMemo(node.name, key, parse_duration(memo.max_age))]
        if not found.done:
            return []
        if found.outputs is not None:
            msg = f"memoized: reused the outputs cached under key {found.key!r}"
            return [FinishNode(node.name, NodePhase.SUCCEEDED, msg, dict(found.outputs))]
    if (gate := workflow_gate(wf, state)) is not None:
        return gate
    sync = node.spec.synchronization
    if sync is None or node.name in state.locks_held:
        return None
    if node.name in state.locks_wanted:
        return []
    return [AcquireLocks(node.name, sync.lock_limits(), sync.priority)]


def apply_gate(state: RunState, decision: AcquireLocks | LookupMemo) -> None:
    """What `planner.apply` records for a gate decision: the request is out."""
    if isinstance(decision, AcquireLocks):
        state.locks_wanted.add(decision.node)
    else:
        state.memo[decision.node] = MemoLookup(decision.key)


def record_gate_event(state: RunState, event: GateEvent) -> None:
    """Fold an executor's answer into the state (the next planning pass acts on it)."""
    if isinstance(event, LocksGranted):
        if event.node in state.locks_wanted:
            state.locks_held.add(event.node)
            state.lock_holders.pop(event.node, None)
        return
    if isinstance(event, LocksWaiting):
        if event.node in state.locks_wanted and event.node not in state.locks_held:
            state.lock_holders[event.node] = list(event.holders)
        return
    found = state.memo.get(event.node)
    if found is not None:
        found.done = True
        found.outputs = event.outputs


def released_by(state: RunState, decision: Decision) -> list[str]:
    """Holders whose locks (held or asked for) `decision` ends; removed from the state."""
    if isinstance(decision, FinishNode):
        names = {decision.node} & (state.locks_wanted | state.locks_held)
    elif isinstance(decision, FinishWorkflow):
        names = state.locks_wanted | state.locks_held
    else:
        return []
    state.locks_wanted -= names
    state.locks_held -= names
    for name in names:
        state.lock_holders.pop(name, None)
    return sorted(names)


def memo_result(state: RunState, decision: Decision) -> tuple[str, dict[str, Any]] | None:
    """(key, outputs) to cache when `decision` ends a memoized node that missed, with success."""
    if not isinstance(decision, FinishNode) or decision.phase is not NodePhase.SUCCEEDED:
        return None
    found = state.memo.get(decision.node)
    if found is None or not found.done or found.hit:
        return None
    return found.key, dict(decision.outputs)


def _locks(state: RunState, name: str, limits: dict[str, int]) -> LockStatus | None:
    # Both fields always set (one of them None): the status is written as a JSON merge
    # patch, where only an explicit null removes what an earlier write put there.
    from shoal.api.synchronization import LockStatus

    if name in state.locks_held:
        return LockStatus(held=sorted(limits), waiting=None, holders=None)
    if name in state.locks_wanted:
        holders = state.lock_holders.get(name) or None
        return LockStatus(held=None, waiting=sorted(limits), holders=holders)
    return None


def flow_status(
    wf: CompiledWorkflow, state: RunState, nodes: dict[str, NodeStatus]
) -> dict[str, LockStatus | None]:
    """Fill each node's `locks` and `memoized`; return the workflow's `locks` field.

    Fields of nodes and runs with `synchronization` are always set, to None once nothing
    is held or awaited, so that the merge patch clears them."""
    for name, entry in nodes.items():
        spec = wf.nodes[name].spec
        if spec.synchronization is not None:
            held = spec.synchronization.lock_limits()
            entry.locks = None if entry.phase.finished else _locks(state, name, held)
        lookup = state.memo.get(name)
        if lookup is not None and lookup.done:
            from shoal.api.synchronization import MemoStatus

            entry.memoized = MemoStatus(key=lookup.key, hit=lookup.hit)
    sync = wf.spec.synchronization
    if sync is None:
        return {}
    return {"locks": None if state.phase.finished else _locks(state, WORKFLOW, sync.lock_limits())}
