"""Example-based tests of every semantic stated in the planner's module docstring.

The planner is driven by the simulated executor in `simulator.py`, so each test reads as a
story: what the workflow is, how its tasks end, what the planner decided and when.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shoal.api.workflow import NodePhase, RunPolicy, WorkflowPhase
from shoal.core import planner as planner_module
from shoal.core.decisions import (
    BeginShutdown,
    ExpandNode,
    FailTask,
    FinishNode,
    FinishWorkflow,
    KillTask,
    Plan,
    RetryTask,
    StartTask,
    StartWorkflow,
)
from shoal.core.planner import advance, plan
from shoal.core.state import RunState, TaskFinished, TaskPhase, record_finished
from tests.unit.simulator import FAIL, HANG, OK, Outcome, Simulator, fail, ok, workflow

T0 = 1000.0


def phases(state: RunState) -> dict[str, NodePhase]:
    return {name: ns.phase for name, ns in state.nodes.items()}


def finish_node(sim: Simulator, node: str) -> FinishNode:
    [decision] = [d for d in sim.decisions(FinishNode) if d.node == node]
    return decision


# --- the basic life cycle --------------------------------------------------------------


def test_a_new_run_is_started_then_its_roots_expand_and_start() -> None:
    wf = workflow({"name": "a", "args": {"x": 1}})
    state = RunState.new(list(wf.order))

    assert plan(wf, state, T0) == Plan([StartWorkflow()], None)
    result = advance(wf, state, T0)

    assert result == Plan(
        [
            StartWorkflow(),
            ExpandNode("a", None),
            StartTask(node="a", index=0, attempt=1, item=None, args={"x": 1}),
        ],
        None,
    )
    assert state.phase is WorkflowPhase.RUNNING
    assert state.started_at == T0
    assert state.nodes["a"].phase is NodePhase.RUNNING
    assert state.running == 1
    # Asking again without a new observation decides nothing more.
    assert advance(wf, state, T0 + 5) == Plan([], None)


def test_exact_decisions_of_a_two_node_chain() -> None:
    wf = workflow(
        {"name": "a"}, {"name": "b", "dependsOn": ["a"], "args": {"v": "${{ nodes.a.outputs.x }}"}}
    )
    sim = Simulator(wf, {("a", 0): ok(x=41)})
    sim.settle()
    sim.complete("a")
    after_a = sim.settle().decisions
    assert (
        after_a
        == [d for t, d in sim.log if t == T0 + 1]
        == [
            FinishNode("a", NodePhase.SUCCEEDED, "", {"x": 41}),
            ExpandNode("b", None),
            StartTask(node="b", index=0, attempt=1, args={"v": 41}),
        ]
    )
    sim.complete("b")
    sim.settle()
    assert [d for t, d in sim.log if t == T0 + 2] == [
        FinishNode("b", NodePhase.SUCCEEDED, "", {}),
        FinishWorkflow(WorkflowPhase.SUCCEEDED, ""),
    ]
    assert sim.state.phase is WorkflowPhase.SUCCEEDED
    assert sim.state.finished_at == T0 + 2
    # A finished run plans nothing, whenever it is asked.
    assert plan(wf, sim.state, T0 + 100) == Plan([], None)
    assert advance(wf, sim.state, T0 + 100) == Plan([], None)


# --- dependencies -------------------------------------------------------------------------


def test_a_node_starts_only_after_every_dependency_finished() -> None:
    wf = workflow({"name": "a"}, {"name": "b"}, {"name": "c", "dependsOn": ["a", "b"]})
    sim = Simulator(wf)
    sim.settle()
    assert sorted(sim.running) == [("a", 0), ("b", 0)]

    sim.complete("a")
    sim.settle()
    assert sorted(sim.running) == [("b", 0)]
    assert sim.state.nodes["c"].phase is NodePhase.PENDING

    sim.complete("b")
    sim.settle()
    assert sorted(sim.running) == [("c", 0)]
    sim.run()
    assert sim.state.phase is WorkflowPhase.SUCCEEDED


def test_a_diamond_runs_each_node_once_in_dependency_order() -> None:
    wf = workflow(
        {"name": "top"},
        {"name": "left", "dependsOn": ["top"]},
        {"name": "right", "dependsOn": ["top"]},
        {"name": "bottom", "dependsOn": ["left", "right"]},
    )
    sim = Simulator(wf, choose=lambda running: len(running) - 1)
    sim.run()
    started = {s.node: t for t, s in sim.starts}
    assert sorted(started) == ["bottom", "left", "right", "top"]
    assert len(sim.starts) == 4
    ended = {e.node: e.at for e in sim.events}
    assert min(started["left"], started["right"]) >= ended["top"]
    assert started["bottom"] >= max(ended["left"], ended["right"])
    assert sim.state.phase is WorkflowPhase.SUCCEEDED


def test_upstream_outputs_and_params_reach_args() -> None:
    wf = workflow(
        {"name": "a"},
        {
            "name": "b",
            "dependsOn": ["a"],
            "args": {
                "ids": "${{ nodes.a.outputs.ids }}",
                "label": "${{ params.region }}/${{ workflow.name }}",
                "first": "${{ nodes.a.outputs.ids[0] + 1 }}",
            },
        },
        parameters={"region": "eu-west"},
    )
    sim = Simulator(wf, {("a", 0): ok(ids=[7, 8])})
    sim.run()
    [start] = sim.started("b")
    assert start.args == {"ids": [7, 8], "label": "eu-west/wf", "first": 8}


# --- when ---------------------------------------------------------------------------------


def test_when_true_runs_the_node() -> None:
    wf = workflow({"name": "a"}, {"name": "b", "dependsOn": ["a"], "when": "nodes.a.outputs.n > 0"})
    sim = Simulator(wf, {("a", 0): ok(n=3)})
    sim.run()
    assert len(sim.started("b")) == 1
    assert sim.state.nodes["b"].phase is NodePhase.SUCCEEDED


def test_when_false_skips_the_node_and_its_dependents_still_run() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "b", "dependsOn": ["a"], "when": "nodes.a.outputs.n > 0"},
        {"name": "c", "dependsOn": ["b"]},
        {"name": "d", "dependsOn": ["b"], "when": 'nodes.b.phase == "Skipped"'},
        {"name": "e", "dependsOn": ["b"], "when": 'nodes.b.phase == "Succeeded"'},
    )
    sim = Simulator(wf, {("a", 0): ok(n=0)})
    sim.run()
    assert sim.started("b") == []
    assert finish_node(sim, "b") == FinishNode(
        "b", NodePhase.SKIPPED, "when: 'nodes.a.outputs.n > 0' was false", {}
    )
    assert phases(sim.state) == {
        "a": NodePhase.SUCCEEDED,
        "b": NodePhase.SKIPPED,
        "c": NodePhase.SUCCEEDED,
        "d": NodePhase.SUCCEEDED,
        "e": NodePhase.SKIPPED,
    }
    assert sim.state.phase is WorkflowPhase.SUCCEEDED


def test_when_can_read_params() -> None:
    wf = workflow({"name": "a", "when": "params.enabled"}, parameters={"enabled": False})
    sim = Simulator(wf)
    sim.run()
    assert sim.state.nodes["a"].phase is NodePhase.SKIPPED
    assert sim.state.phase is WorkflowPhase.SUCCEEDED


def test_when_that_fails_to_evaluate_fails_the_node() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "b", "dependsOn": ["a"], "when": "nodes.a.outputs.missing > 0"},
        {"name": "c", "dependsOn": ["b"]},
    )
    sim = Simulator(wf, {("a", 0): ok(n=1)})
    sim.run()
    assert sim.started("b") == []
    b = finish_node(sim, "b")
    assert b.phase is NodePhase.FAILED
    assert b.message == "when: 'nodes.a.outputs.missing > 0': no such key 'missing'"
    assert sim.state.nodes["c"].phase is NodePhase.OMITTED
    assert sim.state.phase is WorkflowPhase.FAILED
    assert sim.state.message == f"node 'b' failed: {b.message}"


def test_when_that_yields_no_bool_fails_the_node() -> None:
    wf = workflow({"name": "a"}, {"name": "b", "dependsOn": ["a"], "when": "nodes.a.outputs.n"})
    sim = Simulator(wf, {("a", 0): ok(n=1)})
    sim.run()
    assert sim.started("b") == []
    assert finish_node(sim, "b") == FinishNode(
        "b", NodePhase.FAILED, "when: 'nodes.a.outputs.n' must yield a bool, got int"
    )
    assert sim.state.phase is WorkflowPhase.FAILED


def test_python_style_code_in_when_is_never_executed(tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    wf = workflow({"name": "a", "when": f"__import__('os').system('touch {marker}') == 0"})
    sim = Simulator(wf)
    sim.run()
    node = sim.state.nodes["a"]
    assert node.phase is NodePhase.FAILED
    assert node.message.startswith("when: ")
    assert "Undefined variable or function: '__import__'" in node.message
    assert not marker.exists()


# --- runPolicy ----------------------------------------------------------------------------

_DEP_KINDS = (NodePhase.SUCCEEDED, NodePhase.FAILED, NodePhase.SKIPPED, NodePhase.OMITTED)


def _dependency(
    i: int, kind: NodePhase
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], Outcome]]:
    """Nodes that make `d{i}` end in `kind`, and the outcomes that get it there."""
    name = f"d{i}"
    if kind is NodePhase.SUCCEEDED:
        return [{"name": name}], {}
    if kind is NodePhase.FAILED:
        return [{"name": name}], {(name, 0): FAIL}
    if kind is NodePhase.SKIPPED:
        return [{"name": name, "when": "false"}], {}
    return [{"name": f"u{i}"}, {"name": name, "dependsOn": [f"u{i}"]}], {(f"u{i}", 0): FAIL}


def _documented(policy: RunPolicy, deps: tuple[NodePhase, ...]) -> NodePhase:
    """The planner docstring's rule, written out independently of the planner."""
    upstream_failed = any(p in (NodePhase.FAILED, NodePhase.OMITTED) for p in deps)
    if policy is RunPolicy.ON_SUCCESS:
        return NodePhase.OMITTED if upstream_failed else NodePhase.SUCCEEDED
    if policy is RunPolicy.ALWAYS:
        return NodePhase.SUCCEEDED
    return NodePhase.SUCCEEDED if upstream_failed else NodePhase.SKIPPED


