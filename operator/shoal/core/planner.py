"""The planner: (compiled workflow, observed state, now) -> decisions. No I/O, no clock.

`plan` looks at the state once and returns the decisions that follow from it directly;
`apply` records decisions in the state; `advance` alternates the two until nothing more
follows, which is what executors call after every observation. Because a retry's wait and
a timeout are returned as times (`Plan.wake_at`), nothing here ever sleeps.

Semantics, in one place:

- A node is ready when every dependency has finished. Its `runPolicy` then decides:
  `onSuccess` runs if every dependency Succeeded or was Skipped, and is Omitted if any
  Failed or was Omitted; `always` runs whatever happened; `onFailure` runs only if some
  dependency Failed or was Omitted, and is Skipped otherwise.
- `when` is evaluated once the node is ready; false makes it Skipped. A Skipped node counts
  as satisfied for its dependents (as in Argo and Tekton), whose own `when` can test
  `nodes.x.phase` if they care.
- A fan-out starts items in index order within the node's and the workflow's parallelism.
  An item that fails is retried per `retries`; once an item fails for good the node starts
  no further items (`failFast`, the default) and fails when the running ones end.
- A timed-out attempt is killed and counts as a failed attempt.
- Large values live in the artifact store. A `forEach` that yields a reference to an
  offloaded list is read first (`LoadItems`); a fan-out whose aggregated outputs are
  larger than `offload_bytes` stores them (`StoreOutputs`) and finishes with references,
  so downstream nodes and the status only ever see the small reference.
- `activeDeadlineSeconds` or a stop request starts a shutdown: running attempts are
  killed, nothing new starts, pending nodes are Omitted, and the run ends Failed or Stopped.
  A stop (not a terminate, not a deadline) still runs `runPolicy: always` nodes once
  their dependencies have ended, as Argo runs exit handlers on stop.
- The exit handler (`spec.onExit`, core/exit_handler.py) starts once every other node
  ended, on success, failure, stop and deadline (within a grace), never on terminate; its
  expressions see `workflow.status`, `workflow.failures` and `workflow.duration`. The run
  ends in the phase it had without it, but a failed exit handler fails a Succeeded run.
- Which failures are retried, and until when, is core/retry_policy.py's `choose_retry`.
- Approval gates (`suspend` on a node) and `spec.suspend` are core/gates.py's.
"""

from __future__ import annotations

import math
from typing import Any

from shoal.api.enums import NodePhase, RunPolicy, WorkflowPhase
from shoal.api.limits import MAX_FAN_OUT_ITEMS
from shoal.core.compiled import CompiledNode, CompiledWorkflow
from shoal.core.decisions import (
    AcquireLocks,
    BeginShutdown,
    Decision,
    ExpandNode,
    FailTask,
    FinishNode,
    FinishWorkflow,
    KillTask,
    LoadItems,
    LookupMemo,
    Plan,
    RetryTask,
    StartTask,
    StartWorkflow,
    StoreOutputs,
)
from shoal.core.exit_handler import (
    exit_context,
    exit_deadline,
    exit_grace,
    exit_held,
    outcome_without_exit,
)
from shoal.core.expressions import ExpressionError, render, to_text
from shoal.core.flow_gates import apply_gate, node_gate, workflow_gate
from shoal.core.gates import plan_gate
from shoal.core.item_ranges import succeeded_ranges
from shoal.core.retry_policy import INFRASTRUCTURE_RETRY_DELAY, choose_retry
from shoal.core.sequence import SequenceError, sequence_items
from shoal.core.state import (
    MAX_RECORDED_FAILURES,
    NodeState,
    PlanIndex,
    RunState,
    Task,
    TaskPhase,
)
from shoal.core.text_items import TextItemsError, items_from_text
from shoal_worker.offload import ValueRef, encode

__all__ = [
    "INFRASTRUCTURE_RETRY_DELAY",
    "NeedItems",
    "advance",
    "apply",
    "index_of",
    "plan",
    "resolve_items",
]

_SATISFIED = (NodePhase.SUCCEEDED, NodePhase.SKIPPED)
_UPSTREAM_FAILED = (NodePhase.FAILED, NodePhase.OMITTED)


def _unbounded(limit: int | None) -> float:
    return math.inf if limit is None else float(limit)


