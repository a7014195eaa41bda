"""The resume transition (`shoal resume`, the REST API's resume): which gates a request
decides and the patch that says so, from a Workflow body. Pure: callers read and patch.

Without a node, a resume lifts `spec.suspend` and decides every gate that is waiting
(Running in the status); with one, it decides that gate alone, even before it started.
A gate that already has a decision, or already ended, is not decided again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api.gates import Approval, GateDecision
from shoal.api.workflow import FINISHED_PHASES

__all__ = ["ResumeError", "ResumePlan", "gate_names", "plan_resume"]


class ResumeError(ValueError):
    """The request cannot be carried out; the message says why, naming the node."""


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """What a resume changes: the merge patch, the gates it decides, whether it lifts
    `spec.suspend`."""

    patch: dict[str, Any]
    decided: tuple[str, ...]
    unsuspended: bool


def gate_names(body: Mapping[str, Any]) -> list[str]:
    """Nodes of the body's spec that are approval gates, in spec order."""
    nodes = (body.get("spec") or {}).get("nodes") or []
    return [
        n["name"]
        for n in nodes
        if isinstance(n, Mapping)
        and isinstance(n.get("name"), str)
        and n.get("suspend") is not None
    ]


def plan_resume(
    body: Mapping[str, Any],
    *,
    node: str | None,
    reject: bool,
    message: str,
    by: str,
    at: str,
) -> ResumePlan:
    """The patch for one resume request; ResumeError when there is nothing it can do."""
    name = (body.get("metadata") or {}).get("name", "")
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    phase = status.get("phase") or "Pending"
    if phase in FINISHED_PHASES:
        raise ResumeError(f"workflow {name} already finished ({phase}); nothing to resume")
    gates = gate_names(body)
    decided = spec.get("approvals") or {}
    nodes = status.get("nodes") or {}
    if node is not None:
        if node not in gates:
            known = ", ".join(gates) or "none"
            raise ResumeError(
                f"node {node!r} of workflow {name} is not an approval gate "
                f"(no `suspend`; its gates: {known})"
            )
        ended = (nodes.get(node) or {}).get("phase") in (
            "Succeeded",
            "Failed",
            "Omitted",
            "Skipped",
        )
        if node in decided or ended:
            raise ResumeError(f"gate {node!r} of workflow {name} was already decided")
        chosen = [node]
    else:
        chosen = [
            g for g in gates if (nodes.get(g) or {}).get("phase") == "Running" and g not in decided
        ]
    unsuspend = node is None and spec.get("suspend") is True
    if not chosen and not unsuspend:
        what = "reject" if reject else "resume"
        raise ResumeError(
            f"workflow {name} is not suspended and no approval gate is waiting; nothing to {what}"
        )
    if reject and not chosen:
        raise ResumeError(f"workflow {name} has no waiting approval gate to reject")
    decision = GateDecision.REJECTED if reject else GateDecision.APPROVED
    entry = Approval(decision=decision, by=by, at=at, message=message).dump()
    patch_spec: dict[str, Any] = {}
    if chosen:
        patch_spec["approvals"] = {g: entry for g in chosen}
    if unsuspend:
        patch_spec["suspend"] = False
    return ResumePlan({"spec": patch_spec}, tuple(chosen), unsuspend)
