"""Approval gates and whole-workflow suspension, decided from spec + state + now.

A gate (`suspend` on a node) expands like any node once its dependencies allow, then
runs no pod: it stays Running until `state.approvals` holds a decision for it (copied
there by the executor from `spec.approvals` or the local run's approvals directory) or
its `timeoutSeconds` pass, when `default` decides. A timeout is a wake time, like a
retry's backoff, so nothing here sleeps. Approved, the gate Succeeds; rejected, it Fails
(so `onSuccess` dependents are Omitted and `onFailure` ones run). Either way its outputs
say what happened: `approved`, `by`, `at`, `message`, `timedOut`.

`state.suspended` (`spec.suspend`) holds back every new node and attempt; what runs
finishes, gates may still be decided, and the deadline still counts.
"""

from __future__ import annotations

from shoal.api.enums import NodePhase, WorkflowPhase

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from typing import Any

    # the planner's and the models' types: `shoal validate` (check_gate) loads none
    from shoal.api.gates import Approval
    from shoal.api.workflow import Node
    from shoal.core.decisions import FinishNode
    from shoal.core.state import NodeState

__all__ = ["GateStep", "check_gate", "gate_outputs", "plan_gate"]

_NOT_ON_A_GATE = (
    ("job", "job"),
    ("command", "command"),
    ("image", "image"),
    ("args", "args"),
    ("for_each", "forEach"),
    ("with_sequence", "withSequence"),
    ("retries", "retries"),
    ("timeout_seconds", "timeoutSeconds"),
)


def check_gate(node: Node) -> list[tuple[str, str]]:
    """(message, field) for each field a gate may not have: it runs no pod."""
    if node.suspend is None:
        return []
    problems = []
    for attr, field in _NOT_ON_A_GATE:
        if getattr(node, attr) is not None:
            msg = f"a `suspend` node is an approval gate and runs nothing; remove `{field}`"
            problems.append((msg, field))
    if node.capture_stdout:
        problems.append(("a `suspend` node runs nothing to capture", "captureStdout"))
    return problems


def gate_outputs(approved: bool, by: str, at: str, message: str, timed_out: bool) -> dict[str, Any]:
    """What a decided gate records: its outputs in the status and the archive."""
    return {"approved": approved, "by": by, "at": at, "message": message, "timedOut": timed_out}


class GateStep:
    """What one planning pass decides for a running gate: a finish, or when to look again."""

    __slots__ = ("finish", "wake_at")

    def __init__(self, finish: FinishNode | None, wake_at: float | None) -> None:
        self.finish = finish
        self.wake_at = wake_at


def plan_gate(
    node: Node,
    ns: NodeState,
    approval: Approval | None,
    now: float,
    shutdown: tuple[WorkflowPhase, str] | None,
) -> GateStep:
    """Decide a running gate: shut down, decided by someone, timed out, or still waiting."""
    from shoal.api.gates import GateDecision, GateDefault  # loaded already wherever a plan runs
    from shoal.core.decisions import FinishNode

    assert node.suspend is not None
    name = node.name
    if shutdown is not None:
        return GateStep(FinishNode(name, NodePhase.FAILED, shutdown[1]), None)
    if approval is not None:
        approved = approval.decision is GateDecision.APPROVED
        who = approval.by or "an unknown user"
        verb = "approved" if approved else "rejected"
        msg = f"{verb} by {who}" + (f": {approval.message}" if approval.message else "")
        outputs = gate_outputs(approved, approval.by, approval.at, approval.message, False)
        phase = NodePhase.SUCCEEDED if approved else NodePhase.FAILED
        return GateStep(FinishNode(name, phase, msg, outputs), None)
    timeout = node.suspend.timeout_seconds
    if timeout is None:
        return GateStep(None, None)
    started = ns.started_at if ns.started_at is not None else now
    due = started + timeout
    if now < due:
        return GateStep(None, due)
    approved = node.suspend.default is GateDefault.APPROVE
    verb = "approved" if approved else "rejected"
    msg = f"nobody decided within {timeout:g}s: {verb} by default"
    from shoal.core.timestamps import format_rfc3339  # `datetime`: not for `shoal validate`

    outputs = gate_outputs(approved, "", format_rfc3339(now), msg, True)
    phase = NodePhase.SUCCEEDED if approved else NodePhase.FAILED
    return GateStep(FinishNode(name, phase, msg, outputs), None)