class NeedItems(Exception):
    """`forEach` yielded a reference to an offloaded list that has not been read yet."""

    def __init__(self, node: str, reference: dict[str, Any], key: str) -> None:
        super().__init__(f"{node}: forEach needs the list in artifact {key!r}")
        self.node = node
        self.reference = reference
        self.key = key


class _Pass:
    """One planning pass: the decisions so far and the capacity left to start tasks."""

    def __init__(self, wf: CompiledWorkflow, state: RunState, now: float) -> None:
        self.wf = wf
        self.state = state
        self.now = now
        self.decisions: list[Decision] = []
        self.wake_at: float | None = None
        self.capacity = _unbounded(wf.parallelism) - state.running
        self._context: dict[str, Any] | None = None

    def wake(self, at: float) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at

    def context(self) -> dict[str, Any]:
        """Expression context built once per pass: params, workflow and finished nodes."""
        if self._context is None:
            self._context = {
                "params": self.wf.params,
                "workflow": self.wf.meta.as_context(),
                "nodes": index_of(self.wf, self.state).finished_context(),
            }
        return self._context

    def context_for(self, node: CompiledNode) -> dict[str, Any]:
        """The context of `node`'s expressions: the exit handler's `workflow` knows more."""
        if node.name != self.wf.on_exit:
            return self.context()
        return {**self.context(), "workflow": exit_context(self.wf, self.state, self.now)}


def index_of(wf: CompiledWorkflow, state: RunState) -> PlanIndex:
    """The state's planning index, built from its nodes the first time it is needed."""
    if state.index is None:
        deps = {name: node.deps for name, node in wf.nodes.items()}
        state.index = PlanIndex.build(wf.order, deps, state.nodes)
    return state.index


def plan(wf: CompiledWorkflow, state: RunState, now: float) -> Plan:
    """Decide what follows directly from `state` at time `now`."""
    if state.phase.finished:
        return Plan([], None)
    if state.phase is WorkflowPhase.PENDING:
        gate = workflow_gate(wf, state)  # synchronization: the run waits for its locks
        return Plan([StartWorkflow()] if gate is None else gate, None)
    p = _Pass(wf, state, now)
    if state.shutdown is None:
        reason = _shutdown_reason(wf, state, now, p)
        if reason is not None:
            return Plan([BeginShutdown(*reason)], None)
    index = index_of(wf, state)
    if state.shutdown is None:
        names = index.candidates()
    else:  # every pending node is Omitted, ready or not
        names = sorted(index.pending | index.running, key=index.position.__getitem__)
    if exit_held(wf, state, index.unfinished):
        names = [name for name in names if name != wf.on_exit]
    if state.suspended and state.shutdown is None:  # spec.suspend: nothing new starts
        names = [name for name in names if name in index.running]
    for name in names:
        ns = state.nodes[name]
        if ns.phase is NodePhase.PENDING:
            _plan_pending(p, wf.nodes[name], ns)
        elif ns.phase is NodePhase.RUNNING and wf.nodes[name].spec.suspend is not None:
            _plan_gate(p, wf.nodes[name], ns)
        elif ns.phase is NodePhase.RUNNING:
            _plan_running(p, wf.nodes[name], ns)
    if not p.decisions and state.running == 0 and index.unfinished == 0:
        p.decisions.append(_finish_workflow(wf, state))
    return Plan(p.decisions, p.wake_at)


def resolve_items(wf: CompiledWorkflow, state: RunState, node: str) -> list[Any] | None:
    """A fan-out node's items from the current state (None for a plain node).

    Deterministic given the finished nodes' outputs, which is what lets a restarted
    operator recover the items of a running fan-out instead of storing them. Raises
    `NeedItems` when they are in an offloaded list not yet in `state.loaded`.
    """
    compiled = wf.nodes[node]
    if not compiled.fan_out:
        return None
    # A fresh index, not the state's: the caller may still be assembling the state.
    deps = {name: n.deps for name, n in wf.nodes.items()}
    nodes = PlanIndex.build(wf.order, deps, state.nodes).finished_context()
    context = {"params": wf.params, "workflow": wf.meta.as_context(), "nodes": nodes}
    return _items(compiled, context, state.loaded)[0]


