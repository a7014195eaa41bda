"""Approval gates and `spec.suspend` in the pure planner: a gate waits without a pod until
it is approved, rejected or timed out; a suspended run starts nothing new."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api.gates import Approval, GateDecision
from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import StartTask
from shoal.core.planner import advance
from shoal.core.state import RunState, TaskFinished, record_finished
from shoal.core.validation import InvalidWorkflow
from tests.unit.simulator import compile_spec

T0 = 1000.0


def gated(suspend: dict[str, Any] | None = None, **spec: Any) -> CompiledWorkflow:
    nodes = [
        {"name": "build", "job": "build"},
        {"name": "approve", "dependsOn": ["build"], "suspend": suspend or {}},
        {"name": "deploy", "job": "deploy", "dependsOn": ["approve"]},
        {"name": "rollback", "job": "rb", "dependsOn": ["approve"], "runPolicy": "onFailure"},
    ]
    return compile_spec({"image": "worker:1", **spec, "nodes": nodes})


def finish(state: RunState, start: StartTask, at: float) -> None:
    event = TaskFinished(start.node, start.index, start.attempt, True, at, exit_code=0)
    assert record_finished(state, event)


def started(decisions: list[Any]) -> list[str]:
    return [d.node for d in decisions if isinstance(d, StartTask)]


def to_gate(wf: CompiledWorkflow) -> RunState:
    """Run until the gate waits: build started and finished."""
    state = RunState.new(list(wf.order))
    first = advance(wf, state, T0)
    [build] = [d for d in first.decisions if isinstance(d, StartTask)]
    finish(state, build, T0 + 1)
    waiting = advance(wf, state, T0 + 1)
    assert started(waiting.decisions) == []  # a gate runs no pod
    assert state.nodes["approve"].phase is NodePhase.RUNNING
    return state


def approval(decision: GateDecision, message: str = "") -> Approval:
    return Approval(decision=decision, by="alice", at="2026-12-07T11:00:00Z", message=message)


def test_a_gate_waits_without_a_wake_time_until_approved_then_its_dependents_run() -> None:
    wf = gated()
    state = to_gate(wf)
    idle = advance(wf, state, T0 + 5000)
    assert idle.decisions == []
    assert idle.wake_at is None
    assert state.nodes["approve"].phase is NodePhase.RUNNING

    state.approvals["approve"] = approval(GateDecision.APPROVED, "ship it")
    step = advance(wf, state, T0 + 5001)
    assert started(step.decisions) == ["deploy"]
    gate = state.nodes["approve"]
    assert gate.phase is NodePhase.SUCCEEDED
    assert gate.message == "approved by alice: ship it"
    assert gate.outputs == {
        "approved": True,
        "by": "alice",
        "at": "2026-12-07T11:00:00Z",
        "message": "ship it",
        "timedOut": False,
    }


def test_a_rejected_gate_fails_omits_its_dependents_and_runs_on_failure_ones() -> None:
    wf = gated()
    state = to_gate(wf)
    state.approvals["approve"] = approval(GateDecision.REJECTED, "not today")
    step = advance(wf, state, T0 + 2)
    assert started(step.decisions) == ["rollback"]
    assert state.nodes["approve"].phase is NodePhase.FAILED
    assert state.nodes["approve"].message == "rejected by alice: not today"
    assert state.nodes["approve"].outputs["approved"] is False
    assert state.nodes["deploy"].phase is NodePhase.OMITTED


@pytest.mark.parametrize(
    ("default", "phase", "deploy"),
    [("approve", NodePhase.SUCCEEDED, ["deploy"]), ("reject", NodePhase.FAILED, ["rollback"])],
)
def test_a_timeout_decides_by_default_at_the_wake_time_the_planner_gave(
    default: str, phase: NodePhase, deploy: list[str]
) -> None:
    wf = gated({"timeoutSeconds": 60, "default": default})
    state = to_gate(wf)
    before = advance(wf, state, T0 + 30)
    assert before.decisions == []
    assert before.wake_at == T0 + 1 + 60
    step = advance(wf, state, T0 + 61)
    assert started(step.decisions) == deploy
    gate = state.nodes["approve"]
    assert gate.phase is phase
    assert gate.outputs["timedOut"] is True
    assert gate.outputs["approved"] is (default == "approve")
    assert "nobody decided within 60s" in gate.message


def test_a_decision_before_the_timeout_wins_over_the_default() -> None:
    wf = gated({"timeoutSeconds": 60, "default": "approve"})
    state = to_gate(wf)
    state.approvals["approve"] = approval(GateDecision.REJECTED)
    advance(wf, state, T0 + 100)
    assert state.nodes["approve"].phase is NodePhase.FAILED
    assert state.nodes["approve"].outputs["timedOut"] is False


def test_a_stop_ends_a_waiting_gate_and_the_run_is_stopped() -> None:
    wf = gated()
    state = to_gate(wf)
    state.stop_requested = "stopped (spec.stop)"
    advance(wf, state, T0 + 2)
    assert state.nodes["approve"].phase is NodePhase.FAILED
    assert state.phase is WorkflowPhase.STOPPED


def test_a_gate_started_before_a_restart_times_out_from_its_own_start() -> None:
    """The rebuilt state keeps the gate's startedAt: the timeout does not restart."""
    wf = gated({"timeoutSeconds": 60, "default": "approve"})
    state = RunState.new(list(wf.order))
    state.phase = WorkflowPhase.RUNNING
    state.started_at = T0
    state.nodes["build"].phase = NodePhase.SUCCEEDED
    state.nodes["approve"].phase = NodePhase.RUNNING
    state.nodes["approve"].started_at = T0 + 1
    state.nodes["approve"].total = 1
    step = advance(wf, state, T0 + 30)
    assert step.wake_at == T0 + 61
    advance(wf, state, T0 + 61)
    assert state.nodes["approve"].phase is NodePhase.SUCCEEDED