@pytest.mark.parametrize("policy", list(RunPolicy))
@pytest.mark.parametrize(
    "deps",
    [*itertools.product(_DEP_KINDS), *itertools.product(_DEP_KINDS, repeat=2)],
    ids=lambda deps: "+".join(p.value for p in deps),
)
def test_run_policy_for_every_combination_of_dependency_outcomes(
    policy: RunPolicy, deps: tuple[NodePhase, ...]
) -> None:
    nodes: list[dict[str, Any]] = []
    outcomes: dict[tuple[str, int], Outcome] = {}
    for i, kind in enumerate(deps):
        more, outs = _dependency(i, kind)
        nodes += more
        outcomes |= outs
    target = {
        "name": "t",
        "dependsOn": [f"d{i}" for i in range(len(deps))],
        "runPolicy": policy.value,
    }
    sim = Simulator(workflow(*nodes, target), outcomes)
    sim.run()

    assert tuple(sim.state.nodes[f"d{i}"].phase for i in range(len(deps))) == deps
    expected = _documented(policy, deps)
    assert sim.state.nodes["t"].phase is expected
    assert len(sim.started("t")) == (1 if expected is NodePhase.SUCCEEDED else 0)
    bad = [(f"d{i}", p) for i, p in enumerate(deps) if p in (NodePhase.FAILED, NodePhase.OMITTED)]
    if expected is NodePhase.OMITTED:
        dep, phase = bad[0]
        assert sim.state.nodes["t"].message == f"not run: dependency {dep!r} {phase.value}"
    if expected is NodePhase.SKIPPED:
        assert (
            sim.state.nodes["t"].message == "not run: runPolicy onFailure and no dependency failed"
        )
    # The run fails iff some node failed; a runPolicy node never rescues it.
    any_failed = any(ns.phase is NodePhase.FAILED for ns in sim.state.nodes.values())
    assert (sim.state.phase is WorkflowPhase.FAILED) == any_failed
    assert sim.state.phase in (WorkflowPhase.FAILED, WorkflowPhase.SUCCEEDED)