def _items(
    node: CompiledNode, context: dict[str, Any], loaded: dict[str, list[Any] | str]
) -> tuple[list[Any], str | None]:
    """Evaluate `forEach` (or `withSequence`) to its items, and the artifact key they were
    read from, if any.

    Raises ExpressionError with the node message if it is no list.
    """
    if node.sequence is not None:
        try:
            return sequence_items(render(node.sequence, context)), None
        except (ExpressionError, SequenceError) as err:
            raise ExpressionError(f"withSequence: {err}") from None
    try:
        value = render(node.for_each, context)
    except ExpressionError as err:
        raise ExpressionError(f"forEach: {err}") from None
    ref = ValueRef.parse(value)
    if ref is not None:
        found = loaded.get(ref.ref.key)
        if found is None:
            raise NeedItems(node.name, value, ref.ref.key)
        if isinstance(found, str):
            raise ExpressionError(f"forEach: cannot read the list: {found}")
        return found, ref.ref.key
    if isinstance(value, str):  # a JSON list a step printed (Argo's withParam)
        try:
            value = items_from_text(value)
        except TextItemsError as err:
            raise ExpressionError(f"forEach got {err}") from None
    if not isinstance(value, list):
        raise ExpressionError(f"forEach must yield a list, got {type(value).__name__}")
    return value, None


def _shutdown_reason(
    wf: CompiledWorkflow, state: RunState, now: float, p: _Pass
) -> tuple[WorkflowPhase, str] | None:
    if state.stop_requested is not None:
        return WorkflowPhase.STOPPED, state.stop_requested
    deadline = wf.active_deadline_seconds
    if deadline is not None and state.started_at is not None:
        due = state.started_at + deadline
        if now >= due:
            return WorkflowPhase.FAILED, f"workflow exceeded activeDeadlineSeconds ({deadline:g}s)"
        p.wake(due)
    return None


def _shutdown_for(p: _Pass, node: CompiledNode) -> tuple[WorkflowPhase, str] | None:
    """The shutdown as it applies to `node`: none for a `runPolicy: always` node during a
    stop (not a terminate, not a deadline), which still runs once its dependencies end,
    as an exit handler does, until `activeDeadlineSeconds` ends that grace too."""
    shutdown = p.state.shutdown
    if node.name == p.wf.on_exit:
        return shutdown if p.state.terminate else None
    if shutdown is None or node.run_policy is not RunPolicy.ALWAYS:
        return shutdown
    if shutdown[0] is not WorkflowPhase.STOPPED or p.state.terminate:
        return shutdown
    deadline = p.wf.active_deadline_seconds
    if deadline is not None and p.state.started_at is not None:
        due = p.state.started_at + deadline
        if p.now >= due:
            return shutdown
        p.wake(due)
    return None


def _plan_pending(p: _Pass, node: CompiledNode, ns: NodeState) -> None:
    shutdown = _shutdown_for(p, node)
    if shutdown is not None:
        p.decisions.append(FinishNode(node.name, NodePhase.OMITTED, shutdown[1]))
        return
    dep_states = [(d, p.state.nodes[d]) for d in node.deps]
    if any(not ds.phase.finished for _, ds in dep_states):
        return
    failed = [(d, ds.phase) for d, ds in dep_states if ds.phase in _UPSTREAM_FAILED]
    if node.run_policy is RunPolicy.ON_SUCCESS and failed:
        dep, phase = failed[0]
        msg = f"not run: dependency {dep!r} {phase.value}"
        p.decisions.append(FinishNode(node.name, NodePhase.OMITTED, msg))
        return
    if node.run_policy is RunPolicy.ON_FAILURE and not failed:
        msg = "not run: runPolicy onFailure and no dependency failed"
        p.decisions.append(FinishNode(node.name, NodePhase.SKIPPED, msg))
        return
    if node.when is not None:
        try:
            condition = node.when.evaluate(p.context_for(node))
        except ExpressionError as err:
            p.decisions.append(FinishNode(node.name, NodePhase.FAILED, f"when: {err}"))
            return
        if not isinstance(condition, bool):
            msg = f"when: {node.when.source!r} must yield a bool, got {type(condition).__name__}"
            p.decisions.append(FinishNode(node.name, NodePhase.FAILED, msg))
            return
        if not condition:
            msg = f"when: {node.when.source!r} was false"
            p.decisions.append(FinishNode(node.name, NodePhase.SKIPPED, msg))
            return
    if (gate := node_gate(p.wf, node, p.state, p.context_for(node))) is not None:
        # memoize, then synchronization (core/flow_gates.py); the workflow's own lock
        # is asked for once, however many nodes are ready
        p.decisions.extend(
            d for d in gate if not (isinstance(d, AcquireLocks) and d in p.decisions)
        )
        return
    items: list[Any] | None = None
    source: str | None = None
    if node.fan_out:
        try:
            value, source = _items(node, p.context_for(node), p.state.loaded)
        except NeedItems as need:
            if need.key not in p.state.loading:
                p.decisions.append(LoadItems(node.name, need.reference))
            return
        except ExpressionError as err:
            p.decisions.append(FinishNode(node.name, NodePhase.FAILED, str(err)))
            return
        if not value:
            msg = "forEach yielded no items"
            p.decisions.append(FinishNode(node.name, NodePhase.SUCCEEDED, msg, outputs={}))
            return
        if len(value) > MAX_FAN_OUT_ITEMS:
            msg = (
                f"forEach: yielded more than {MAX_FAN_OUT_ITEMS} items "
                f"(limit {MAX_FAN_OUT_ITEMS}, docs/security.md)"
            )
            p.decisions.append(FinishNode(node.name, NodePhase.FAILED, msg))
            return
        items = value
    p.decisions.append(ExpandNode(node.name, items, source))