def test_a_suspended_run_starts_no_new_node_and_carries_on_when_resumed() -> None:
    wf = compile_spec(
        {
            "image": "worker:1",
            "nodes": [{"name": "a", "job": "a"}, {"name": "b", "job": "b", "dependsOn": ["a"]}],
        }
    )
    state = RunState.new(list(wf.order))
    [a] = [d for d in advance(wf, state, T0).decisions if isinstance(d, StartTask)]
    state.suspended = True
    finish(state, a, T0 + 1)  # what runs finishes
    held = advance(wf, state, T0 + 1)
    assert started(held.decisions) == []
    assert state.nodes["b"].phase is NodePhase.PENDING
    assert state.phase is WorkflowPhase.RUNNING
    state.suspended = False
    assert started(advance(wf, state, T0 + 2).decisions) == ["b"]


def test_a_suspended_fan_out_starts_no_further_items() -> None:
    wf = compile_spec(
        {
            "image": "worker:1",
            "nodes": [
                {"name": "f", "job": "f", "forEach": [1, 2, 3], "itemArg": "x", "parallelism": 1}
            ],
        }
    )
    state = RunState.new(list(wf.order))
    [first] = [d for d in advance(wf, state, T0).decisions if isinstance(d, StartTask)]
    state.suspended = True
    finish(state, first, T0 + 1)
    assert started(advance(wf, state, T0 + 1).decisions) == []
    state.suspended = False
    assert [d.index for d in advance(wf, state, T0 + 2).decisions if isinstance(d, StartTask)] == [
        1
    ]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"job": "x"}, "job"),
        ({"command": ["true"]}, "command"),
        ({"forEach": [1]}, "forEach"),
        ({"retries": {"limit": 1}}, "retries"),
    ],
)
def test_a_gate_with_work_of_its_own_is_refused_naming_node_and_field(
    extra: dict[str, Any], field: str
) -> None:
    spec = {"image": "w:1", "nodes": [{"name": "gate", "suspend": {}, **extra}]}
    with pytest.raises(InvalidWorkflow) as err:
        compile_spec(spec)
    text = str(err.value)
    assert "gate" in text
    assert field in text
    assert "approval gate" in text
