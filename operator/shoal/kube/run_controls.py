"""What a Workflow's spec asks of its running run: stop, terminate, suspend, approvals.

Read from each new body (kopf's MODIFIED events and the body a restarted runner is
handed) into the RunState, where the planner decides from them. Lenient: an entry of
`spec.approvals` that does not parse is ignored on its own, so one bad patch cannot keep
a run from being stopped or its other gates from being decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from shoal.api.gates import Approval
from shoal.core.state import RunState
from shoal.kube.workflow_body import WorkflowControls

__all__ = ["apply_controls", "read_approvals"]

STOPPED = "stopped (spec.stop)"
TERMINATED = "terminated (spec.terminate)"


def read_approvals(spec: Mapping[str, Any]) -> dict[str, Approval]:
    """The well-formed entries of `spec.approvals`, by node name."""
    raw = spec.get("approvals")
    if not isinstance(raw, Mapping):
        return {}
    found: dict[str, Approval] = {}
    for node, entry in raw.items():
        if not isinstance(node, str) or not isinstance(entry, Mapping):
            continue
        try:
            found[node] = Approval.model_validate(entry)
        except ValidationError:
            continue
    return found


def apply_controls(state: RunState, body: Mapping[str, Any]) -> None:
    """Fold the spec's controls into `state`; a stop once requested stays requested."""
    controls = WorkflowControls.of(body)
    state.terminate = state.terminate or controls.terminate
    if state.stop_requested is None and (controls.stop or controls.terminate):
        state.stop_requested = TERMINATED if controls.terminate else STOPPED
    spec = body.get("spec") or {}
    state.suspended = spec.get("suspend") is True
    state.approvals = read_approvals(spec)
