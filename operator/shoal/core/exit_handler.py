"""The exit handler (`spec.onExit`): when it may start, what it sees, how long it may run.

The planner holds the exit node back until every other node ended, then plans it like any
node but with `workflow.status`, `workflow.failures` and `workflow.duration` in its
expression context. Pure functions over the compiled workflow and the run state.
"""

from __future__ import annotations

from typing import Any

from shoal.api.enums import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import NodeState, RunState
from shoal.core.text import clip

__all__ = [
    "EXIT_GRACE_SECONDS",
    "MAX_EXIT_FAILURES",
    "MAX_EXIT_FAILURE_MESSAGE",
    "exit_context",
    "exit_deadline",
    "exit_grace",
    "exit_held",
    "outcome_without_exit",
]

EXIT_GRACE_SECONDS = 60.0
"""How long the exit handler may run after `activeDeadlineSeconds` passed, unless its own
`timeoutSeconds` says otherwise."""
MAX_EXIT_FAILURES = 20
"""`workflow.failures` lists at most this many nodes (the first in the workflow's order)."""
MAX_EXIT_FAILURE_MESSAGE = 512
"""Each failure's message is clipped to this many characters."""


def exit_held(wf: CompiledWorkflow, state: RunState, unfinished: int) -> bool:
    """True while the exit node must wait: it is pending and another node has not ended."""
    if wf.on_exit is None:
        return False
    return state.nodes[wf.on_exit].phase is NodePhase.PENDING and unfinished > 1


def outcome_without_exit(wf: CompiledWorkflow, state: RunState) -> tuple[WorkflowPhase, str]:
    """The phase and message the run ends in, the exit handler left out of account."""
    if state.shutdown is not None:
        return state.shutdown
    failed = [n for n in wf.order if n != wf.on_exit and state.nodes[n].phase is NodePhase.FAILED]
    if not failed:
        return WorkflowPhase.SUCCEEDED, ""
    first = failed[0]
    msg = f"node {first!r} failed: {state.nodes[first].message}"
    if len(failed) > 1:
        msg += f" (and {len(failed) - 1} more failed nodes)"
    return WorkflowPhase.FAILED, msg


def exit_context(wf: CompiledWorkflow, state: RunState, now: float) -> dict[str, Any]:
    """`workflow` as the exit handler's expressions see it: identity plus the outcome."""
    failures: list[dict[str, str]] = []
    for name in wf.order:
        ns = state.nodes[name]
        if name == wf.on_exit or ns.phase is not NodePhase.FAILED:
            continue
        if len(failures) == MAX_EXIT_FAILURES:
            break
        message = clip(ns.message, MAX_EXIT_FAILURE_MESSAGE)
        failures.append({"node": name, "phase": ns.phase.value, "message": message})
    started = state.started_at if state.started_at is not None else now
    return {
        **wf.meta.as_context(),
        "status": outcome_without_exit(wf, state)[0].value,
        "failures": failures,
        "duration": round(max(now - started, 0.0), 3),
    }


def exit_grace(wf: CompiledWorkflow) -> float:
    """Seconds the exit handler may run once the deadline passed."""
    node = wf.nodes[wf.on_exit] if wf.on_exit is not None else None
    if node is None or node.timeout_seconds is None:
        return EXIT_GRACE_SECONDS
    return node.timeout_seconds


def exit_deadline(wf: CompiledWorkflow, state: RunState, ns: NodeState) -> float | None:
    """When the running exit handler is killed because `activeDeadlineSeconds` passed: its
    grace (`timeoutSeconds`, else EXIT_GRACE_SECONDS) after the later of the deadline and
    its own start. None when the workflow has no deadline."""
    deadline = wf.active_deadline_seconds
    if deadline is None or state.started_at is None or wf.on_exit is None:
        return None
    begun = ns.started_at if ns.started_at is not None else state.started_at
    return max(state.started_at + deadline, begun) + exit_grace(wf)
