"""Approval gates and whole-workflow suspension: the API fields.

A gate is a node with `suspend` and no work of its own: it waits until someone approves
or rejects it (`shoal resume`), or its `timeoutSeconds` pass and `default` decides. Who
decided, and when, is written into `spec.approvals` by the client that decided (the
operator reads it from there, so the decision survives an operator restart), and the
gate's outcome lands in its node's outputs in the status (and so in the archive).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shoal.api.common import ApiModel
from shoal.api.limits import MAX_STRING_LENGTH

__all__ = ["Approval", "GateDecision", "GateDefault", "SuspendSpec"]


class GateDefault(StrEnum):
    """What a gate's timeout decides when nobody did."""

    APPROVE = "approve"
    REJECT = "reject"


class GateDecision(StrEnum):
    """A person's decision on a gate."""

    APPROVED = "Approved"
    REJECTED = "Rejected"


class SuspendSpec(ApiModel):
    """`suspend` on a node: an approval gate (Argo's `suspend` template)."""

    timeout_seconds: float | None = Field(None, gt=0, le=31 * 86400)
    """Decide by `default` when nobody decided within this many seconds of the gate
    starting; unset, the gate waits for as long as the workflow may run."""
    default: GateDefault = GateDefault.REJECT
    """The outcome a timeout gives: `approve` succeeds the gate, `reject` fails it."""


class Approval(ApiModel):
    """One decision on a gate, written by `shoal resume` or the REST API."""

    decision: GateDecision
    by: str = Field("", max_length=MAX_STRING_LENGTH)
    """The Kubernetes user who decided (SelfSubjectReview, else the kubeconfig user)."""
    at: str = Field("", max_length=64)
    """When (RFC 3339, UTC)."""
    message: str = Field("", max_length=MAX_STRING_LENGTH)
    """Free text kept with the decision."""