def _running_shutdown(
    p: _Pass, node: CompiledNode, ns: NodeState
) -> tuple[WorkflowPhase, str] | None:
    """The shutdown as it applies to running `node`; for the exit handler, the end of its
    grace once `activeDeadlineSeconds` passed."""
    shutdown = _shutdown_for(p, node)
    if shutdown is not None or node.name != p.wf.on_exit:
        return shutdown
    end = exit_deadline(p.wf, p.state, ns)
    if end is None or p.now < end:
        if end is not None:
            p.wake(end)
        return None
    grace = exit_grace(p.wf)
    return WorkflowPhase.FAILED, f"exit handler ran past its {grace:g}s after the deadline"


def _plan_running(p: _Pass, node: CompiledNode, ns: NodeState) -> None:
    shutdown = _running_shutdown(p, node, ns)
    before = len(p.decisions)
    due_retries: list[Task] = []
    failed_now = False  # an item failed for good in this pass; ns.failed counts it once applied
    for task in ns.tasks.values():
        if task.phase is TaskPhase.FAILED:
            ended = task.finished_at if task.finished_at is not None else p.now
            first = task.first_started_at or ns.started_at or task.started_at
            choice = choose_retry(node, task, ended, first) if shutdown is None else None
            if choice is not None and choice.at is not None:
                p.decisions.append(RetryTask(node.name, task.index, choice.at, free=choice.free))
            else:
                msg = _attempts_message(task)
                if choice is not None and choice.note:
                    msg += f"; not retried: {choice.note}"
                p.decisions.append(FailTask(node.name, task.index, msg, task.exit_code))
                failed_now = True
        elif task.phase is TaskPhase.WAITING:
            assert task.retry_at is not None
            if shutdown is not None:
                p.decisions.append(FailTask(node.name, task.index, shutdown[1], task.exit_code))
            elif task.retry_at <= p.now:
                due_retries.append(task)
            else:
                p.wake(task.retry_at)
        elif task.kill_reason is None:
            if shutdown is not None:
                p.decisions.append(KillTask(node.name, task.index, task.attempt, shutdown[1]))
            elif node.timeout_seconds is not None:
                due = task.started_at + node.timeout_seconds
                if p.now >= due:
                    reason = f"timed out after {node.timeout_seconds:g}s"
                    p.decisions.append(KillTask(node.name, task.index, task.attempt, reason))
                else:
                    p.wake(due)

    if shutdown is None and not p.state.suspended:
        room = min(_unbounded(node.parallelism) - ns.running, p.capacity)
        for task in sorted(due_retries, key=lambda t: t.index):
            if room <= 0:
                break
            if _start(p, node, ns, task.index, task.attempt + 1):
                room -= 1
        index = ns.next_index
        stopped = node.fail_fast and (ns.failed > 0 or failed_now)
        while room > 0 and index < ns.total and not stopped:
            if _start(p, node, ns, index, 1):
                room -= 1
            else:
                stopped = node.fail_fast
            index += 1

    if len(p.decisions) == before and not ns.tasks and not ns.storing:
        exhausted = ns.next_index >= ns.total
        if exhausted or shutdown is not None or (node.fail_fast and ns.failed > 0):
            p.decisions.append(_finish_node(node, ns, shutdown, p.wf.offload_bytes))


