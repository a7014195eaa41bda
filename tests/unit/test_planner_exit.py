"""The exit handler (`spec.onExit`): it runs last, on every ending but a terminate, and
sees how the run went through `workflow.status`, `workflow.failures` and `workflow.duration`.
"""

from __future__ import annotations

from typing import Any

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.decisions import KillTask, StartTask
from shoal.core.exit_handler import EXIT_GRACE_SECONDS, MAX_EXIT_FAILURE_MESSAGE, MAX_EXIT_FAILURES
from tests.unit.simulator import FAIL, HANG, OK, Outcome, Simulator, fail, ok, workflow

T0 = 1000.0
SEEN = {
    "status": "${{ workflow.status }}",
    "failures": "${{ workflow.failures }}",
    "duration": "${{ workflow.duration }}",
    "name": "${{ workflow.name }}",
}


def with_exit(*nodes: dict[str, Any], handler: dict[str, Any] | None = None, **spec: Any) -> Any:
    exit_node = {"name": "notify", "args": SEEN, **(handler or {})}
    return workflow(*nodes, exit_node, onExit="notify", **spec)


def seen_by_handler(sim: Simulator) -> dict[str, Any]:
    [start] = sim.started("notify")
    assert isinstance(start.args, dict)
    return start.args


def test_on_success_the_handler_starts_after_every_other_node_and_sees_succeeded() -> None:
    wf = with_exit({"name": "a"}, {"name": "b", "dependsOn": ["a"]})
    sim = Simulator(wf)
    state = sim.run()

    order = [s.node for _, s in sim.starts]
    assert order == ["a", "b", "notify"]
    notify_start = next(t for t, s in sim.starts if s.node == "notify")
    b_end = T0 + 2  # a ends at +1, b at +2
    assert notify_start == b_end
    assert seen_by_handler(sim) == {
        "status": "Succeeded",
        "failures": [],
        "duration": b_end - T0,
        "name": "wf",
    }
    assert state.phase is WorkflowPhase.SUCCEEDED


def test_on_failure_the_handler_sees_failed_and_which_node_failed() -> None:
    wf = with_exit({"name": "a"}, {"name": "b", "dependsOn": ["a"]})
    sim = Simulator(wf, {("a", 0): FAIL})
    state = sim.run()

    seen = seen_by_handler(sim)
    assert seen["status"] == "Failed"
    assert seen["failures"] == [{"node": "a", "phase": "Failed", "message": "boom"}]
    assert state.nodes["notify"].phase is NodePhase.SUCCEEDED
    assert state.phase is WorkflowPhase.FAILED
    assert state.message == "node 'a' failed: boom"


def test_on_stop_the_handler_still_runs_and_sees_stopped() -> None:
    wf = with_exit({"name": "a"}, {"name": "b", "dependsOn": ["a"]})
    sim = Simulator(wf, {("a", 0): HANG})
    sim.settle()
    assert not sim.started("notify")  # held while `a` runs
    sim.state.stop_requested = "stopped by alice"
    state = sim.run()

    assert KillTask("a", 0, 1, "stopped by alice") in sim.decisions(KillTask)
    seen = seen_by_handler(sim)
    assert seen["status"] == "Stopped"
    assert [f["node"] for f in seen["failures"]] == ["a"]
    assert state.phase is WorkflowPhase.STOPPED
    assert state.nodes["notify"].phase is NodePhase.SUCCEEDED


def test_a_terminate_skips_the_handler() -> None:
    wf = with_exit({"name": "a"})
    sim = Simulator(wf, {("a", 0): HANG})
    sim.settle()
    sim.state.stop_requested = "terminated by alice"
    sim.state.terminate = True
    state = sim.run()

    assert not sim.started("notify")
    assert state.nodes["notify"].phase is NodePhase.OMITTED
    assert state.phase is WorkflowPhase.STOPPED


