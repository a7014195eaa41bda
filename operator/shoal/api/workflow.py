"""The `Workflow` resource: a DAG of nodes, each run as one pod (or one pod per fan-out item).

These models are the single source of truth for the API: the CRD schema in `crds/` is
generated from them (`make crds`), `shoal validate` and the operator parse manifests with
them, and every field's docstring becomes its description in the schema and in `docs/api.md`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from shoal.api.backoff import backoff_delay
from shoal.api.children import ChildWorkflow
from shoal.api.common import (
    DNS_LABEL,
    GROUP_VERSION,
    STATUS_CONFIG,
    ApiModel,
    EnvVar,
    ObjectMeta,
    ResourceRequirements,
    Toleration,
)
from shoal.api.enums import (  # re-exported: the models' users read them from here too
    FINISHED_PHASES as FINISHED_PHASES,
)
from shoal.api.enums import (
    NodePhase as NodePhase,
)
from shoal.api.enums import (
    RetryOn as RetryOn,
)
from shoal.api.enums import (
    RunPolicy as RunPolicy,
)
from shoal.api.enums import (
    WorkflowPhase as WorkflowPhase,
)
from shoal.api.file_outputs import OutputFile
from shoal.api.gates import Approval, SuspendSpec
from shoal.api.limits import (
    MAX_DEPENDS_ON,
    MAX_EXPRESSION_LENGTH,
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    MAX_NODES,
    MAX_OUTPUT_FILES,
    MAX_PROPERTIES,
    MAX_STRING_LENGTH,
    MAX_TEXT_LENGTH,
)
from shoal.api.node_rules import node_problem, spec_problem
from shoal.api.synchronization import LockStatus, Memoize, MemoStatus, Synchronization
from shoal.api.template_refs import TemplateRef, WorkflowTemplateRef


class RetryPolicy(ApiModel):
    """Retries of a failed attempt, with exponential backoff.

    The wait before attempt n+1 is `min(backoffSeconds * factor**(n-1), maxBackoffSeconds)`.
    A timed-out attempt counts as a failed one.
    """

    limit: int = Field(0, ge=0, le=100)
    """Retries after the first attempt; 0 means no retry."""
    backoff_seconds: float = Field(10.0, ge=0, le=86400)
    """Wait before the first retry."""
    factor: float = Field(2.0, ge=1, le=100)
    """Multiplier applied to the wait for each further retry."""
    max_backoff_seconds: float = Field(300.0, ge=0, le=86400)
    """Upper bound of the wait."""
    retry_policy: RetryOn | None = None
    """Which failures are retried. Unset: job failures, and infrastructure failures with
    a few free retries first (docs/workflows.md); set: exactly the failures it names."""
    expression: str | None = Field(None, max_length=MAX_EXPRESSION_LENGTH)
    """CEL condition over `lastRetry` (`exitCode`, `status`, `message`, `duration`) that
    must also be true for a retry to start."""
    max_duration_seconds: float | None = Field(None, gt=0, le=31 * 86400)
    """No retry starts later than this many seconds after the first attempt started."""

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt `failed_attempt` (1-based) before the next one."""
        return backoff_delay(self, failed_attempt)  # one owner, shared with views


class PodSettings(ApiModel):
    """Settings shared by `spec.defaults` and each node; a node's own value wins."""

    image: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    """Container image; defaults to the workflow's `image`."""
    resources: ResourceRequirements | None = None
    """CPU and memory requests and limits of the pod."""
    env: list[EnvVar] | None = Field(None, max_length=MAX_LIST_ITEMS)
    """Extra environment variables (node and default lists are merged, the node's win)."""
    timeout_seconds: float | None = Field(None, gt=0, le=31 * 86400)
    """Deadline for one attempt; when it passes the attempt fails as timed out."""
    retries: RetryPolicy | None = None
    """Retry policy for failed attempts."""
    node_selector: dict[str, str] | None = Field(None, max_length=MAX_PROPERTIES)
    """Kubernetes node selector for the pod."""
    tolerations: list[Toleration] | None = Field(None, max_length=MAX_LIST_ITEMS)
    """Kubernetes tolerations for the pod."""
    service_account_name: str | None = Field(None, pattern=DNS_LABEL, max_length=63)
    """Service account the pod runs as: the namespace's `default`, or one the operator's
    administrator allowed (docs/security.md)."""
    automount_service_account_token: bool | None = None
    """Mount the service account's API token into the pod. Off unless set to true: the
    worker needs no Kubernetes API access."""


