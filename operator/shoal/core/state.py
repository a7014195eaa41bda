"""The observed state of one run, and the pure reducers that change it.

Both executors hold a `RunState`, ask the planner what to do (`planner.advance`), carry the
decisions out, and feed back what they observe (`record_finished`). Only finished-item
counters and *active* tasks (running, failed-awaiting-decision, waiting for a retry) are
kept per node, so a planning pass never costs O(items): a 100,000-item fan-out is as
cheap to plan as a 100-item one. `PlanIndex` keeps the nodes a pass must look at (ready
and running ones) and the finished nodes' expression context up to date, so a pass does
not re-scan a 1,000-node chain either.

Times are float seconds since the epoch; the planner never reads a clock itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shoal.api.enums import NodePhase, WorkflowPhase
from shoal.api.limits import MAX_DECODE_DEPTH
from shoal.core.jsonbounds import json_problem
from shoal.core.memo import MemoLookup
from shoal_worker.records import Record, field

if TYPE_CHECKING:  # a model: `shoal run`'s fast path loads no pydantic (shoal/fast_run.py)
    from shoal.api.gates import Approval

MAX_RECORDED_FAILURES = 20
"""Failed items kept per node for status and messages; the rest are only counted."""


class TaskPhase(StrEnum):
    """Phase of an active task (one attempt of one item)."""

    RUNNING = "Running"
    FAILED = "Failed"
    """Finished unsuccessfully; the planner has yet to decide: retry or give up."""
    WAITING = "Waiting"
    """A retry is scheduled at `retry_at`."""


class Task(Record, frozen=False):
    """One item of a node (index 0 for a plain node) and its current attempt."""

    index: int
    attempt: int
    phase: TaskPhase
    started_at: float
    finished_at: float | None = None
    retry_at: float | None = None
    kill_reason: str | None = None
    """Set once the planner decided to kill it; the finish event then carries this reason."""
    exit_code: int | None = None
    message: str = ""
    retriable: bool = True
    infrastructure: bool = False
    """The last attempt failed for reasons outside the job (eviction, a lost pod)."""
    free_attempts: int = 0
    """Attempts lost to infrastructure failures: retried without spending `retries`."""
    first_started_at: float | None = None
    """When the item's first attempt started (what `maxDurationSeconds` counts from); None
    in a state rebuilt from a status, where the node's start stands in."""


MAX_INFRASTRUCTURE_RETRIES = 3
"""Infrastructure failures of one item retried for free before they count like any other."""


class NodeState(Record, frozen=False):
    """What is known about one node."""

    phase: NodePhase = NodePhase.PENDING
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    items: list[Any] | None = None
    """Fan-out elements once `forEach` was evaluated; None for a plain node."""
    total: int = 0
    next_index: int = 0
    """Items below this index have been started at least once."""
    tasks: dict[int, Task] = field(default_factory=dict)
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    exit_code: int | None = None
    failures: list[tuple[int, str]] = field(default_factory=list)
    item_outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    progress: float | None = None
    storing: bool = False
    """Its aggregated outputs are being written to the artifact store (`StoreOutputs`)."""
    stored_outputs: dict[str, Any] | None = None
    """References to the aggregated outputs that were stored, by output name."""
    store_error: str | None = None
    succeeded_items: str | None = None
    """The items whose values `outputs` holds, as ranges (`core/item_ranges`): set when a
    fan-out finishes, and while a retried one runs, the items it kept (`core/kept_items`)."""

    @property
    def fan_out(self) -> bool:
        return self.items is not None

    @property
    def pending_items(self) -> int:
        """Items not started yet plus items waiting for a retry."""
        waiting = sum(1 for t in self.tasks.values() if t.phase is not TaskPhase.RUNNING)
        return max(self.total - self.next_index, 0) + waiting


