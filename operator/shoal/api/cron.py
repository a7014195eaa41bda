"""The `CronWorkflow` resource: a schedule or trigger that stamps out Workflows.

Only the API lives here; `shoal.cron` fires the runs. Validation that needs more than a
type (cron syntax, time zone names, the poll condition's CEL) happens here too, so
`shoal validate` and the operator reject a bad trigger before anything fires.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from shoal.api.common import (
    DNS_SUBDOMAIN,
    GROUP_VERSION,
    STATUS_CONFIG,
    ApiModel,
    KeyRef,
    ObjectMeta,
)
from shoal.api.cron_syntax import schedule_problem
from shoal.api.limits import MAX_EXPRESSION_LENGTH, MAX_PROPERTIES, MAX_STRING_LENGTH
from shoal.api.workflow import WorkflowSpec
from shoal.core.expressions import Expression, ExpressionError, compile_expression

CONDITION_NAMES = frozenset({"response"})
"""What a poll condition reads: `response.status`, `.headers`, `.body`, `.json`."""
MAX_POLL_BODY_BYTES = 1024 * 1024
"""The body travels as a run parameter inside the Workflow object (etcd caps ~1.5 MiB)."""


POLL_PARAMETERS: dict[str, Any] = {
    "pollBody": "",
    "pollStatus": 0,
    "pollHash": "",
    "pollPreviousHash": "",
}
"""What a run fired by `poll` receives (besides `scheduledTime`, the check's time)."""
AFTER_PARAMETERS: dict[str, Any] = {"upstreamName": "", "upstreamPhase": "", "upstreamOutputs": {}}
"""What a run fired by `after` receives (`upstreamOutputs`: node name to its outputs)."""


def compile_condition(source: str) -> Expression:
    """A poll condition, compiled; ExpressionError names what is wrong."""
    return compile_expression(source, names=CONDITION_NAMES)


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
    """Fire when the content at a URL changes (docs/cron.md: Poll a URL)."""

    url: str = Field(pattern=r"^https?://", max_length=2048)
    """Fetched with GET; redirects are not followed (a 3xx counts as an error)."""
    interval_seconds: float = Field(60, ge=1, le=86400)
    """Time between checks (longer after errors, see `maxBackoffSeconds`)."""
    headers_from: KeyRef | None = None
    """A Secret key holding a JSON object of request headers (for example a token)."""
    fire_on: PollFireOn = PollFireOn.CHANGE
    condition: str | None = Field(None, max_length=MAX_EXPRESSION_LENGTH)
    """CEL over `response.status`, `response.headers`, `response.body` and `response.json`
    (the parsed body, null if it is not JSON); a run fires only when it is true."""
    timeout_seconds: float = Field(10, gt=0, le=300)
    """Deadline of one whole request (connect, headers and body)."""
    max_body_bytes: int = Field(262144, ge=0, le=MAX_POLL_BODY_BYTES)
    """A larger body fires nothing and is reported in `status.lastError`."""
    max_backoff_seconds: float = Field(3600, ge=1, le=86400)
    """After consecutive errors the wait doubles from `intervalSeconds` up to this."""

    @field_validator("condition")
    @classmethod
    def _valid_condition(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_condition(value)
            except ExpressionError as err:
                raise ValueError(f"bad expression: {err}") from None
        return value


class FinishedPhase(StrEnum):
    """A phase a workflow ends in."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    STOPPED = "Stopped"


class AfterTrigger(ApiModel):
    """Fire when another run finishes with one of the given phases."""

    workflow: str | None = Field(None, max_length=253, pattern=DNS_SUBDOMAIN)
    """Name of a Workflow in the same namespace."""
    cron_workflow: str | None = Field(None, max_length=253, pattern=DNS_SUBDOMAIN)
    """Name of a CronWorkflow in the same namespace: any of its runs."""
    phases: list[FinishedPhase] = Field(
        default_factory=lambda: [FinishedPhase.SUCCEEDED], min_length=1, max_length=4
    )
    """Upstream phases that fire a run."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> AfterTrigger:
        if (self.workflow is None) == (self.cron_workflow is None):
            raise ValueError("set exactly one of `workflow` or `cronWorkflow`")
        return self


class CronWorkflowSpec(ApiModel):
    """When to stamp out runs of `workflowSpec`."""

    schedule: str | list[str] | None = None
    """Cron expression(s): five standard fields, or six with seconds first."""
    timezone: str = Field("UTC", max_length=MAX_STRING_LENGTH)
    """IANA time zone the schedule is read in."""
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: float | None = Field(None, ge=0)
    """A run that could not start within this many seconds of its time is missed."""
    catch_up: CatchUp = Field(default_factory=CatchUp)
    suspend: bool = False
    successful_runs_history_limit: int = Field(3, ge=0)
    failed_runs_history_limit: int = Field(1, ge=0)
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    """Parameters for every run (the scheduled time is added as `scheduledTime`)."""
    poll: PollTrigger | None = None
    after: AfterTrigger | None = None
    workflow_spec: WorkflowSpec

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | list[str] | None) -> str | list[str] | None:
        for expr in [value] if isinstance(value, str) else value or []:
            if (problem := schedule_problem(expr)) is not None:
                raise ValueError(problem)
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

    def run_parameters(self) -> dict[str, Any]:
        """The parameters a run gets from its trigger, with placeholder values: what a
        `workflowSpec` may read besides its own (`shoal validate` declares them)."""
        params: dict[str, Any] = {"scheduledTime": ""}
        if self.poll is not None:
            params |= POLL_PARAMETERS
        if self.after is not None:
            params |= AFTER_PARAMETERS
        return params


class PollStatus(ApiModel):
    """The poll trigger's bookkeeping, kept in the status so a restart carries on."""

    model_config = STATUS_CONFIG

    next_check_time: str | None = None
    """No request goes out before this (interval, backoff or Retry-After)."""
    fires: int = 0
    """Runs the poll fired; the sequence number in their names."""
    failures: int = 0
    """Consecutive failed checks (the backoff's exponent)."""
    error: str | None = None
    """Why the last check fired nothing, if it was a problem."""
    url: str | None = None
    """A hash of the URL `contentHash` belongs to: a changed `url` starts a new baseline."""


class AfterStatus(ApiModel):
    """The chained trigger's bookkeeping."""

    model_config = STATUS_CONFIG

    cursor: str | None = None
    """Finish time of the newest upstream run seen; older ones (beyond a grace) are done."""
    fired: list[str] = Field(default_factory=list)
    """Uids of upstream runs fired for that finished close to the cursor."""
    error: str | None = None


class CronWorkflowStatus(ApiModel):
    """Observed state of a CronWorkflow."""

    model_config = STATUS_CONFIG

    last_schedule_time: str | None = None
    next_schedule_time: str | None = None
    last_successful_time: str | None = None
    active: list[str] = Field(default_factory=list)
    fire_count: int = 0
    """Runs created by every trigger (not `shoal trigger`)."""
    last_error: str | None = None
    last_checked_at: str | None = None
    """When the poll trigger last got an answer (or an error)."""
    last_fired_at: str | None = None
    content_hash: str | None = None
    """sha256 of the last body the poll trigger saw."""
    poll: PollStatus | None = None
    after: AfterStatus | None = None
    schedule_description: str | None = None
    """The schedule in words (`Every 20 seconds`)."""
    schedule_fingerprint: str | None = None
    """sha256 of the schedule and time zone in force, to notice an edit."""
    schedule_since: str | None = None
    """When the schedule in force was first seen: no time before it is ever fired."""


class CronWorkflow(ApiModel):
    """A schedule or trigger that creates Workflows."""

    api_version: Literal["shoal.dev/v1alpha1"] = GROUP_VERSION
    kind: Literal["CronWorkflow"] = "CronWorkflow"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CronWorkflowSpec
    status: CronWorkflowStatus | None = None

    @model_validator(mode="after")
    def _not_chained_on_itself(self) -> CronWorkflow:
        after = self.spec.after
        if (
            after is not None
            and after.cron_workflow is not None
            and (after.cron_workflow == self.metadata.name)
        ):
            raise ValueError(
                "spec.after.cronWorkflow: a CronWorkflow cannot fire after its own runs"
            )
        return self
