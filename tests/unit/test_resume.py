"""The resume transition (`shoal resume`, the REST API) and how the operator reads the
spec's controls: which gates a request decides, and what it refuses, naming the node."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.core.resume import ResumeError, plan_resume
from shoal.core.state import RunState
from shoal.kube.run_controls import apply_controls, read_approvals

AT = "2026-12-07T11:00:00Z"


def body(
    phases: dict[str, str], *, suspend: bool = False, approvals: dict[str, Any] | None = None
) -> dict[str, Any]:
    nodes = [
        {"name": "build", "job": "b"},
        {"name": "gate-a", "suspend": {}},
        {"name": "gate-b", "suspend": {"timeoutSeconds": 5}},
    ]
    spec: dict[str, Any] = {"nodes": nodes, "suspend": suspend}
    if approvals:
        spec["approvals"] = approvals
    status = {"phase": "Running", "nodes": {n: {"phase": p} for n, p in phases.items()}}
    return {"metadata": {"name": "wf"}, "spec": spec, "status": status}


def resume(b: dict[str, Any], node: str | None = None, *, reject: bool = False) -> Any:
    return plan_resume(b, node=node, reject=reject, message="m", by="alice", at=AT)


def test_without_a_node_every_waiting_gate_is_approved_and_suspend_lifted() -> None:
    plan = resume(body({"gate-a": "Running", "gate-b": "Pending"}, suspend=True))
    assert plan.decided == ("gate-a",)
    assert plan.unsuspended
    assert plan.patch == {
        "spec": {
            "approvals": {
                "gate-a": {"decision": "Approved", "by": "alice", "at": AT, "message": "m"}
            },
            "suspend": False,
        }
    }


def test_a_named_gate_may_be_decided_before_it_starts_and_rejected() -> None:
    plan = resume(body({"gate-b": "Pending"}), "gate-b", reject=True)
    assert plan.decided == ("gate-b",)
    assert not plan.unsuspended
    assert plan.patch["spec"]["approvals"]["gate-b"]["decision"] == "Rejected"
    assert "suspend" not in plan.patch["spec"]


@pytest.mark.parametrize(
    ("b", "node", "words"),
    [
        (body({}), "build", ["'build'", "not an approval gate", "gate-a, gate-b"]),
        (body({"gate-a": "Succeeded"}), "gate-a", ["'gate-a'", "already decided"]),
        (
            body({"gate-a": "Running"}, approvals={"gate-a": {"decision": "Approved"}}),
            "gate-a",
            ["already decided"],
        ),
        (body({"gate-a": "Pending"}), None, ["not suspended", "no approval gate is waiting"]),
    ],
)
def test_refusals_say_why(b: dict[str, Any], node: str | None, words: list[str]) -> None:
    with pytest.raises(ResumeError) as err:
        resume(b, node)
    for word in words:
        assert word in str(err.value)


def test_a_finished_workflow_is_not_resumed() -> None:
    b = body({})
    b["status"]["phase"] = "Succeeded"
    with pytest.raises(ResumeError, match="already finished"):
        resume(b)


def test_reject_without_a_waiting_gate_is_refused_even_when_suspended() -> None:
    with pytest.raises(ResumeError, match="no waiting approval gate to reject"):
        resume(body({}, suspend=True), reject=True)


def test_the_operator_reads_suspend_and_well_formed_approvals_only() -> None:
    spec = {
        "suspend": True,
        "approvals": {
            "ok": {"decision": "Approved", "by": "bob"},
            "bad": {"decision": "Maybe"},
            "worse": "yes",
        },
    }
    assert list(read_approvals(spec)) == ["ok"]
    state = RunState.new(["ok"])
    apply_controls(state, {"spec": {**spec, "stop": True}})
    assert state.suspended
    assert state.approvals["ok"].by == "bob"
    assert state.stop_requested == "stopped (spec.stop)"
    apply_controls(state, {"spec": {"suspend": False}})
    assert not state.suspended
    assert state.stop_requested == "stopped (spec.stop)"  # a stop is never taken back