class RunState(Record, frozen=False):
    """What is known about one run of a workflow."""

    nodes: dict[str, NodeState]
    phase: WorkflowPhase = WorkflowPhase.PENDING
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    running: int = 0
    """Running tasks across the workflow (what `spec.parallelism` limits)."""
    stop_requested: str | None = None
    """Why a stop was requested (user, signal); the planner turns it into a shutdown."""
    terminate: bool = False
    """The stop is a terminate: `runPolicy: always` nodes do not run either."""
    shutdown: tuple[WorkflowPhase, str] | None = None
    """Once set, nothing new starts: the phase the run will end in and why."""
    suspended: bool = False
    """`spec.suspend`: no new node or attempt starts (core/gates.py)."""
    approvals: dict[str, Approval] = field(default_factory=dict)
    """Decisions on approval gates by node, as the executor last read them (core/gates.py)."""
    loading: set[str] = field(default_factory=set)
    """Artifact keys of offloaded `forEach` lists being read (`LoadItems`)."""
    loaded: dict[str, list[Any] | str] = field(default_factory=dict)
    """Lists read for `forEach`, by artifact key, until their node expands; a str is the
    error that kept one from being read."""
    locks_wanted: set[str] = field(default_factory=set)
    """Nodes (and "" for the workflow) whose `AcquireLocks` went out (core/flow_gates.py)."""
    locks_held: set[str] = field(default_factory=set)
    lock_holders: dict[str, list[str]] = field(default_factory=dict)
    """While a node (or "") waits: who holds its locks, as the executor last saw."""
    memo: dict[str, MemoLookup] = field(default_factory=dict)
    """Memoized nodes' lookups, by node (core/flow_gates.py)."""
    index: PlanIndex | None = field(default=None, repr=False, compare=False)
    """The planner's cache, derived from `nodes`: built on the first planning pass and kept
    up to date by `planner.apply`. Code that changes a node's phase any other way (the
    operator rebuilding a state from its status) does so before planning, or resets it."""

    @classmethod
    def new(cls, node_names: list[str]) -> RunState:
        return cls(nodes={name: NodeState() for name in node_names})

    @property
    def progress(self) -> str:
        done = sum(1 for n in self.nodes.values() if n.phase.finished)
        return f"{done}/{len(self.nodes)}"


class PlanIndex(Record, frozen=False):
    """Which nodes a planning pass must look at, kept up to date instead of re-scanned.

    Only pending nodes whose dependencies have all finished (`ready`) and running nodes can
    produce a decision, so a pass visits those alone; `finished` is the `nodes` part of the
    expression context, in the workflow's order like a fresh scan would build it.
    """

    position: dict[str, int]
    dependents: dict[str, tuple[str, ...]]
    waiting_on: dict[str, int]
    """Unfinished dependencies of each pending node."""
    pending: set[str]
    ready: set[str]
    running: set[str]
    finished: dict[str, dict[str, Any]]
    in_order: bool = True
    """False once a node finished before one earlier in the order: `finished` is re-sorted
    the next time it is read, so expressions see the same map whatever the finishing order."""

    @classmethod
    def build(
        cls, order: Iterable[str], deps: Mapping[str, Iterable[str]], nodes: Mapping[str, NodeState]
    ) -> PlanIndex:
        """The index of `nodes` as they are now (one scan, on the first pass only)."""
        position = {name: i for i, name in enumerate(order)}
        dependents: dict[str, list[str]] = {name: [] for name in position}
        index = cls(position, {}, {}, set(), set(), set(), {})
        for name in position:
            ns = nodes[name]
            for dep in deps[name]:
                dependents[dep].append(name)
            if ns.phase is NodePhase.RUNNING:
                index.running.add(name)
            elif ns.phase is NodePhase.PENDING:
                index.pending.add(name)
                waiting = sum(1 for dep in deps[name] if not nodes[dep].phase.finished)
                index.waiting_on[name] = waiting
                if waiting == 0:
                    index.ready.add(name)
            else:
                index.finished[name] = {"phase": ns.phase.value, "outputs": ns.outputs}
        index.dependents = {name: tuple(found) for name, found in dependents.items()}
        return index

    @property
    def unfinished(self) -> int:
        return len(self.pending) + len(self.running)

    def candidates(self) -> list[str]:
        """Ready and running nodes, in the workflow's order (the order decisions follow)."""
        return sorted(self.ready | self.running, key=self.position.__getitem__)

    def started(self, name: str) -> None:
        self.pending.discard(name)
        self.ready.discard(name)
        self.waiting_on.pop(name, None)
        self.running.add(name)

    def ended(self, name: str, ns: NodeState) -> None:
        """`name` reached a final phase: its dependents may become ready."""
        self.pending.discard(name)
        self.ready.discard(name)
        self.running.discard(name)
        self.waiting_on.pop(name, None)
        if self.finished and self.in_order:
            last = next(reversed(self.finished))
            self.in_order = self.position[last] < self.position[name]
        self.finished[name] = {"phase": ns.phase.value, "outputs": ns.outputs}
        for dependent in self.dependents[name]:
            if dependent in self.waiting_on:
                self.waiting_on[dependent] -= 1
                if self.waiting_on[dependent] == 0:
                    self.ready.add(dependent)

    def finished_context(self) -> dict[str, dict[str, Any]]:
        """The finished nodes as expressions see them, in the workflow's order."""
        if not self.in_order:
            ordered = sorted(self.finished.items(), key=lambda kv: self.position[kv[0]])
            self.finished = dict(ordered)
            self.in_order = True
        return self.finished


