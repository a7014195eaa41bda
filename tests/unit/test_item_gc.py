"""Bounded live Jobs for big fan-outs (core/item_gc, kube/pod_gc.item_keep_below).

What a user relies on: a running fan-out's status records its succeeded items (ranges and
their outputs) so that their Jobs can go; a Job goes only once a written status holds its
item, only as podGC allows, and a restarted operator that finds those Jobs gone still
knows every finished item's outcome and output and runs none of them again.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from shoal.api import limits
from shoal.api.workflow import NodePhase
from shoal.core.item_gc import durable_items, jobs_to_delete, live_record
from shoal.core.state import NodeState
from shoal.kube.pod_gc import PodCleanup
from shoal.kube.status import render_status
from tests.unit.restart import Script, before_the_crash, cut, drive, restart
from tests.unit.simulator import compile_spec, workflow
from tests.unit.test_kube_status import scripts, specs, summary

PROPERTIES = settings(
    max_examples=int(os.environ.get("SHOAL_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def running_fan_out(total: int, done: dict[int, dict[str, Any]]) -> NodeState:
    ns = NodeState(phase=NodePhase.RUNNING, items=list(range(total)), total=total)
    ns.item_outputs = dict(done)
    return ns


def test_a_running_fan_out_records_its_succeeded_items_and_their_outputs() -> None:
    record = live_record(running_fan_out(6, {0: {"x": 1}, 1: {"x": 2}, 4: {"x": 5}}))
    assert record is not None
    assert record.succeeded_items == "0-1,4"
    assert record.outputs == {"x": [1, 2, None, None, 5, None]}


def test_items_without_outputs_are_recorded_by_their_ranges_alone() -> None:
    record = live_record(running_fan_out(10_000, {i: {} for i in range(9_000)}))
    assert record is not None
    assert (record.succeeded_items, record.outputs) == ("0-8999", {})


def test_outputs_past_the_status_bound_are_not_recorded_so_their_jobs_stay() -> None:
    big = "v" * 1024
    done = {i: {"x": big} for i in range(limits.MAX_STATUS_OUTPUTS_BYTES // 1024 + 1)}
    assert live_record(running_fan_out(len(done) + 5, done)) is None


def test_ranges_past_their_cap_are_not_recorded() -> None:
    every_other = {i: {} for i in range(0, 20_000, 2)}  # 10,000 separate runs
    assert live_record(running_fan_out(20_000, every_other)) is None


def test_a_finished_node_or_a_plain_one_has_no_live_record() -> None:
    ns = running_fan_out(3, {0: {"x": 1}})
    ns.phase = NodePhase.SUCCEEDED
    assert live_record(ns) is None
    plain = NodeState(phase=NodePhase.RUNNING, total=1)
    plain.item_outputs = {0: {"x": 1}}
    assert live_record(plain) is None


def entry(phase: str, total: Any, ranges: Any) -> dict[str, Any]:
    return {"phase": phase, "items": {"total": total}, "succeededItems": ranges}


def test_only_a_running_entrys_valid_ranges_count_as_durable() -> None:
    assert durable_items(entry("Running", 10, "0-2,5")) == [range(0, 3), range(5, 6)]
    assert durable_items(entry("Succeeded", 10, "0-2")) == []
    assert durable_items(entry("Running", 3, "0-5")) == []  # past the item count
    assert durable_items(entry("Running", 10, "2,1")) == []  # out of order: hand-edited
    assert durable_items(entry("Running", True, "0")) == []
    assert durable_items(entry("Running", 10, 7)) == []
    assert durable_items({"phase": "Running"}) == []


def test_a_job_goes_only_once_a_written_status_records_its_item() -> None:
    nodes = {"fan": entry("Running", 10, "0-3,7"), "other": entry("Running", 5, None)}
    ended = [("fan", 2), ("fan", 5), ("fan", 7), ("other", 1), ("gone", 0)]
    assert jobs_to_delete(ended, nodes, lambda node: 0) == [("fan", 2), ("fan", 7)]


def test_podgc_decides_which_recorded_items_keep_their_jobs() -> None:
    nodes = {"fan": entry("Running", 10, "0-9")}
    ended = [("fan", i) for i in range(10)]
    assert jobs_to_delete(ended, nodes, lambda node: None) == []
    assert jobs_to_delete(ended, nodes, lambda node: 4) == [("fan", i) for i in range(4, 10)]


def test_the_default_keeps_the_first_items_up_to_the_bound_once_per_node() -> None:
    gc = PodCleanup(uid="u", limit=100)
    assert gc.item_keep_below("a", 60) == 60
    assert gc.item_keep_below("a", 60) == 60  # reserved once, not charged twice
    assert gc.item_keep_below("b", 1000) == 40
    assert gc.item_keep_below("c", 10) == 0
    # At the end, a node keeps what it reserved and its other Jobs go in one request.
    assert gc.node_succeeded("a", 60) is None
    selector = gc.node_succeeded("b", 1000)
    assert selector is not None
    assert selector.endswith(
        "shoal.dev/workflow-uid=u,shoal.dev/node=b,shoal.dev/item notin ("
        + ",".join(map(str, range(40)))
        + ")"
    )
    assert gc.kept == 100


def test_explicit_strategies_and_keep_succeeded_jobs() -> None:
    assert PodCleanup(uid="u", strategy="OnPodSuccess").item_keep_below("a", 5) == 0
    for strategy in ("Never", "OnWorkflowCompletion", "OnWorkflowSuccess"):
        assert PodCleanup(uid="u", strategy=strategy).item_keep_below("a", 5) is None
    assert PodCleanup(uid="u", keep_all=True).item_keep_below("a", 5) is None


def deleted_at(at: Any) -> set[tuple[str, int]]:
    """The items whose Jobs the operator deleted after the status write `at.status`."""
    ended = sorted({(node, index) for node, index, _ in at.ended})
    return set(jobs_to_delete(ended, at.status["nodes"], lambda node: 0))


@PROPERTIES
@given(st.data())
def test_a_run_whose_recorded_items_lost_their_jobs_restarts_as_if_never_cut(
    data: st.DataObject,
) -> None:
    spec = data.draw(specs(), label="spec")
    script = data.draw(scripts(), label="script")
    wf = compile_spec(spec)
    whole = script.simulator(wf)
    drive(whole, script)

    at_step = data.draw(st.integers(0, max(whole.steps - 1, 0)), label="cut at step")
    part = before_the_crash(script, wf, at_step)
    if part is None:
        return
    at = cut(part)
    gone = deleted_at(at)
    at.jobs = [j for j in at.jobs if (j.node, j.index) not in gone]
    note(f"status at the cut: {at.status}")
    note(f"items whose Jobs were deleted: {sorted(gone)}")

    resumed = restart(wf, script, at)
    again = [s for _, s in resumed.sim.starts if (s.node, s.index) in gone]
    assert again == [], "an item recorded as succeeded ran again"
    assert resumed.duplicates == []
    assert summary(resumed.sim.state) == summary(whole.state)


def test_the_deleted_jobs_harness_deletes_jobs_mid_run() -> None:
    """The property above is not vacuous: items' Jobs go while their node still runs,
    and the rebuilt run finishes with every item's output in place."""
    wf = workflow(
        {"name": "a", "forEach": list(range(8)), "itemArg": "i", "parallelism": 2},
        {"name": "b", "dependsOn": ["a"]},
    )
    plain = Script(kinds=("ok",), sizes=(2,), salt=3)
    whole = plain.simulator(wf)
    drive(whole, plain)
    part = plain.simulator(wf)
    drive(part, plain, steps=6)
    part.settle()
    at = cut(part)
    assert at.status["nodes"]["a"]["phase"] == "Running"
    gone = deleted_at(at)
    assert gone, at.status["nodes"]["a"]
    at.jobs = [j for j in at.jobs if (j.node, j.index) not in gone]
    resumed = restart(wf, plain, at)
    assert [s for _, s in resumed.sim.starts if (s.node, s.index) in gone] == []
    assert summary(resumed.sim.state) == summary(whole.state)
    final = render_status(wf, resumed.sim.state)["nodes"]["a"]
    assert final["succeededItems"] == "0-7"
    assert final["outputs"]["tag"] == [f"a.{i}" for i in range(8)]
