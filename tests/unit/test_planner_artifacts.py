"""The planner's side of artifacts: offloaded `forEach` lists and stored fan-out aggregates.

The planner does no I/O; it asks for a list to be read (`LoadItems`) or aggregated outputs
to be stored (`StoreOutputs`) and waits for the executor's report. These tests play the
executor by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import ExpandNode, FinishNode, LoadItems, StartTask, StoreOutputs
from shoal.core.planner import NeedItems, advance, resolve_items
from shoal.core.state import (
    ItemsLoaded,
    OutputsStored,
    RunState,
    TaskFinished,
    record_finished,
    record_items_loaded,
    record_outputs_stored,
)
from tests.unit.simulator import workflow

T0 = 1000.0
LIST_KEY = "ns/wf/u/a/-/1/output.rows"
LIST_REF: dict[str, Any] = {
    "$artifact": {
        "key": "ns/wf/u/a/-/1/output.rows",
        "size": 9,
        "sha256": "00",
        "format": "jsonl",
        "count": 3,
    }
}


def fan_out_over_a() -> CompiledWorkflow:
    return workflow(
        {"name": "a", "job": "produce"},
        {
            "name": "b",
            "job": "consume",
            "dependsOn": ["a"],
            "forEach": "${{ nodes.a.outputs.rows }}",
            "args": {"row": "${{ item }}"},
        },
    )


def finish(state: RunState, node: str, index: int, now: float, **outputs: Any) -> None:
    attempt = state.nodes[node].tasks[index].attempt
    assert record_finished(state, TaskFinished(node, index, attempt, True, now, 0, outputs))


def test_a_for_each_over_an_offloaded_list_reads_it_once_then_fans_out() -> None:
    wf = fan_out_over_a()
    state = RunState.new(list(wf.order))
    advance(wf, state, T0)
    finish(state, "a", 0, T0 + 1, rows=LIST_REF)

    step = advance(wf, state, T0 + 1)
    assert [d for d in step.decisions if isinstance(d, LoadItems)] == [LoadItems("b", LIST_REF)]
    assert state.nodes["b"].phase is NodePhase.PENDING
    assert step.wake_at is None  # waits for the executor's report, not for a time
    assert not [d for d in advance(wf, state, T0 + 2).decisions if isinstance(d, LoadItems)]

    record_items_loaded(state, ItemsLoaded(LIST_KEY, ["x", "y", "z"]))
    step = advance(wf, state, T0 + 3)

    key = LIST_KEY
    assert ExpandNode("b", ["x", "y", "z"], key) in step.decisions
    starts = [d for d in step.decisions if isinstance(d, StartTask)]
    assert [d.args for d in starts] == [{"row": "x"}, {"row": "y"}, {"row": "z"}]
    assert state.loaded == {}  # the list now lives in the node's items only


def test_an_unreadable_list_fails_the_node_with_the_reason() -> None:
    wf = fan_out_over_a()
    state = RunState.new(list(wf.order))
    advance(wf, state, T0)
    finish(state, "a", 0, T0 + 1, rows=LIST_REF)
    advance(wf, state, T0 + 1)

    key = LIST_KEY
    record_items_loaded(state, ItemsLoaded(key, error=f"artifact {key!r} is corrupted"))
    step = advance(wf, state, T0 + 2)

    [done] = [d for d in step.decisions if isinstance(d, FinishNode) and d.node == "b"]
    assert done.phase is NodePhase.FAILED
    assert "forEach: cannot read the list" in done.message
    assert "corrupted" in done.message
    assert state.phase is WorkflowPhase.FAILED


def test_resolve_items_after_a_restart_asks_for_the_list_first() -> None:
    wf = fan_out_over_a()
    state = RunState.new(list(wf.order))
    state.nodes["a"].phase = NodePhase.SUCCEEDED
    state.nodes["a"].outputs = {"rows": LIST_REF}

    with pytest.raises(NeedItems) as need:
        resolve_items(wf, state, "b")
    assert need.value.reference == LIST_REF
    state.loaded[LIST_KEY] = [1, 2, 3]
    assert resolve_items(wf, state, "b") == [1, 2, 3]


def wide_fan_out(offload_bytes: int | None) -> CompiledWorkflow:
    wf = workflow(
        {"name": "f", "job": "square", "forEach": list(range(50)), "args": {"n": "${{ item }}"}},
        {
            "name": "g",
            "job": "total",
            "dependsOn": ["f"],
            "args": {"all": "${{ nodes.f.outputs.sq }}"},
        },
    )
    return wf.replace(offload_bytes=offload_bytes)


def run_fan_out(wf: CompiledWorkflow, state: RunState) -> list[Any]:
    decisions = list(advance(wf, state, T0).decisions)
    for i in range(50):
        finish(state, "f", i, T0 + 1, sq=i * i, tag="t")
        decisions += advance(wf, state, T0 + 1).decisions
    return decisions


def test_large_aggregated_outputs_are_stored_before_the_node_finishes() -> None:
    wf = wide_fan_out(offload_bytes=64)
    state = RunState.new(list(wf.order))
    decisions = run_fan_out(wf, state)

    # `sq` (50 numbers) is over 64 bytes; `tag` (50 x "t") is 251 bytes too, both go.
    assert StoreOutputs("f", ("sq", "tag")) in decisions
    assert state.nodes["f"].phase is NodePhase.RUNNING
    assert not [d for d in advance(wf, state, T0 + 2).decisions if isinstance(d, StoreOutputs)]

    refs = {"sq": {"$artifact": {"key": "k1"}}, "tag": {"$artifact": {"key": "k2"}}}
    record_outputs_stored(state, OutputsStored("f", refs))
    step = advance(wf, state, T0 + 3)

    [done] = [d for d in step.decisions if isinstance(d, FinishNode) and d.node == "f"]
    assert done.phase is NodePhase.SUCCEEDED
    assert done.outputs == refs
    [start_g] = [d for d in step.decisions if isinstance(d, StartTask) and d.node == "g"]
    assert start_g.args == {"all": refs["sq"]}  # downstream gets the reference, never the list


def test_small_aggregates_and_runs_without_a_store_stay_inline() -> None:
    for offload_bytes in (None, 10_000):
        wf = wide_fan_out(offload_bytes)
        state = RunState.new(list(wf.order))
        decisions = run_fan_out(wf, state)
        assert not [d for d in decisions if isinstance(d, StoreOutputs)]
        [done] = [d for d in decisions if isinstance(d, FinishNode) and d.node == "f"]
        assert done.outputs["sq"] == [i * i for i in range(50)]


def test_a_failed_store_fails_the_node_with_the_reason() -> None:
    wf = wide_fan_out(offload_bytes=64)
    state = RunState.new(list(wf.order))
    run_fan_out(wf, state)

    record_outputs_stored(state, OutputsStored("f", error="cannot reach S3 endpoint"))
    step = advance(wf, state, T0 + 2)

    [done] = [d for d in step.decisions if isinstance(d, FinishNode) and d.node == "f"]
    assert done.phase is NodePhase.FAILED
    assert done.message == "cannot store the aggregated outputs: cannot reach S3 endpoint"
    assert state.nodes["g"].phase is NodePhase.OMITTED