class TaskFinished(Record):
    """An executor's observation: an attempt ended."""

    node: str
    index: int
    attempt: int
    succeeded: bool
    at: float
    exit_code: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    retriable: bool = True
    """False for failures that would fail again the same way (bad arguments, unknown job)."""
    infrastructure: bool = False
    """The pod was evicted, deleted from outside or lost with its node: not the job's fault."""


def bounded_finish(event: TaskFinished) -> TaskFinished:
    """`event`, failed instead when its outputs nest deeper than MAX_DECODE_DEPTH.

    Outputs come from the job; nested a thousand levels deep they would reach the
    interpreter's recursion limit when the status or the archive row is written. Only
    depth is bounded here: size is the artifact store's and the status writer's concern.
    """
    if not event.succeeded:
        return event
    problem = json_problem(
        event.outputs, max_depth=MAX_DECODE_DEPTH, max_elements=sys.maxsize, max_bytes=sys.maxsize
    )
    if problem is None:
        return event
    return event.replace(
        succeeded=False, outputs={}, message=f"outputs: {problem}", retriable=False
    )


def record_finished(state: RunState, event: TaskFinished) -> bool:
    """Fold a finished attempt into the state. Returns False for a stale or repeated event.

    Executors may see the same end twice (log stream and pod status, or after a restart);
    only the first report of the current attempt of a running task counts.
    """
    node = state.nodes.get(event.node)
    if node is None:
        return False
    task = node.tasks.get(event.index)
    if task is None or task.attempt != event.attempt or task.phase is not TaskPhase.RUNNING:
        return False
    node.running -= 1
    state.running -= 1
    task.finished_at = event.at
    task.exit_code = event.exit_code
    if event.succeeded:
        del node.tasks[event.index]
        node.succeeded += 1
        node.item_outputs[event.index] = dict(event.outputs)
        node.exit_code = event.exit_code
        return True
    task.phase = TaskPhase.FAILED
    task.message = task.kill_reason or event.message or f"exit code {event.exit_code}"
    task.retriable = event.retriable
    task.infrastructure = event.infrastructure
    node.exit_code = event.exit_code
    return True


class ItemsLoaded(Record):
    """An executor's observation: an offloaded `forEach` list was read (or could not be)."""

    key: str
    items: list[Any] | None = None
    error: str | None = None


class OutputsStored(Record):
    """An executor's observation: a fan-out's aggregated outputs were stored (or not)."""

    node: str
    references: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def record_items_loaded(state: RunState, event: ItemsLoaded) -> None:
    state.loading.discard(event.key)
    if event.error is None and event.items is not None:
        state.loaded[event.key] = event.items
    else:
        state.loaded[event.key] = event.error or "no items were read"


def record_outputs_stored(state: RunState, event: OutputsStored) -> None:
    ns = state.nodes.get(event.node)
    if ns is None or not ns.storing:
        return
    ns.storing = False
    if event.error is not None:
        ns.store_error = event.error
    else:
        ns.stored_outputs = dict(event.references)


def record_progress(state: RunState, node: str, percent: float | None) -> None:
    """Remember the last progress a plain node reported (fan-outs show item counts instead)."""
    ns = state.nodes.get(node)
    if ns is not None and not ns.fan_out and percent is not None:
        ns.progress = percent
