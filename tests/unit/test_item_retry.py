"""Item-level retry: a retried fan-out runs only the items that did not succeed and keeps
the others' outputs (shoal.core.retry, core/kept_items, core/item_ranges, kube/status).

The runs are the simulator's; between them the status goes through exactly what the
operator and `shoal retry` do with it: rendered, merge-patched with the retry patch, and
read back by `rebuild_state`, also after a restart in the middle of the retried run.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import StartTask
from shoal.core.item_ranges import MAX_RANGES_CHARS, format_ranges, parse_ranges
from shoal.core.planner import NeedItems
from shoal.core.retry import items_to_keep, nodes_to_retry, retry_patch
from shoal.core.state import RunState
from shoal.core.status_reader import read_status
from shoal.kube.status import rebuild_state, render_status
from tests.unit.restart import cut, report_ended
from tests.unit.simulator import Outcome, Simulator, fail, ok, workflow

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
LATER = NOW.timestamp() + 1
PROPERTIES = settings(
    max_examples=int(os.environ.get("SHOAL_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def merged(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`doc` after a JSON merge patch (RFC 7386), as the API server applies it."""
    out = dict(doc)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def fan_out(n: int, **fan: Any) -> CompiledWorkflow:
    """`up` feeds a fan-out `f` over n items, whose `sq` list `g` sums up."""
    return workflow(
        {"name": "up", "job": "up"},
        {
            "name": "f",
            "job": "square",
            "dependsOn": ["up"],
            "forEach": list(range(n)),
            "args": {"n": "${{ item }}"},
            **fan,
        },
        {
            "name": "g",
            "job": "total",
            "dependsOn": ["f"],
            "args": {"all": "${{ nodes.f.outputs }}"},
        },
    )


def outcome(failing: frozenset[int]) -> Any:
    def decide(start: StartTask) -> Outcome:
        if start.node == "f" and start.index in failing:
            return fail(f"item {start.index} broke")
        if start.node == "f":
            i = int(start.args["n"])  # odd items leave out `tag`: keys are a union
            return ok(sq=i * i, tag=f"t{i}") if i % 2 == 0 else ok(sq=i * i)
        if start.node == "g":
            return ok(seen=start.args["all"])
        return ok(v=1)

    return decide


def deps_of(wf: CompiledWorkflow) -> dict[str, list[str]]:
    return {name: list(node.deps) for name, node in wf.nodes.items()}


