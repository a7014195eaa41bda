"""Retry policies: `retryPolicy` retries exactly the failures it names, `expression`
decides from the last attempt, `maxDurationSeconds` caps the whole retry sequence."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.decisions import RetryTask
from shoal.core.validation import InvalidWorkflow
from tests.unit.simulator import Outcome, Simulator, fail, workflow

T0 = 1000.0
LOST = Outcome(succeeded=False, message="pod evicted", infrastructure=True)
"""An infrastructure failure: no exit code, not the job's fault."""


def node(**retries: Any) -> dict[str, Any]:
    return {"name": "a", "retries": {"limit": 2, "backoffSeconds": 1, **retries}}


def attempts(outcome: Outcome, **retries: Any) -> tuple[int, Simulator]:
    sim = Simulator(workflow(node(**retries)), {("a", 0): outcome})
    sim.run()
    return len(sim.started("a")), sim


@pytest.mark.parametrize(
    ("policy", "job_failure", "infrastructure"),
    [
        ("OnFailure", 3, 1),
        ("OnError", 1, 3),
        ("Always", 3, 3),
    ],
)
def test_each_retry_policy_retries_exactly_the_failures_it_names(
    policy: str, job_failure: int, infrastructure: int
) -> None:
    assert attempts(fail(exit_code=1), retryPolicy=policy)[0] == job_failure
    assert attempts(LOST, retryPolicy=policy)[0] == infrastructure


def test_with_a_policy_infrastructure_retries_spend_the_limit() -> None:
    _, sim = attempts(LOST, retryPolicy="OnError")
    assert all(not r.free for r in sim.decisions(RetryTask))
    assert sim.state.nodes["a"].message == "pod evicted (after 3 attempts)"


def test_without_a_policy_infrastructure_failures_are_retried_free_first() -> None:
    count, sim = attempts(LOST)
    # Three free retries, then the limit of two: six attempts in all, as before policies.
    assert count == 6
    assert [r.free for r in sim.decisions(RetryTask)] == [True, True, True, False, False]


def test_a_non_retriable_failure_is_never_retried_whatever_the_policy() -> None:
    assert attempts(fail(retriable=False), retryPolicy="Always")[0] == 1


def test_the_expression_decides_from_the_last_exit_code() -> None:
    retry_on_2 = {"expression": "lastRetry.exitCode == 2"}
    assert attempts(fail(exit_code=2), **retry_on_2)[0] == 3
    count, sim = attempts(fail(exit_code=1), **retry_on_2)
    assert count == 1
    assert sim.state.nodes["a"].message == (
        "boom; not retried: retries.expression 'lastRetry.exitCode == 2' was false"
    )


def test_the_expression_sees_status_message_and_duration() -> None:
    expr = (
        "lastRetry.status == 'Failed' && lastRetry.message.contains('flaky') "
        "&& lastRetry.duration >= 1.0"
    )
    assert attempts(fail("a flaky network"), expression=expr)[0] == 3
    assert attempts(fail("bad input"), expression=expr)[0] == 1
    lost_expr = "lastRetry.status == 'Error' && lastRetry.exitCode == -1"
    assert attempts(LOST, retryPolicy="OnError", expression=lost_expr)[0] == 3


def test_an_expression_that_fails_to_evaluate_gives_up_and_says_why() -> None:
    count, sim = attempts(fail(), expression="lastRetry.exitCode / 0 == 1")
    assert count == 1
    assert "not retried: retries.expression" in sim.state.nodes["a"].message


def test_max_duration_stops_retries_that_would_start_too_late() -> None:
    # Attempt 1 runs T0..T0+1, retry 1 at +11 (within 25 s), attempt 2 ends at +12; the
    # next retry would start at +32, past 25 s after the first attempt: none starts.
    wf = workflow(
        {"name": "a", "retries": {"limit": 10, "backoffSeconds": 10, "maxDurationSeconds": 25}}
    )
    sim = Simulator(wf, {("a", 0): fail()})
    state = sim.run()

    assert [t for t, s in sim.starts] == [T0, T0 + 11]
    assert state.nodes["a"].phase is NodePhase.FAILED
    assert state.nodes["a"].message == (
        "boom (after 2 attempts); not retried: maxDurationSeconds (25s) since the first "
        "attempt would pass"
    )
    assert state.phase is WorkflowPhase.FAILED


def test_max_duration_counts_per_fan_out_item_from_its_own_first_attempt() -> None:
    wf = workflow(
        {
            "name": "a",
            "forEach": [0, 1],
            "itemArg": "i",
            "parallelism": 1,
            "failFast": False,
            "retries": {"limit": 10, "backoffSeconds": 10, "maxDurationSeconds": 11.5},
        }
    )
    sim = Simulator(wf, {("a", 0): fail(), ("a", 1): fail()})
    sim.run()
    starts = [(s.index, s.attempt) for _, s in sim.starts]
    # Item 1 first ran at +1 and retries at +12: within 11.5 s of its own first attempt
    # (not of the node's), so each item gets exactly one retry.
    assert sorted(starts) == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_the_expression_is_checked_when_the_workflow_is_compiled() -> None:
    with pytest.raises(InvalidWorkflow) as err:
        workflow(node(expression="params.x == 1"))
    [problem] = err.value.problems
    assert (problem.node, problem.field) == ("a", "retries.expression")
    assert "unknown name 'params'" in problem.message