SequenceBound = int | Annotated[str, Field(max_length=MAX_EXPRESSION_LENGTH)]
"""An integer, or a `${{ }}` template yielding one (`"${{ params.n }}"`)."""


class WithSequence(ApiModel):
    """`withSequence`: fan out over integers, like Argo, instead of listing them."""

    count: SequenceBound | None = None
    """How many items: `start`, `start + 1`, ... (set `count` or `end`, not both)."""
    start: SequenceBound | None = None
    """First integer (default 0)."""
    end: SequenceBound | None = None
    """Last integer, inclusive; below `start` for a descending sequence."""
    format: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    """printf-style text of each item, `%d` with an optional width and zero pad (`"%02d"`);
    the items are then strings instead of integers."""


class Node(PodSettings):
    """One step of the DAG: a registered job of the worker image, or any container command."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=DNS_LABEL)
    """Unique within the workflow; a DNS label (lowercase letters, digits, `-`)."""
    job: str | None = Field(None, min_length=1, max_length=MAX_STRING_LENGTH)
    """A job registered in the worker image (`market-finder`) or `module:function`."""
    command: list[Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]] | None = Field(
        None, max_length=MAX_LIST_ITEMS
    )
    """Run this command instead of a registered job (templates allowed in each element)."""
    args: dict[str, Any] | list[str] | None = None
    """Arguments: an object of named arguments for a `job`, a list of strings for a
    `command`. Strings may hold `${{ expression }}` templates."""
    depends_on: list[Annotated[str, Field(max_length=MAX_NAME_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_DEPENDS_ON
    )
    """Nodes that must finish before this one starts."""
    when: str | None = Field(None, max_length=MAX_EXPRESSION_LENGTH)
    """CEL condition, evaluated once the dependencies finished; false skips the node."""
    for_each: list[Any] | Annotated[str, Field(max_length=MAX_EXPRESSION_LENGTH)] | None = None
    """Fan-out: a literal list, or a CEL expression (`${{ nodes.a.outputs.ids }}`) that
    yields one; one pod runs per element."""
    with_sequence: WithSequence | None = None
    """Fan-out over a sequence of integers, instead of `forEach`."""
    item_arg: str | None = Field(None, min_length=1, max_length=MAX_STRING_LENGTH)
    """Name of the argument that receives the current item (fan-out nodes)."""
    parallelism: int | None = Field(None, ge=1, le=100000)
    """At most this many items of this node run at once."""
    fail_fast: bool = True
    """Fan-out: after an item fails for good, start no further items."""
    run_policy: RunPolicy = RunPolicy.ON_SUCCESS
    """When the node runs, given how its dependencies ended."""
    capture_stdout: bool = False
    """A command node: its plain stdout (less one trailing newline, at most 256 KiB)
    becomes `outputs.result`. Opt-in, since stdout is otherwise only the node's log."""
    suspend: SuspendSpec | None = None
    """An approval gate: no pod; the node waits for `shoal resume` (docs/flow-control.md)."""
    workflow: ChildWorkflow | None = None
    """A child workflow: the node creates it, waits for it, takes its outputs (cluster only)."""
    outputs: dict[str, OutputFile] | None = Field(None, max_length=MAX_OUTPUT_FILES)
    """A command node's outputs read from files it wrote: `{name: {path: /tmp/out.txt}}`,
    each read once the command exited 0 (docs/workflows.md, "Outputs from files")."""
    template_ref: TemplateRef | None = None
    """Reuse a node, or the whole DAG, of a (Cluster)WorkflowTemplate (docs/templates.md)."""
    parameters: dict[str, Any] | None = Field(None, max_length=MAX_PROPERTIES)
    """With `templateRef`: values of the template's parameters (its defaults otherwise)."""
    synchronization: Synchronization | None = None
    """Mutexes and semaphores held while this node runs (docs/flow-control.md)."""
    memoize: Memoize | None = None
    """Reuse a recent successful run's outputs with the same key (docs/flow-control.md)."""

    @model_validator(mode="after")
    def _one_kind_of_work(self) -> Node:
        if (problem := node_problem(self)) is not None:  # shared with the fast check
            raise ValueError(problem)
        return self