def reopen(wf: CompiledWorkflow, status: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The status after `shoal retry`'s patch, and the nodes it reset."""
    typed = read_status(status)
    policies = {name: node.run_policy.value for name, node in wf.nodes.items()}
    reset = nodes_to_retry(typed, wf.order, policies)
    patch = retry_patch(typed, wf.order, reset, NOW, deps=deps_of(wf))
    return merged(status, patch["status"]), reset


def resume(wf: CompiledWorkflow, state: RunState, failing: frozenset[int], at: float) -> Simulator:
    sim = Simulator(wf, outcome(failing), start=at)
    sim.state = state
    return sim


def succeeded_items(sim: Simulator, node: str) -> set[int]:
    return {e.index for e in sim.events if e.node == node and e.succeeded}


@PROPERTIES
@given(
    n=st.integers(1, 12),
    failing=st.frozensets(st.integers(0, 11)),
    fail_fast=st.booleans(),
    parallelism=st.sampled_from([1, 2, None]),
    restart_after=st.none() | st.integers(0, 6),
)
def test_retry_then_success_gives_the_all_success_outputs_running_only_what_failed(
    n: int,
    failing: frozenset[int],
    fail_fast: bool,
    parallelism: int | None,
    restart_after: int | None,
) -> None:
    fan = {"failFast": fail_fast} | ({"parallelism": parallelism} if parallelism else {})
    wf = fan_out(n, **fan)
    clean = Simulator(wf, outcome(frozenset()))
    clean.run()
    first = Simulator(wf, outcome(failing))
    first.run()
    kept = succeeded_items(first, "f")

    status, _ = reopen(wf, render_status(wf, first.state))
    second = resume(wf, rebuild_state(wf, status, []), frozenset(), LATER)
    if restart_after is not None:  # the operator restarts in the middle of the retry
        for _ in range(restart_after):
            if not second.step():
                break
        at = cut(second, merged(status, render_status(wf, second.state)))
        again = resume(wf, rebuild_state(wf, at.status, at.jobs), frozenset(), at.now)
        live = {(r.start.node, r.start.index, r.start.attempt): r for r in at.running}
        again.running = {(r.start.node, r.start.index): r for r in at.running}
        again.events = [*second.events, *report_ended(again.state, at, live)]
        again.starts = list(second.starts)
        second = again
    final = second.run()

    assert final.phase is (WorkflowPhase.SUCCEEDED if failing & set(range(n)) else final.phase)
    assert final.nodes["f"].outputs == clean.state.nodes["f"].outputs
    assert final.nodes["g"].outputs == clean.state.nodes["g"].outputs
    rerun = [s.index for s in second.started("f")]
    if failing & set(range(n)):
        assert sorted(rerun) == sorted(set(range(n)) - kept)  # each once, kept ones never
        assert second.started("up") == []
    assert final.nodes["f"].succeeded_items == (f"0-{n - 1}" if n > 1 else "0")


def failed_first(n: int, failing: set[int], **fan: Any) -> tuple[CompiledWorkflow, Simulator]:
    wf = fan_out(n, failFast=False, **fan)
    sim = Simulator(wf, outcome(frozenset(failing)))
    sim.run()
    return wf, sim


def test_the_status_records_succeeded_items_as_ranges_and_the_patch_keeps_them() -> None:
    wf, first = failed_first(5, {1, 3})
    status = render_status(wf, first.state)
    entry = status["nodes"]["f"]
    assert entry["phase"] == "Failed"
    assert entry["succeededItems"] == "0,2,4"
    assert entry["outputs"]["sq"] == [0, None, 4, None, 16]

    reopened, reset = reopen(wf, status)
    assert reset == ["f", "g"]
    f = reopened["nodes"]["f"]
    assert f == {"phase": "Pending", "outputs": entry["outputs"], "succeededItems": "0,2,4"}
    assert reopened["nodes"]["g"] == {"phase": "Pending"}


def test_the_reopened_fan_out_runs_only_its_failed_items() -> None:
    wf, first = failed_first(5, {1, 3})
    status, _ = reopen(wf, render_status(wf, first.state))
    state = rebuild_state(wf, status, [])
    f = state.nodes["f"]
    assert (f.phase, f.succeeded, f.attempts) == (NodePhase.RUNNING, 3, 0)
    retried = resume(wf, state, frozenset(), LATER)
    retried.settle()
    items = render_status(wf, retried.state)["nodes"]["f"]["items"]
    assert (items["succeeded"], items["running"], items["pending"]) == (3, 2, 0)
    retried.run()
    assert [(s.index, s.attempt) for s in retried.started("f")] == [(1, 1), (3, 1)]
    assert retried.state.nodes["f"].outputs["sq"] == [0, 1, 4, 9, 16]
    assert retried.state.nodes["f"].attempts == 2


def test_a_fan_out_whose_upstream_runs_again_runs_every_item() -> None:
    wf = fan_out(4, failFast=False, runPolicy="always")
    first = Simulator(wf, {("up", 0): fail(), ("f", 2): fail()})
    first.run()
    status = render_status(wf, first.state)
    assert status["nodes"]["f"]["succeededItems"] == "0-1,3"
    typed = read_status(status)
    assert items_to_keep(typed, ["up", "f", "g"], deps_of(wf)) == {}
    reopened, reset = reopen(wf, status)
    assert reset == ["up", "f", "g"]
    assert reopened["nodes"]["f"] == {"phase": "Pending"}  # what `up` gives may change

    retried = resume(wf, rebuild_state(wf, reopened, []), frozenset(), LATER)
    retried.run()
    assert sorted(s.index for s in retried.started("f")) == [0, 1, 2, 3]


def test_without_dependencies_given_the_patch_keeps_no_items() -> None:
    wf, first = failed_first(3, {1})
    typed = read_status(render_status(wf, first.state))
    patch = retry_patch(typed, wf.order, ["f", "g"], NOW)
    assert patch["status"]["nodes"]["f"]["outputs"] is None


@pytest.mark.parametrize("edited", ["0-9", "2,0", "0-", "x", "1-0", "٣"])
def test_a_record_that_does_not_fit_the_items_runs_every_item(edited: str) -> None:
    wf, first = failed_first(3, {1})
    status, _ = reopen(wf, render_status(wf, first.state))
    status["nodes"]["f"]["succeededItems"] = edited
    retried = resume(wf, rebuild_state(wf, status, []), frozenset(), LATER)
    retried.run()
    assert sorted(s.index for s in retried.started("f")) == [0, 1, 2]
    assert retried.state.nodes["f"].outputs["sq"] == [0, 1, 4]


def test_offloaded_outputs_are_read_back_before_the_kept_items_are_restored() -> None:
    wf, first = failed_first(4, {2})
    status, _ = reopen(wf, render_status(wf, first.state))
    column = status["nodes"]["f"]["outputs"]["sq"]
    ref = {
        "$artifact": {"key": "ns/wf/uid/f/output.sq", "size": 9, "sha256": "00", "format": "jsonl"}
    }
    status["nodes"]["f"]["outputs"]["sq"] = ref

    with pytest.raises(NeedItems) as need:
        rebuild_state(wf, status, [])
    assert (need.value.node, need.value.key) == ("f", "ns/wf/uid/f/output.sq")
    state = rebuild_state(wf, status, [], loaded={need.value.key: column})
    assert state.nodes["f"].outputs["sq"] == ref  # the status keeps the small reference
    retried = resume(wf, state, frozenset(), LATER)
    retried.run()
    assert [s.index for s in retried.started("f")] == [2]
    assert retried.state.nodes["f"].outputs["sq"] == [0, 1, 4, 9]

    unreadable = rebuild_state(wf, status, [], loaded={need.value.key: "NoSuchKey"})
    assert unreadable.nodes["f"].phase is NodePhase.PENDING  # all items run again


def test_outputs_left_out_of_the_status_keep_no_items() -> None:
    wf, first = failed_first(3, {1})
    status = render_status(wf, first.state)
    del status["nodes"]["f"]["outputs"]
    status["nodes"]["f"]["outputsOmitted"] = "outputs of 40 KiB are too large for the status"
    reopened, _ = reopen(wf, status)
    assert "succeededItems" not in reopened["nodes"]["f"]
    assert rebuild_state(wf, reopened, []).nodes["f"].phase is NodePhase.PENDING


@given(st.sets(st.integers(0, 300)))
def test_index_ranges_read_back_as_the_same_indexes(indexes: set[int]) -> None:
    text = format_ranges(indexes)
    assert text is not None
    ranges = parse_ranges(text, 301) if indexes else None
    back = {i for span in ranges or [] for i in span}
    assert back == indexes


def test_index_ranges_are_compact_and_capped() -> None:
    assert format_ranges([*range(10_000)]) == "0-9999"
    assert format_ranges([0, 1, 2, 3, *range(5, 10_000)]) == "0-3,5-9999"
    assert format_ranges(range(0, 20_000, 2)) is None  # 10,000 separate runs: over the cap
    assert len(format_ranges(range(0, 2_000, 2)) or "") <= MAX_RANGES_CHARS