# --- failure propagation --------------------------------------------------------------


def test_failure_omits_on_success_chains_but_always_still_runs() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "b", "dependsOn": ["a"]},
        {"name": "c", "dependsOn": ["b"]},
        {"name": "cleanup", "dependsOn": ["c"], "runPolicy": "always"},
        {"name": "after-cleanup", "dependsOn": ["cleanup"]},
        {"name": "alert", "dependsOn": ["c"], "runPolicy": "onFailure"},
        {"name": "side", "dependsOn": []},
    )
    sim = Simulator(wf, {("a", 0): fail("exit 3", exit_code=3)})
    sim.run()
    assert phases(sim.state) == {
        "a": NodePhase.FAILED,
        "b": NodePhase.OMITTED,
        "c": NodePhase.OMITTED,
        "cleanup": NodePhase.SUCCEEDED,
        "after-cleanup": NodePhase.SUCCEEDED,
        "alert": NodePhase.SUCCEEDED,
        "side": NodePhase.SUCCEEDED,
    }
    assert sim.state.nodes["b"].message == "not run: dependency 'a' Failed"
    assert sim.state.nodes["c"].message == "not run: dependency 'b' Omitted"
    assert sim.state.nodes["a"].exit_code == 3
    assert sim.state.phase is WorkflowPhase.FAILED
    assert sim.state.message == "node 'a' failed: exit 3"


def test_the_run_names_the_first_failed_node_in_dag_order_and_counts_the_rest() -> None:
    wf = workflow({"name": "x"}, {"name": "y"}, {"name": "z"})
    # y fails first in time, x later; z succeeds. The message follows the DAG order.
    order = iter(["y", "x", "z"])
    sim = Simulator(
        wf,
        {("x", 0): fail("x broke"), ("y", 0): fail("y broke")},
        choose=lambda running: [t.start.node for t in running].index(next(order)),
    )
    sim.run()
    assert [e.node for e in sim.events] == ["y", "x", "z"]
    assert sim.state.phase is WorkflowPhase.FAILED
    assert sim.state.message == "node 'x' failed: x broke (and 1 more failed nodes)"


def test_a_failure_without_message_reports_the_exit_code() -> None:
    sim = Simulator(workflow({"name": "a"}), {("a", 0): Outcome(succeeded=False, exit_code=2)})
    sim.run()
    assert sim.state.nodes["a"].message == "exit code 2"
    assert sim.state.nodes["a"].exit_code == 2


# --- fan-out ------------------------------------------------------------------------------


def test_fan_out_over_a_literal_list_injects_item_arg() -> None:
    wf = workflow(
        {"name": "f", "forEach": ["de", "fr", "it"], "itemArg": "market", "args": {"mode": "full"}}
    )
    sim = Simulator(wf)
    sim.run()
    assert sim.decisions(ExpandNode) == [ExpandNode("f", ["de", "fr", "it"])]
    assert [(s.index, s.attempt, s.item, s.args) for s in sim.started("f")] == [
        (0, 1, "de", {"mode": "full", "market": "de"}),
        (1, 1, "fr", {"mode": "full", "market": "fr"}),
        (2, 1, "it", {"mode": "full", "market": "it"}),
    ]
    node = sim.state.nodes["f"]
    assert (node.phase, node.total, node.succeeded, node.failed) == (NodePhase.SUCCEEDED, 3, 3, 0)


def test_fan_out_templates_see_item_and_item_index() -> None:
    wf = workflow(
        {
            "name": "f",
            "forEach": [{"id": 7}, {"id": 9}],
            "args": {
                "id": "${{ item.id }}",
                "label": "n${{ itemIndex }}-${{ item.id }}",
                "whole": "${{ item }}",
            },
            "env": [{"name": "IDX", "value": "${{ itemIndex }}"}],
        }
    )
    sim = Simulator(wf)
    sim.run()
    assert [(s.args, s.env) for s in sim.started("f")] == [
        ({"id": 7, "label": "n0-7", "whole": {"id": 7}}, {"IDX": "0"}),
        ({"id": 9, "label": "n1-9", "whole": {"id": 9}}, {"IDX": "1"}),
    ]


def test_command_fan_out_renders_command_and_args_as_text() -> None:
    wf = workflow(
        {
            "name": "f",
            "image": "busybox",
            "command": ["echo", "${{ item }}", "n=${{ item }}"],
            "args": ["${{ itemIndex }}", "${{ item }}"],
            "forEach": [[1, 2], True],
        }
    )
    sim = Simulator(wf)
    sim.run()
    assert [(s.command, s.args) for s in sim.started("f")] == [
        (["echo", "[1,2]", "n=[1,2]"], ["0", "[1,2]"]),
        (["echo", "true", "n=true"], ["1", "true"]),
    ]


