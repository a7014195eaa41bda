"""The API's enumerations and phase sets, without pydantic.

`shoal validate`'s fast check (`shoal.fast_validate`) and the pure core compare against
these at run time; importing `shoal.api.workflow` for them would load pydantic, which
alone costs several times a bare interpreter's start-up. `shoal.api.workflow` re-exports
every name, so the models and their users read them from either place.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FINISHED_PHASES", "NodePhase", "RetryOn", "RunPolicy", "WorkflowPhase"]


class RunPolicy(StrEnum):
    """When a node runs, given how its dependencies ended."""

    ON_SUCCESS = "onSuccess"
    """Every dependency Succeeded or was Skipped (the default)."""
    ALWAYS = "always"
    """Every dependency finished, whatever its phase."""
    ON_FAILURE = "onFailure"
    """At least one dependency Failed (or was Omitted because of a failure further up)."""


class RetryOn(StrEnum):
    """Which failures `retries` retries (Argo's `retryPolicy`)."""

    ON_FAILURE = "OnFailure"
    """The job failed: a non-zero exit, a timeout, a failure the job reported."""
    ON_ERROR = "OnError"
    """Infrastructure only: the pod was evicted, lost with its node, or never scheduled."""
    ALWAYS = "Always"
    """Both."""


class WorkflowPhase(StrEnum):
    """Phase of a whole workflow."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    """The workflow is invalid; nothing ran."""
    STOPPED = "Stopped"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_WORKFLOW


_FINISHED_WORKFLOW = {
    WorkflowPhase.SUCCEEDED,
    WorkflowPhase.FAILED,
    WorkflowPhase.ERROR,
    WorkflowPhase.STOPPED,
}
FINISHED_PHASES: frozenset[str] = frozenset(phase.value for phase in _FINISHED_WORKFLOW)
"""The finished phases as a Workflow object spells them (for raw bodies and selectors)."""


class NodePhase(StrEnum):
    """Phase of one node."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    """Its `when` was false, or `runPolicy: onFailure` and nothing failed."""
    OMITTED = "Omitted"
    """Not run because a dependency failed, or the workflow was stopped or timed out."""

    @property
    def finished(self) -> bool:
        return self not in (NodePhase.PENDING, NodePhase.RUNNING)