def test_on_deadline_the_handler_runs_and_is_killed_after_its_default_grace() -> None:
    wf = with_exit({"name": "a"}, activeDeadlineSeconds=100)
    sim = Simulator(wf, {("a", 0): HANG, ("notify", 0): HANG})
    state = sim.run()

    assert seen_by_handler(sim)["status"] == "Failed"
    [kill] = [k for k in sim.decisions(KillTask) if k.node == "notify"]
    kill_time = next(t for t, d in sim.log if d == kill)
    assert kill_time == T0 + 100 + EXIT_GRACE_SECONDS
    assert state.phase is WorkflowPhase.FAILED
    assert "activeDeadlineSeconds" in state.message


def test_on_deadline_the_handler_grace_is_its_own_timeout_when_set() -> None:
    wf = with_exit({"name": "a"}, handler={"timeoutSeconds": 5}, activeDeadlineSeconds=100)
    sim = Simulator(wf, {("a", 0): HANG, ("notify", 0): HANG})
    sim.run()

    [kill] = [k for k in sim.decisions(KillTask) if k.node == "notify"]
    assert next(t for t, d in sim.log if d == kill) == T0 + 105


def test_a_failed_handler_fails_a_run_that_had_succeeded() -> None:
    wf = with_exit({"name": "a"})
    sim = Simulator(wf, {("notify", 0): fail("smtp down")})
    state = sim.run()

    assert state.phase is WorkflowPhase.FAILED
    assert state.message == "exit handler 'notify' failed: smtp down"


def test_a_failed_handler_keeps_a_stopped_run_stopped_and_is_named() -> None:
    wf = with_exit({"name": "a"})
    sim = Simulator(wf, {("a", 0): HANG, ("notify", 0): fail("smtp down")})
    sim.settle()
    sim.state.stop_requested = "stopped by alice"
    state = sim.run()

    assert state.phase is WorkflowPhase.STOPPED
    assert state.message == "stopped by alice; exit handler 'notify' failed: smtp down"


def test_the_handler_when_can_test_the_status() -> None:
    wf = with_exit({"name": "a"}, handler={"when": "workflow.status != 'Succeeded'"})
    state = Simulator(wf).run()

    assert state.nodes["notify"].phase is NodePhase.SKIPPED
    assert state.phase is WorkflowPhase.SUCCEEDED


def test_the_handler_reads_any_node_without_listing_it() -> None:
    wf = with_exit(
        {"name": "a"},
        {"name": "b", "dependsOn": ["a"]},
        handler={"args": {"b": "${{ nodes.b.phase }}", "x": "${{ nodes.a.outputs.x }}"}},
    )
    sim = Simulator(wf, {("a", 0): ok(x=7)})
    sim.run()

    assert seen_by_handler(sim) == {"b": "Succeeded", "x": 7}


def test_failures_are_bounded_in_count_and_message_length() -> None:
    many = [{"name": f"n{i}"} for i in range(MAX_EXIT_FAILURES + 5)]
    wf = with_exit(*many)
    long = fail("x" * (MAX_EXIT_FAILURE_MESSAGE * 3))

    def outcome(start: StartTask) -> Outcome:
        return OK if start.node == "notify" else long

    sim = Simulator(wf, outcome)
    sim.run()

    failures = seen_by_handler(sim)["failures"]
    assert len(failures) == MAX_EXIT_FAILURES
    assert [f["node"] for f in failures] == [f"n{i}" for i in range(MAX_EXIT_FAILURES)]
    assert all(len(f["message"]) == MAX_EXIT_FAILURE_MESSAGE for f in failures)


def test_a_deadline_passing_while_the_handler_runs_leaves_it_its_grace() -> None:
    # `a` ends at +1, the handler starts then and hangs; the deadline at +10 shuts the run
    # down but the handler keeps running until +10 + the default grace.
    wf = with_exit({"name": "a"}, activeDeadlineSeconds=10)
    sim = Simulator(wf, {("notify", 0): HANG})
    state = sim.run()

    assert seen_by_handler(sim)["status"] == "Succeeded"
    [kill] = [k for k in sim.decisions(KillTask) if k.node == "notify"]
    assert next(t for t, d in sim.log if d == kill) == T0 + 10 + EXIT_GRACE_SECONDS
    assert state.phase is WorkflowPhase.FAILED
    assert "activeDeadlineSeconds" in state.message
