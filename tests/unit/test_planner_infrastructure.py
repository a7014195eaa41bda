"""Infrastructure failures (evicted or lost pods) are retried without spending `retries`."""

from __future__ import annotations

from shoal.api.workflow import Node, NodePhase, RetryPolicy, WorkflowSpec
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.decisions import FailTask, RetryTask, StartTask
from shoal.core.planner import INFRASTRUCTURE_RETRY_DELAY, advance
from shoal.core.state import MAX_INFRASTRUCTURE_RETRIES, RunState, TaskFinished, record_finished
from shoal.core.validation import compile_workflow


def _one_node(limit: int) -> tuple[CompiledWorkflow, RunState]:
    spec = WorkflowSpec(
        nodes=[Node(name="a", job="j", retries=RetryPolicy(limit=limit, backoff_seconds=30))]
    )
    wf = compile_workflow(spec, WorkflowMeta(name="wf"))
    return wf, RunState.new(list(wf.order))


def _fail(state: RunState, attempt: int, at: float, infrastructure: bool) -> None:
    event = TaskFinished("a", 0, attempt, False, at, infrastructure=infrastructure, message="x")
    assert record_finished(state, event)


def test_lost_pods_are_retried_for_free_then_count_like_any_failure() -> None:
    wf, state = _one_node(limit=1)
    now = 100.0
    plan = advance(wf, state, now)
    assert next(d for d in plan.decisions if isinstance(d, StartTask)).attempt == 1
    attempt = 1
    for _ in range(MAX_INFRASTRUCTURE_RETRIES):
        _fail(state, attempt, now, infrastructure=True)
        plan = advance(wf, state, now)
        retry = [d for d in plan.decisions if isinstance(d, RetryTask)]
        assert retry == [RetryTask("a", 0, now + INFRASTRUCTURE_RETRY_DELAY, free=True)]
        now += INFRASTRUCTURE_RETRY_DELAY
        plan = advance(wf, state, now)
        attempt += 1
        assert [d.attempt for d in plan.decisions if isinstance(d, StartTask)] == [attempt]
    # Free retries used up: the next infrastructure failure spends the one real retry...
    _fail(state, attempt, now, infrastructure=True)
    plan = advance(wf, state, now)
    assert [d for d in plan.decisions if isinstance(d, RetryTask)] == [
        RetryTask("a", 0, now + 30, free=False)
    ]
    now += 30
    advance(wf, state, now)
    attempt += 1
    # ...and a job failure after that fails the node.
    _fail(state, attempt, now, infrastructure=False)
    plan = advance(wf, state, now)
    assert any(isinstance(d, FailTask) for d in plan.decisions)
    assert state.nodes["a"].phase is NodePhase.FAILED
    assert state.nodes["a"].attempts == MAX_INFRASTRUCTURE_RETRIES + 2