class ArtifactGC(StrEnum):
    """When a run's artifacts are deleted from the store."""

    KEEP = "Keep"
    """Never by Shoal (a bucket lifecycle rule can expire them)."""
    ON_DELETION = "OnDeletion"
    """When the Workflow is deleted (by a user or its TTL)."""
    ON_SUCCESS = "OnSuccess"
    """As soon as the run Succeeded; a failed run keeps them for debugging."""


class ArtifactStoreOverride(ApiModel):
    """Use another bucket, prefix or credentials than the operator's default store."""

    bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    credentials_secret: str | None = Field(None, min_length=1, max_length=253)
    """A Secret in the workflow's namespace with keys `accessKeyId` and `secretAccessKey`."""


class ArtifactsSpec(ApiModel):
    """How this run uses the artifact store (docs/artifacts.md)."""

    gc: ArtifactGC = ArtifactGC.KEEP
    offload_bytes: int = Field(4096, ge=64, le=32768)
    """Outputs whose JSON is larger than this many bytes go to the store as references."""
    store: ArtifactStoreOverride | None = None


class PodGCStrategy(StrEnum):
    """When the operator deletes a run's Jobs and pods (docs/operator.md, "Pod clean-up")."""

    ON_POD_SUCCESS = "OnPodSuccess"
    """A succeeded node's Jobs as soon as the node finishes."""
    ON_WORKFLOW_COMPLETION = "OnWorkflowCompletion"
    """Every Job once the workflow finishes, whatever its phase."""
    ON_WORKFLOW_SUCCESS = "OnWorkflowSuccess"
    """Every Job once the workflow Succeeded; a failed run keeps them for inspection."""
    NEVER = "Never"
    """None: they go with the Workflow (its TTL or a delete)."""


class PodGC(ApiModel):
    """Pod clean-up; absent, the operator keeps at most MAX_KEPT_SUCCEEDED_PODS succeeded
    pods per workflow until the Workflow is deleted, and deletes the rest per node."""

    strategy: PodGCStrategy


