"""The `CronWorkflow` resource: a schedule or trigger that stamps out Workflows.

Only the API lives here; the controller that fires runs comes with the CronWorkflow issue.
Validation that needs more than a type (cron syntax, time zone names) happens here too, so
`shoal validate` and the operator reject a bad schedule before anything fires.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from shoal.api.common import GROUP_VERSION, STATUS_CONFIG, ApiModel, KeyRef, ObjectMeta
from shoal.api.workflow import WorkflowPhase, WorkflowSpec


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while an earlier one is still active."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    """Skip the new run."""
    REPLACE = "Replace"
    """Stop the active run, then start the new one."""


class CatchUpPolicy(StrEnum):
    """Which missed runs to start after the operator was down."""

    NONE = "none"
    LATEST = "latest"
    ALL = "all"
    """Every missed run within `startingDeadlineSeconds`, up to `maxRuns`."""


class CatchUp(ApiModel):
    """Catch-up after downtime; each run is named after its scheduled time, so none doubles."""

    policy: CatchUpPolicy = CatchUpPolicy.LATEST
    max_runs: int = Field(10, ge=1, le=1000)
    """At most this many missed runs are started."""


class PollFireOn(StrEnum):
    """When a poll fires a run."""

    CHANGE = "change"
    """The response body's hash differs from the last one seen."""
    ALWAYS = "always"


class PollTrigger(ApiModel):
    """Fire when the content at a URL changes."""

    url: str = Field(pattern=r"^https?://")
    interval_seconds: float = Field(60, ge=1, le=86400)
    headers_from: KeyRef | None = None
    """A Secret key holding a JSON object of request headers (for example a token)."""
    fire_on: PollFireOn = PollFireOn.CHANGE
    condition: str | None = None
    """CEL over the parsed response (`response.status`, `response.json`); fire only if true."""
    timeout_seconds: float = Field(10, gt=0, le=300)
    max_body_bytes: int = Field(262144, ge=0)


class AfterTrigger(ApiModel):
    """Fire when another run finishes with one of the given phases."""

    workflow: str | None = None
    """Name of a Workflow in the same namespace."""
    cron_workflow: str | None = None
    """Name of a CronWorkflow: any of its runs."""
    phases: list[WorkflowPhase] = Field(default_factory=lambda: [WorkflowPhase.SUCCEEDED])

    @model_validator(mode="after")
    def _exactly_one_source(self) -> AfterTrigger:
        if (self.workflow is None) == (self.cron_workflow is None):
            raise ValueError("set exactly one of `workflow` or `cronWorkflow`")
        return self


class CronWorkflowSpec(ApiModel):
    """When to stamp out runs of `workflowSpec`."""

    schedule: str | list[str] | None = None
    """Cron expression(s) in croniter syntax; a sixth field gives seconds."""
    timezone: str = "UTC"
    """IANA time zone the schedule is read in."""
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: float | None = Field(None, ge=0)
    """A run that could not start within this many seconds of its time is missed."""
    catch_up: CatchUp = Field(default_factory=CatchUp)
    suspend: bool = False
    successful_runs_history_limit: int = Field(3, ge=0)
    failed_runs_history_limit: int = Field(1, ge=0)
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Parameters for every run (the scheduled time is added as `scheduledTime`)."""
    poll: PollTrigger | None = None
    after: AfterTrigger | None = None
    workflow_spec: WorkflowSpec

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | list[str] | None) -> str | list[str] | None:
        for expr in [value] if isinstance(value, str) else value or []:
            if not croniter.is_valid(expr):
                raise ValueError(f"not a valid cron expression: {expr!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _has_a_trigger(self) -> CronWorkflowSpec:
        if self.schedule is None and self.poll is None and self.after is None:
            raise ValueError("set at least one trigger: `schedule`, `poll` or `after`")
        return self


class CronWorkflowStatus(ApiModel):
    """Observed state of a CronWorkflow."""

    model_config = STATUS_CONFIG

    last_schedule_time: str | None = None
    next_schedule_time: str | None = None
    last_successful_time: str | None = None
    active: list[str] = Field(default_factory=list)
    fire_count: int = 0
    last_error: str | None = None
    last_checked_at: str | None = None
    last_fired_at: str | None = None
    content_hash: str | None = None


class CronWorkflow(ApiModel):
    """A schedule or trigger that creates Workflows."""

    api_version: Literal["shoal.dev/v1alpha1"] = GROUP_VERSION
    kind: Literal["CronWorkflow"] = "CronWorkflow"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CronWorkflowSpec
    status: CronWorkflowStatus | None = None