def test_fan_out_over_an_upstream_output() -> None:
    wf = workflow(
        {"name": "markets"},
        {
            "name": "each",
            "dependsOn": ["markets"],
            "forEach": "${{ nodes.markets.outputs.ids }}",
            "itemArg": "market",
        },
    )
    sim = Simulator(wf, {("markets", 0): ok(ids=[10, 20, 30])})
    sim.run()
    assert [s.args for s in sim.started("each")] == [{"market": 10}, {"market": 20}, {"market": 30}]
    assert sim.state.nodes["each"].phase is NodePhase.SUCCEEDED


def test_an_empty_fan_out_succeeds_without_items_and_dependents_run() -> None:
    wf = workflow(
        {"name": "a"},
        {
            "name": "each",
            "dependsOn": ["a"],
            "forEach": "${{ nodes.a.outputs.ids }}",
            "itemArg": "i",
        },
        {"name": "after", "dependsOn": ["each"]},
    )
    sim = Simulator(wf, {("a", 0): ok(ids=[])})
    sim.run()
    assert sim.started("each") == []
    assert finish_node(sim, "each") == FinishNode(
        "each", NodePhase.SUCCEEDED, "forEach yielded no items", {}
    )
    assert sim.state.nodes["after"].phase is NodePhase.SUCCEEDED
    assert sim.state.phase is WorkflowPhase.SUCCEEDED