def _plan_gate(p: _Pass, node: CompiledNode, ns: NodeState) -> None:
    """A running approval gate: decided, timed out, or a wake at its timeout."""
    approval = p.state.approvals.get(node.name)
    step = plan_gate(node.spec, ns, approval, p.now, _shutdown_for(p, node))
    if step.finish is not None:
        p.decisions.append(step.finish)
    if step.wake_at is not None:
        p.wake(step.wake_at)


def _start(p: _Pass, node: CompiledNode, ns: NodeState, index: int, attempt: int) -> bool:
    """Render one attempt's inputs and decide to start it; a render error fails the item."""
    item = ns.items[index] if ns.items is not None else None
    ctx = p.context_for(node)
    if ns.items is not None:
        ctx = {**ctx, "item": item, "itemIndex": index}
    try:
        args = render(node.args, ctx)
        if node.item_arg is not None:
            args = {**args, node.item_arg: item}
        if node.spec.job is None and node.spec.workflow is None:  # a container's: strings
            args = [to_text(a) for a in args]
        command = render(node.command, ctx) if node.command is not None else None
        env = {k: to_text(render(v, ctx)) for k, v in node.env_values.items()}
    except ExpressionError as err:
        p.decisions.append(FailTask(node.name, index, f"args: {err}"))
        return False
    p.decisions.append(
        StartTask(
            node=node.name,
            index=index,
            attempt=attempt,
            item=item,
            args=args,
            command=[to_text(c) for c in command] if command is not None else None,
            env=env,
            timeout_seconds=node.timeout_seconds,
        )
    )
    p.capacity -= 1
    return True


def _attempts_message(task: Task) -> str:
    tries = f" (after {task.attempt} attempts)" if task.attempt > 1 else ""
    return f"{task.message}{tries}"


def _finish_node(
    node: CompiledNode,
    ns: NodeState,
    shutdown: tuple[WorkflowPhase, str] | None,
    offload_bytes: int | None,
) -> FinishNode | StoreOutputs:
    outputs = _node_outputs(ns)
    if ns.fan_out and offload_bytes is not None and outputs:
        if ns.store_error is not None:
            msg = f"cannot store the aggregated outputs: {ns.store_error}"
            return FinishNode(node.name, NodePhase.FAILED, msg)
        if ns.stored_outputs is not None:
            outputs.update(ns.stored_outputs)
        else:
            large = tuple(k for k, v in outputs.items() if len(encode(v)) > offload_bytes)
            if large:
                return StoreOutputs(node.name, large)
    if ns.failed == 0 and ns.next_index >= ns.total:
        return FinishNode(node.name, NodePhase.SUCCEEDED, "", outputs)
    if ns.failed == 0 and shutdown is not None:
        return FinishNode(node.name, NodePhase.FAILED, shutdown[1], outputs)
    if not ns.fan_out:
        msg = ns.failures[0][1] if ns.failures else (shutdown[1] if shutdown else "failed")
        return FinishNode(node.name, NodePhase.FAILED, msg)
    first_index, first_msg = ns.failures[0] if ns.failures else (-1, "")
    msg = f"{ns.failed} of {ns.total} items failed"
    if first_index >= 0:
        msg += f"; item {first_index}: {first_msg}"
    not_started = ns.total - ns.next_index
    if not_started:
        msg += f"; {not_started} items not started"
    return FinishNode(node.name, NodePhase.FAILED, msg, outputs)


def _node_outputs(ns: NodeState) -> dict[str, Any]:
    """A plain node's outputs; for a fan-out, each key maps to a list in item order."""
    if not ns.fan_out:
        return dict(ns.item_outputs.get(0, {}))
    keys: dict[str, None] = {}
    for outputs in ns.item_outputs.values():
        keys.update(dict.fromkeys(outputs))
    return {key: [ns.item_outputs.get(i, {}).get(key) for i in range(ns.total)] for key in keys}