class WorkflowSpec(ApiModel):
    """What to run: the DAG, its inputs and its limits."""

    image: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    """The shared worker image every `job` node runs in (unless a node overrides it)."""
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    """Inputs with their defaults, any JSON; expressions read them as `params.<name>`."""
    parallelism: int | None = Field(None, ge=1, le=100000)
    """At most this many pods run at once in the whole workflow."""
    active_deadline_seconds: float | None = Field(None, gt=0)
    """The whole workflow fails when it runs longer than this."""
    ttl_seconds_after_finished: int | None = Field(None, ge=0)
    """Delete the finished Workflow (and its remaining Jobs) after this many seconds."""
    stop: bool = False
    """Set to true to stop a running workflow: its pods are deleted, the phase is Stopped;
    nodes with `runPolicy: always` still run once their dependencies have ended."""
    terminate: bool = False
    """Like `stop`, but nodes with `runPolicy: always` do not run either."""
    defaults: PodSettings = Field(default_factory=PodSettings)
    """Settings every node inherits."""
    nodes: list[Node] = Field(default_factory=list, max_length=MAX_NODES)
    """The DAG (at least one node, unless `workflowTemplateRef` brings it)."""
    workflow_template_ref: WorkflowTemplateRef | None = None
    """Run a template's DAG: its nodes and settings, this spec's `parameters` overriding
    the template's defaults and any other field set here overriding the template's."""
    artifacts: ArtifactsSpec | None = None
    """Artifact store settings for this run; the operator's defaults when absent."""
    pod_gc: PodGC | None = Field(None, alias="podGC")
    """When the run's Jobs and pods (and so their logs) are deleted."""
    on_exit: str | None = Field(None, max_length=MAX_NAME_LENGTH, pattern=DNS_LABEL)
    """The exit handler: a node that runs after every other node ended, on success,
    failure, stop and deadline (not on terminate). It sees `workflow.status`,
    `workflow.failures` and `workflow.duration`; it has no `dependsOn` and no node
    depends on it. If it fails, the run fails (as in Argo)."""
    suspend: bool = False
    """Set to true to suspend the run: no new node or attempt starts, running ones
    finish; false (`shoal resume`) carries on (docs/flow-control.md)."""
    approvals: dict[Annotated[str, Field(max_length=MAX_NAME_LENGTH)], Approval] = Field(
        default_factory=dict, max_length=MAX_NODES
    )
    """Decisions on approval gates by node name, written by `shoal resume`."""
    synchronization: Synchronization | None = None
    """Mutexes and semaphores held from the run's start to its end (docs/flow-control.md)."""

    @model_validator(mode="after")
    def _nodes_or_template(self) -> WorkflowSpec:
        if (problem := spec_problem(self)) is not None:  # shared with the fast check
            raise ValueError(problem)
        return self


class ItemCounts(ApiModel):
    """Aggregate of a fan-out node's items: the status never holds one entry per item."""

    model_config = STATUS_CONFIG

    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class ItemFailure(ApiModel):
    """One failed item of a fan-out (the status keeps only the first few)."""

    model_config = STATUS_CONFIG

    index: int
    message: str


class NodeStatus(ApiModel):
    """Observed state of one node."""

    model_config = STATUS_CONFIG

    phase: NodePhase = NodePhase.PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    message: str | None = None
    progress: float | None = None
    """Percent done of the running attempt, as the job reported it."""
    outputs: dict[str, Any] | None = None
    outputs_omitted: str | None = None
    """Why `outputs` is absent although the node produced some (too large for the status)."""
    items: ItemCounts | None = None
    failed_items: list[ItemFailure] | None = None
    succeeded_items: str | None = None
    """A fan-out's items whose values `outputs` holds, as index ranges (`0-3,5`): every
    item that succeeded once it finished; while a retry runs, the items it kept. What a
    retry keeps (absent when the ranges would be too long: a retry then runs every item)."""
    locks: LockStatus | None = None
    memoized: MemoStatus | None = None


class WorkflowStatus(ApiModel):
    """Observed state of a workflow, written by the operator."""

    model_config = STATUS_CONFIG

    phase: WorkflowPhase = WorkflowPhase.PENDING
    progress: str | None = None
    """Finished nodes / all nodes, for example `3/7`."""
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    retries: int | None = None
    """How many times the workflow was retried (`shoal retry`): each retry re-runs the
    nodes that failed or were not run, keeping the outputs of those that succeeded."""
    nodes: dict[str, NodeStatus] = Field(default_factory=dict)
    locks: LockStatus | None = None
    """The workflow-level `synchronization` locks it holds or waits for."""


class Workflow(ApiModel):
    """A DAG of nodes to run once."""

    api_version: Literal["shoal.dev/v1alpha1"] = GROUP_VERSION
    kind: Literal["Workflow"] = "Workflow"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkflowSpec
    status: WorkflowStatus | None = None
