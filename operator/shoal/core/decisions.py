"""What the planner decides. Executors carry out the side effects; `apply` records them.

A decision is a plain value, so the planner can be tested by comparing lists, and both
executors (local processes, Kubernetes Jobs) interpret exactly the same vocabulary.
"""

from __future__ import annotations

from typing import Any

from shoal.api.enums import NodePhase, WorkflowPhase
from shoal_worker.records import Record, field


class StartWorkflow(Record):
    """The run begins now."""


class ExpandNode(Record):
    """A node's dependencies are satisfied and it will run; `items` is its fan-out, if any."""

    node: str
    items: list[Any] | None
    source: str | None = None
    """The artifact key the items were read from, when `forEach` was an offloaded list."""


class LoadItems(Record):
    """`forEach` yielded an offloaded list: read it from the artifact store, then expand.

    The executor reports `ItemsLoaded`; until then the node waits (no wake time: the
    report is the next event).
    """

    node: str
    reference: dict[str, Any]


class StoreOutputs(Record):
    """A fan-out's aggregated outputs in `keys` are too large for status: store them.

    The executor writes each as one artifact and reports `OutputsStored`; then the node
    finishes with references in place of the lists.
    """

    node: str
    keys: tuple[str, ...]


class StartTask(Record):
    """Start one attempt of one item: executors create exactly one pod or process for it."""

    node: str
    index: int
    attempt: int
    item: Any = None
    args: Any = None
    """Rendered: a dict for a job node, a list of strings for a command node."""
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Rendered literal env values; `valueFrom` references stay in the node spec."""
    timeout_seconds: float | None = None


class KillTask(Record):
    """Stop a running attempt; its finish event will carry `reason` as the message."""

    node: str
    index: int
    attempt: int
    reason: str


class RetryTask(Record):
    """A failed attempt will be retried at `at` (the wait is a decision, not a sleep)."""

    node: str
    index: int
    at: float
    free: bool = False
    """An infrastructure failure: this retry does not count against `retries.limit`."""


class FailTask(Record):
    """An item failed for good (retries exhausted, not retriable, or shutting down)."""

    node: str
    index: int
    message: str
    exit_code: int | None = None


class FinishNode(Record):
    """A node reached its final phase."""

    node: str
    phase: NodePhase
    message: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


class BeginShutdown(Record):
    """Stop starting work: the run will end as `phase` (Stopped, or Failed on a deadline)."""

    phase: WorkflowPhase
    reason: str


class AcquireLocks(Record):
    """Ask for every lock of `synchronization` (`node` "" for the workflow's own); the
    executor reports `LocksGranted` when it holds them all (core/flow_gates.py)."""

    node: str
    locks: dict[str, int]
    priority: int = 0


class LookupMemo(Record):
    """Look `key` up in the memo cache; the executor reports `MemoFound`."""

    node: str
    key: str
    max_age: float


class FinishWorkflow(Record):
    """The run is over."""

    phase: WorkflowPhase
    message: str = ""


Decision = (
    StartWorkflow
    | ExpandNode
    | LoadItems
    | StoreOutputs
    | StartTask
    | KillTask
    | RetryTask
    | FailTask
    | FinishNode
    | BeginShutdown
    | FinishWorkflow
    | AcquireLocks
    | LookupMemo
)


class Plan(Record):
    """The planner's answer: what to do now, and when to ask again if nothing happens."""

    decisions: list[Decision]
    wake_at: float | None