def _finish_workflow(wf: CompiledWorkflow, state: RunState) -> FinishWorkflow:
    """The run's outcome without its exit handler; a failed exit handler fails a run that
    had Succeeded (as in Argo) and is named in the message of any other."""
    phase, msg = outcome_without_exit(wf, state)
    handler = state.nodes[wf.on_exit] if wf.on_exit is not None else None
    if handler is None or handler.phase is not NodePhase.FAILED:
        return FinishWorkflow(phase, msg)
    note = f"exit handler {wf.on_exit!r} failed: {handler.message}"
    if phase is WorkflowPhase.SUCCEEDED:
        return FinishWorkflow(WorkflowPhase.FAILED, note)
    return FinishWorkflow(phase, f"{msg}; {note}")


def apply(state: RunState, decisions: list[Decision], now: float) -> None:
    """Record decisions in `state` (in place, so a 100,000-item run is not copied per step)."""
    for d in decisions:
        if isinstance(d, StartTask):
            ns = state.nodes[d.node]
            previous = ns.tasks.get(d.index)
            ns.tasks[d.index] = Task(d.index, d.attempt, TaskPhase.RUNNING, started_at=now)
            first = previous.first_started_at if previous is not None else None
            ns.tasks[d.index].first_started_at = first if first is not None else now
            if previous is not None:
                ns.tasks[d.index].free_attempts = previous.free_attempts
            ns.next_index = max(ns.next_index, d.index + 1)
            ns.running += 1
            ns.attempts += 1
            state.running += 1
        elif isinstance(d, KillTask):
            task = state.nodes[d.node].tasks.get(d.index)
            if task is not None and task.attempt == d.attempt:
                task.kill_reason = d.reason
        elif isinstance(d, RetryTask):
            task = state.nodes[d.node].tasks[d.index]
            task.phase = TaskPhase.WAITING
            task.retry_at = d.at
            task.kill_reason = None
            if d.free:
                task.free_attempts += 1
        elif isinstance(d, FailTask):
            ns = state.nodes[d.node]
            ns.tasks.pop(d.index, None)
            ns.next_index = max(ns.next_index, d.index + 1)
            ns.failed += 1
            if d.exit_code is not None:
                ns.exit_code = d.exit_code
            if len(ns.failures) < MAX_RECORDED_FAILURES:
                ns.failures.append((d.index, d.message))
        elif isinstance(d, ExpandNode):
            ns = state.nodes[d.node]
            ns.phase = NodePhase.RUNNING
            ns.started_at = now
            ns.items = d.items
            ns.total = len(d.items) if d.items is not None else 1
            if d.source is not None:
                state.loaded.pop(d.source, None)
            if state.index is not None:
                state.index.started(d.node)
        elif isinstance(d, LoadItems):
            ref = ValueRef.parse(d.reference)
            if ref is not None:
                state.loading.add(ref.ref.key)
        elif isinstance(d, StoreOutputs):
            state.nodes[d.node].storing = True
        elif isinstance(d, FinishNode):
            ns = state.nodes[d.node]
            ns.phase = d.phase
            ns.message = d.message
            ns.outputs = d.outputs
            ns.finished_at = now
            ns.succeeded_items = (
                succeeded_ranges(ns.item_outputs, d.outputs) if ns.fan_out else None
            )
            ns.item_outputs = {}
            if state.index is not None:
                state.index.ended(d.node, ns)
        elif isinstance(d, StartWorkflow):
            state.phase = WorkflowPhase.RUNNING
            state.started_at = now
        elif isinstance(d, BeginShutdown):
            state.shutdown = (d.phase, d.reason)
        elif isinstance(d, FinishWorkflow):
            state.phase = d.phase
            state.message = d.message
            state.finished_at = now
        elif isinstance(d, AcquireLocks | LookupMemo):
            apply_gate(state, d)


def advance(wf: CompiledWorkflow, state: RunState, now: float) -> Plan:
    """Plan and apply until nothing more follows; return every decision and the next wake time.

    The number of passes is bounded: each non-empty pass moves a node or the run forward.
    """
    decisions: list[Decision] = []
    wake_at: float | None = None
    for _ in range(4 * len(wf.order) + 8):
        step = plan(wf, state, now)
        if not step.decisions:
            return Plan(decisions, step.wake_at)
        apply(state, step.decisions, now)
        decisions.extend(step.decisions)
        wake_at = step.wake_at
    raise RuntimeError(f"planner did not settle for {wf.meta.name!r} (last wake {wake_at})")