def test_a_fan_out_over_the_item_limit_fails_before_any_item_is_tracked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An upstream output can hold any number of items: past the limit the node fails
    with the limit named, and nothing of the fan-out is held per item."""
    monkeypatch.setattr(planner_module, "MAX_FAN_OUT_ITEMS", 5)
    wf = workflow(
        {"name": "a"},
        {
            "name": "each",
            "dependsOn": ["a"],
            "forEach": "${{ nodes.a.outputs.ids }}",
            "itemArg": "i",
        },
    )
    sim = Simulator(wf, {("a", 0): ok(ids=list(range(6)))})
    sim.run()
    assert sim.started("each") == []
    assert finish_node(sim, "each") == FinishNode(
        "each",
        NodePhase.FAILED,
        "forEach: yielded more than 5 items (limit 5, docs/security.md)",
    )
    assert sim.state.nodes["each"].tasks == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "forEach must yield a list, got int"),
        ({"a": 1}, "forEach must yield a list, got dict"),
        ("abc", "forEach got text that is not a JSON list: 'abc'"),  # a string is read as JSON
        ('{"a": 1}', "forEach got text holding a JSON dict, not a list"),
        (None, "forEach must yield a list, got NoneType"),
    ],
)
def test_a_fan_out_over_a_non_list_fails_the_node(value: Any, message: str) -> None:
    wf = workflow(
        {"name": "a"},
        {
            "name": "each",
            "dependsOn": ["a"],
            "forEach": "${{ nodes.a.outputs.ids }}",
            "itemArg": "i",
        },
        {"name": "after", "dependsOn": ["each"]},
    )
    sim = Simulator(wf, {("a", 0): ok(ids=value)})
    sim.run()
    assert sim.started("each") == []
    assert finish_node(sim, "each") == FinishNode("each", NodePhase.FAILED, message)
    assert sim.state.nodes["after"].phase is NodePhase.OMITTED
    assert sim.state.phase is WorkflowPhase.FAILED


def test_a_fan_out_whose_expression_fails_fails_the_node() -> None:
    wf = workflow(
        {"name": "a"},
        {
            "name": "each",
            "dependsOn": ["a"],
            "forEach": "${{ nodes.a.outputs.ids }}",
            "itemArg": "i",
        },
    )
    sim = Simulator(wf, {("a", 0): ok()})
    sim.run()
    assert finish_node(sim, "each").message == "forEach: 'nodes.a.outputs.ids': no such key 'ids'"


def test_fan_out_outputs_are_aggregated_per_key_in_item_order() -> None:
    wf = workflow(
        {"name": "f", "forEach": ["a", "b", "c"], "itemArg": "x"},
        {"name": "g", "dependsOn": ["f"], "args": {"ys": "${{ nodes.f.outputs.y }}"}},
    )
    outcomes = {("f", 0): ok(y="A"), ("f", 1): ok(y="B", extra=1), ("f", 2): ok(y="C")}
    # Items finish in reverse order; the aggregate still follows item order.
    sim = Simulator(wf, outcomes, choose=lambda running: len(running) - 1)
    sim.run()
    assert [e.index for e in sim.events if e.node == "f"] == [2, 1, 0]
    assert sim.state.nodes["f"].outputs == {"y": ["A", "B", "C"], "extra": [None, 1, None]}
    assert sim.started("g")[0].args == {"ys": ["A", "B", "C"]}


def test_a_render_error_in_one_item_fails_that_item_only() -> None:
    wf = workflow(
        {
            "name": "f",
            "forEach": [{"x": 1}, {}, {"x": 3}],
            "args": {"v": "${{ item.x }}"},
            "failFast": False,
        }
    )
    sim = Simulator(wf)
    sim.run()
    assert [(s.index, s.args) for s in sim.started("f")] == [(0, {"v": 1}), (2, {"v": 3})]
    assert sim.decisions(FailTask) == [FailTask("f", 1, "args: 'item.x': no such key 'x'")]
    node = sim.state.nodes["f"]
    assert (node.succeeded, node.failed) == (2, 1)
    assert node.phase is NodePhase.FAILED
    assert node.message == "1 of 3 items failed; item 1: args: 'item.x': no such key 'x'"


def test_a_render_error_with_fail_fast_stops_further_items() -> None:
    wf = workflow(
        {"name": "f", "forEach": [{"x": 1}, {}, {"x": 3}], "args": {"v": "${{ item.x }}"}}
    )
    sim = Simulator(wf)
    sim.run()
    assert [s.index for s in sim.started("f")] == [0]
    assert sim.state.nodes["f"].message == (
        "1 of 3 items failed; item 1: args: 'item.x': no such key 'x'; 1 items not started"
    )


# --- parallelism --------------------------------------------------------------------------


class RunningCounter:
    """Counts running tasks after every settle, per node and in total."""

    def __init__(self) -> None:
        self.peak_total = 0
        self.peak: dict[str, int] = {}

    def __call__(self, sim: Simulator) -> None:
        per_node: dict[str, int] = {}
        for node, _ in sim.running:
            per_node[node] = per_node.get(node, 0) + 1
        assert sim.state.running == len(sim.running)
        for node, n in per_node.items():
            assert sim.state.nodes[node].running == n
            self.peak[node] = max(self.peak.get(node, 0), n)
        self.peak_total = max(self.peak_total, len(sim.running))


@pytest.mark.parametrize(
    ("node_limit", "wf_limit", "expected"), [(3, None, 3), (5, 2, 2), (2, 4, 2), (None, 4, 4)]
)
def test_parallelism_is_never_exceeded_and_is_used(
    node_limit: int | None, wf_limit: int | None, expected: int
) -> None:
    fan: dict[str, Any] = {"name": "f", "forEach": list(range(10)), "itemArg": "i"}
    if node_limit is not None:
        fan["parallelism"] = node_limit
    spec: dict[str, Any] = {} if wf_limit is None else {"parallelism": wf_limit}
    counter = RunningCounter()
    sim = Simulator(workflow(fan, **spec), choose=lambda running: len(running) // 2)
    sim.checks.append(counter)
    sim.run()
    assert counter.peak["f"] == expected
    assert counter.peak_total == expected
    assert sorted(s.index for s in sim.started("f")) == list(range(10))
    # Items start in index order.
    assert [s.index for s in sim.started("f")] == list(range(10))


def test_workflow_parallelism_is_shared_across_nodes() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "b"},
        {"name": "f", "forEach": list(range(6)), "itemArg": "i", "parallelism": 3},
        {"name": "g", "forEach": list(range(6)), "itemArg": "i"},
        parallelism=4,
    )
    counter = RunningCounter()
    sim = Simulator(wf)
    sim.checks.append(counter)
    sim.run()
    assert counter.peak_total == 4
    assert counter.peak["f"] <= 3
    assert sim.state.phase is WorkflowPhase.SUCCEEDED
    assert len(sim.starts) == 14


# --- retries ------------------------------------------------------------------------------


def test_retries_back_off_exponentially_up_to_the_maximum() -> None:
    retries = {"limit": 4, "backoffSeconds": 10, "factor": 2, "maxBackoffSeconds": 25}
    wf = workflow({"name": "a", "retries": retries})
    sim = Simulator(wf, {("a", 0): [FAIL, FAIL, FAIL, FAIL, OK]})
    sim.run()

    starts = sim.started("a")
    assert [s.attempt for s in starts] == [1, 2, 3, 4, 5]
    retry_log = [(t, d) for t, d in sim.log if isinstance(d, RetryTask)]
    failed_at = [e.at for e in sim.events if not e.succeeded]
    assert len(retry_log) == 4
    for n, ((decided_at, retry), finished_at) in enumerate(
        zip(retry_log, failed_at, strict=True), 1
    ):
        assert retry.at == finished_at + min(10 * 2 ** (n - 1), 25)
        assert decided_at == finished_at
    assert [retry.at for _, retry in retry_log] == [t for t, s in sim.starts][1:]
    assert [retry.at - t for (t, retry) in retry_log] == [10, 20, 25, 25]
    node = sim.state.nodes["a"]
    assert (node.phase, node.attempts) == (NodePhase.SUCCEEDED, 5)


def test_a_retry_is_timed_from_the_reported_end_not_from_when_the_planner_looked() -> None:
    wf = workflow({"name": "a", "retries": {"limit": 1, "backoffSeconds": 30}})
    for clock in (0.0, T0):
        state = RunState.new(list(wf.order))
        advance(wf, state, clock)
        event = TaskFinished("a", 0, 1, succeeded=False, at=clock, message="boom")
        assert record_finished(state, event)
        # The executor only gets round to planning 12 s after the attempt ended.
        result = advance(wf, state, clock + 12)
        assert result.decisions == [RetryTask("a", 0, clock + 30)]
        assert result.wake_at == clock + 30


def test_retries_exhausted_fail_the_node_and_say_how_many_attempts() -> None:
    wf = workflow({"name": "a", "retries": {"limit": 2, "backoffSeconds": 0}})
    sim = Simulator(wf, {("a", 0): fail("boom", exit_code=4)})
    sim.run()
    assert len(sim.started("a")) == 3
    assert sim.decisions(FailTask) == [FailTask("a", 0, "boom (after 3 attempts)", 4)]
    node = sim.state.nodes["a"]
    assert (node.phase, node.message, node.attempts, node.exit_code) == (
        NodePhase.FAILED,
        "boom (after 3 attempts)",
        3,
        4,
    )


def test_a_non_retriable_failure_is_not_retried() -> None:
    wf = workflow({"name": "a", "retries": {"limit": 5, "backoffSeconds": 1}})
    sim = Simulator(wf, {("a", 0): fail("unknown job 'a'", retriable=False)})
    sim.run()
    assert len(sim.started("a")) == 1
    assert sim.decisions(RetryTask) == []
    assert sim.state.nodes["a"].message == "unknown job 'a'"


def test_retry_policy_comes_from_defaults_unless_the_node_sets_its_own() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "b", "retries": {"limit": 0}},
        defaults={"retries": {"limit": 1, "backoffSeconds": 3}},
    )
    sim = Simulator(wf, {("a", 0): FAIL, ("b", 0): FAIL})
    sim.run()
    assert len(sim.started("a")) == 2
    assert len(sim.started("b")) == 1


def test_fan_out_items_retry_independently() -> None:
    wf = workflow(
        {
            "name": "f",
            "forEach": [0, 1, 2],
            "itemArg": "i",
            "retries": {"limit": 1, "backoffSeconds": 5},
        }
    )
    sim = Simulator(wf, {("f", 1): [FAIL, ok(done=True)]})
    sim.run()
    assert sorted((s.index, s.attempt) for s in sim.started("f")) == [
        (0, 1),
        (1, 1),
        (1, 2),
        (2, 1),
    ]
    assert sim.state.nodes["f"].phase is NodePhase.SUCCEEDED
    assert sim.state.nodes["f"].outputs == {"done": [None, True, None]}


# --- failFast -----------------------------------------------------------------------------


def test_fail_fast_starts_no_further_items_after_an_item_failed_for_good() -> None:
    wf = workflow({"name": "f", "forEach": list(range(6)), "itemArg": "i", "parallelism": 2})
    sim = Simulator(wf, {("f", 0): FAIL})
    sim.run()
    assert [s.index for s in sim.started("f")] == [0, 1]
    node = sim.state.nodes["f"]
    assert (node.succeeded, node.failed) == (1, 1)
    assert node.message == "1 of 6 items failed; item 0: boom; 4 items not started"
    assert sim.state.phase is WorkflowPhase.FAILED


def test_fail_fast_after_retries_exhausted_starts_no_further_items() -> None:
    retries = {"limit": 1, "backoffSeconds": 0}
    wf = workflow(
        {
            "name": "f",
            "forEach": list(range(4)),
            "itemArg": "i",
            "parallelism": 1,
            "retries": retries,
        }
    )
    sim = Simulator(wf, {("f", 0): FAIL})
    sim.run()
    # A retry waiting for its time holds no slot, so item 1 starts meanwhile; the due retry
    # goes first when the slot frees; once item 0 failed for good nothing else starts.
    assert [(s.index, s.attempt) for s in sim.started("f")] == [(0, 1), (1, 1), (0, 2)]
    assert sim.state.nodes["f"].message == (
        "1 of 4 items failed; item 0: boom (after 2 attempts); 2 items not started"
    )


def test_fail_fast_false_runs_every_item_and_counts_failures() -> None:
    wf = workflow(
        {
            "name": "f",
            "forEach": list(range(6)),
            "itemArg": "i",
            "parallelism": 2,
            "failFast": False,
        },
        {"name": "after", "dependsOn": ["f"]},
    )
    sim = Simulator(wf, {("f", 1): fail("bad 1"), ("f", 4): fail("bad 4"), ("f", 0): ok(v=0)})
    sim.run()
    assert [s.index for s in sim.started("f")] == list(range(6))
    node = sim.state.nodes["f"]
    assert (node.succeeded, node.failed) == (4, 2)
    assert node.phase is NodePhase.FAILED
    assert node.message == "2 of 6 items failed; item 1: bad 1"
    assert node.outputs == {"v": [0, None, None, None, None, None]}
    assert sim.state.nodes["after"].phase is NodePhase.OMITTED


# --- timeouts -----------------------------------------------------------------------------


def test_a_timed_out_attempt_is_killed_and_retried() -> None:
    wf = workflow({"name": "a", "timeoutSeconds": 30, "retries": {"limit": 1, "backoffSeconds": 5}})
    sim = Simulator(wf, {("a", 0): [HANG, OK]})
    first = sim.settle()
    assert first.wake_at == T0 + 30
    assert first.decisions[-1] == StartTask(
        node="a", index=0, attempt=1, args={}, timeout_seconds=30
    )
    sim.run()
    assert (T0 + 30, KillTask("a", 0, 1, "timed out after 30s")) in sim.log
    assert (T0 + 30, RetryTask("a", 0, T0 + 35)) in sim.log
    [_, second] = sim.started("a")
    assert second.attempt == 2
    assert [t for t, s in sim.starts] == [T0, T0 + 35]
    assert sim.state.nodes["a"].phase is NodePhase.SUCCEEDED


def test_a_timeout_without_retries_fails_the_node_saying_why() -> None:
    wf = workflow({"name": "a"}, defaults={"timeoutSeconds": 2.5})
    sim = Simulator(wf, {("a", 0): HANG})
    sim.run()
    assert sim.decisions(KillTask) == [KillTask("a", 0, 1, "timed out after 2.5s")]
    assert sim.state.nodes["a"].message == "timed out after 2.5s"
    assert sim.state.message == "node 'a' failed: timed out after 2.5s"


def test_an_attempt_that_ends_before_its_timeout_is_not_killed() -> None:
    wf = workflow({"name": "a", "timeoutSeconds": 30})
    sim = Simulator(wf, tick=29)
    sim.run()
    assert sim.decisions(KillTask) == []
    assert sim.state.phase is WorkflowPhase.SUCCEEDED


def test_a_killed_attempt_that_still_reports_success_counts_as_succeeded() -> None:
    wf = workflow({"name": "a", "timeoutSeconds": 10})
    state = RunState.new(list(wf.order))
    advance(wf, state, T0)
    assert advance(wf, state, T0 + 10).decisions == [KillTask("a", 0, 1, "timed out after 10s")]
    # Asking again does not kill twice.
    assert advance(wf, state, T0 + 11).decisions == []
    assert record_finished(state, TaskFinished("a", 0, 1, succeeded=True, at=T0 + 11))
    advance(wf, state, T0 + 11)
    assert state.phase is WorkflowPhase.SUCCEEDED


# --- workflow deadline and stop ---------------------------------------------------------

DEADLINE = "workflow exceeded activeDeadlineSeconds (100s)"


def test_the_workflow_deadline_shuts_the_run_down() -> None:
    wf = workflow(
        {"name": "slow"},
        {"name": "next", "dependsOn": ["slow"]},
        {
            "name": "f",
            "forEach": [0, 1, 2],
            "itemArg": "i",
            "parallelism": 1,
            "retries": {"limit": 3, "backoffSeconds": 1000},
        },
        {"name": "done"},
        activeDeadlineSeconds=100,
    )
    sim = Simulator(wf, {("slow", 0): HANG, ("f", 0): FAIL})
    assert sim.settle().wake_at == T0 + 100
    sim.run()
    at_deadline = [d for t, d in sim.log if t == T0 + 100]
    assert at_deadline[0] == BeginShutdown(WorkflowPhase.FAILED, DEADLINE)
    assert KillTask("slow", 0, 1, DEADLINE) in at_deadline
    assert FailTask("f", 0, DEADLINE, exit_code=1) in at_deadline
    assert FinishNode("next", NodePhase.OMITTED, DEADLINE) in at_deadline
    assert at_deadline[-1] == FinishWorkflow(WorkflowPhase.FAILED, DEADLINE)
    assert phases(sim.state) == {
        "slow": NodePhase.FAILED,
        "next": NodePhase.OMITTED,
        "f": NodePhase.FAILED,
        "done": NodePhase.SUCCEEDED,
    }
    assert sim.state.nodes["slow"].message == DEADLINE
    # A waiting retry holds no parallelism slot: items 1 and 2 ran meanwhile.
    assert [(s.index, s.attempt) for s in sim.started("f")] == [(0, 1), (1, 1), (2, 1)]
    assert sim.state.nodes["f"].message == f"1 of 3 items failed; item 0: {DEADLINE}"
    assert (sim.state.phase, sim.state.message, sim.state.finished_at) == (
        WorkflowPhase.FAILED,
        DEADLINE,
        T0 + 100,
    )
    assert sim.state.running == 0


def test_a_stop_request_kills_running_work_and_ends_stopped() -> None:
    wf = workflow(
        {"name": "a"},
        {"name": "b", "forEach": [0, 1, 2], "itemArg": "i", "parallelism": 2},
        {"name": "c", "dependsOn": ["a"]},
    )
    sim = Simulator(wf)
    sim.settle()
    sim.complete("b", 0)
    sim.settle()
    assert sorted(sim.running) == [("a", 0), ("b", 1), ("b", 2)]
    sim.state.stop_requested = "stopped by alice"
    sim.run()
    reason = "stopped by alice"
    assert sim.decisions(BeginShutdown) == [BeginShutdown(WorkflowPhase.STOPPED, reason)]
    assert sorted((k.node, k.index, k.reason) for k in sim.decisions(KillTask)) == [
        ("a", 0, reason),
        ("b", 1, reason),
        ("b", 2, reason),
    ]
    assert phases(sim.state) == {
        "a": NodePhase.FAILED,
        "b": NodePhase.FAILED,
        "c": NodePhase.OMITTED,
    }
    assert sim.state.nodes["c"].message == reason
    assert (sim.state.phase, sim.state.message) == (WorkflowPhase.STOPPED, reason)


def test_a_stop_before_anything_ran_starts_nothing() -> None:
    wf = workflow({"name": "a"}, {"name": "b", "dependsOn": ["a"]})
    state = RunState.new(list(wf.order))
    state.stop_requested = "cancelled"
    result = advance(wf, state, T0)
    assert not [d for d in result.decisions if isinstance(d, StartTask | ExpandNode)]
    assert state.phase is WorkflowPhase.STOPPED
    assert phases(state) == {"a": NodePhase.OMITTED, "b": NodePhase.OMITTED}


def test_nothing_new_starts_once_a_shutdown_began() -> None:
    wf = workflow({"name": "a"}, {"name": "b", "dependsOn": ["a"]}, activeDeadlineSeconds=10)
    state = RunState.new(list(wf.order))
    advance(wf, state, T0)
    result = advance(wf, state, T0 + 10)
    assert result.decisions[:2] == [
        BeginShutdown(WorkflowPhase.FAILED, "workflow exceeded activeDeadlineSeconds (10s)"),
        KillTask("a", 0, 1, "workflow exceeded activeDeadlineSeconds (10s)"),
    ]
    # The killed attempt reports success after all; b still does not start.
    assert record_finished(state, TaskFinished("a", 0, 1, succeeded=True, at=T0 + 11))
    after = advance(wf, state, T0 + 11)
    assert not [d for d in after.decisions if isinstance(d, StartTask)]
    assert state.nodes["a"].phase is NodePhase.SUCCEEDED
    assert state.nodes["b"].phase is NodePhase.OMITTED
    assert state.phase is WorkflowPhase.FAILED


# --- executor events ---------------------------------------------------------------------


def test_duplicate_and_stale_finish_events_are_ignored() -> None:
    wf = workflow({"name": "a", "retries": {"limit": 2, "backoffSeconds": 10}})
    state = RunState.new(list(wf.order))
    advance(wf, state, T0)
    first = TaskFinished("a", 0, 1, succeeded=False, at=T0 + 1, message="boom")
    assert record_finished(state, first)
    assert not record_finished(state, first)  # the same end seen twice
    assert advance(wf, state, T0 + 1).decisions == [RetryTask("a", 0, T0 + 11)]
    assert state.nodes["a"].tasks[0].phase is TaskPhase.WAITING
    assert not record_finished(state, first)  # still stale while waiting
    advance(wf, state, T0 + 11)
    assert state.nodes["a"].tasks[0].attempt == 2

    late = TaskFinished("a", 0, 1, succeeded=True, at=T0 + 12)
    assert not record_finished(state, late)  # an earlier attempt's late report
    assert not record_finished(state, TaskFinished("zz", 0, 1, succeeded=True, at=T0))
    assert not record_finished(state, TaskFinished("a", 5, 1, succeeded=True, at=T0))
    assert not record_finished(state, TaskFinished("a", 0, 3, succeeded=True, at=T0))
    assert (state.running, state.nodes["a"].running, state.nodes["a"].succeeded) == (1, 1, 0)

    done = TaskFinished("a", 0, 2, succeeded=True, at=T0 + 13, outputs={"k": 1})
    assert record_finished(state, done)
    assert not record_finished(state, done)
    advance(wf, state, T0 + 13)
    assert state.nodes["a"].outputs == {"k": 1}
    assert (state.phase, state.running) == (WorkflowPhase.SUCCEEDED, 0)


# --- progress and wake times ----------------------------------------------------------


def test_progress_counts_finished_nodes() -> None:
    wf = workflow({"name": "a"}, {"name": "b", "dependsOn": ["a"]}, {"name": "c", "when": "false"})
    sim = Simulator(wf)
    assert sim.state.progress == "0/3"
    sim.settle()
    assert sim.state.progress == "1/3"  # c was skipped at once
    sim.complete("a")
    sim.settle()
    assert sim.state.progress == "2/3"
    sim.run()
    assert sim.state.progress == "3/3"


def test_wake_at_is_the_earliest_timer() -> None:
    wf = workflow(
        {"name": "a", "timeoutSeconds": 50},
        {"name": "b", "retries": {"limit": 1, "backoffSeconds": 20}},
        {"name": "c"},
        activeDeadlineSeconds=300,
    )
    state = RunState.new(list(wf.order))
    assert advance(wf, state, T0).wake_at == T0 + 50
    record_finished(state, TaskFinished("b", 0, 1, succeeded=False, at=T0 + 1))
    assert advance(wf, state, T0 + 1).wake_at == T0 + 21
    record_finished(state, TaskFinished("a", 0, 1, succeeded=True, at=T0 + 2))
    assert advance(wf, state, T0 + 2).wake_at == T0 + 21
    assert advance(wf, state, T0 + 21).wake_at == T0 + 300  # b's retry started
    record_finished(state, TaskFinished("b", 0, 2, succeeded=True, at=T0 + 22))
    record_finished(state, TaskFinished("c", 0, 1, succeeded=True, at=T0 + 22))
    final = advance(wf, state, T0 + 22)
    assert final.wake_at is None
    assert state.phase is WorkflowPhase.SUCCEEDED


def test_without_timers_there_is_no_wake() -> None:
    wf = workflow({"name": "a"})
    state = RunState.new(list(wf.order))
    assert advance(wf, state, T0).wake_at is None


def stop_with_an_always_node() -> tuple[Any, Simulator]:
    wf = workflow(
        {"name": "a"},
        {"name": "b", "dependsOn": ["a"]},
        {"name": "notify", "dependsOn": ["b"], "runPolicy": "always"},
    )
    sim = Simulator(wf)
    sim.settle()
    assert sorted(sim.running) == [("a", 0)]
    return wf, sim


def test_a_stop_still_runs_always_nodes_once_their_dependencies_end() -> None:
    _, sim = stop_with_an_always_node()
    sim.state.stop_requested = "stopped by alice"
    sim.run()
    assert phases(sim.state) == {
        "a": NodePhase.FAILED,
        "b": NodePhase.OMITTED,
        "notify": NodePhase.SUCCEEDED,
    }
    assert [s.node for s in sim.decisions(StartTask)] == ["a", "notify"]
    assert (sim.state.phase, sim.state.message) == (WorkflowPhase.STOPPED, "stopped by alice")


def test_a_terminate_runs_nothing_more() -> None:
    _, sim = stop_with_an_always_node()
    sim.state.stop_requested = "terminated by alice"
    sim.state.terminate = True
    sim.run()
    assert phases(sim.state) == {
        "a": NodePhase.FAILED,
        "b": NodePhase.OMITTED,
        "notify": NodePhase.OMITTED,
    }
    assert [s.node for s in sim.decisions(StartTask)] == ["a"]
    assert sim.state.phase is WorkflowPhase.STOPPED


def test_a_running_always_node_is_not_killed_by_a_stop() -> None:
    wf = workflow({"name": "notify", "runPolicy": "always"}, {"name": "other"})
    sim = Simulator(wf)
    sim.settle()
    sim.state.stop_requested = "stopped"
    sim.run()
    assert [(k.node, k.index) for k in sim.decisions(KillTask)] == [("other", 0)]
    assert phases(sim.state) == {"notify": NodePhase.SUCCEEDED, "other": NodePhase.FAILED}


def test_a_fan_out_over_a_printed_json_list_runs_one_item_per_element() -> None:
    # Argo's withParam over a step's result: the string `outputs.result` read as a list.
    wf = workflow(
        {"name": "a"},
        {"name": "each", "dependsOn": ["a"], "forEach": "${{ nodes.a.outputs.result }}",
         "itemArg": "i"},
    )  # fmt: skip
    sim = Simulator(wf, {("a", 0): ok(result='[3, "four", {"n": 5}]\n')})
    sim.run()
    assert [s.args for s in sim.started("each")] == [{"i": 3}, {"i": "four"}, {"i": {"n": 5}}]
