"""Synchronization and memoize through the planner (core/flow_gates.py): a run or node
waits for its locks and starts once granted; a memo hit finishes the node with the cached
outputs and no task; locks are released on every way a holder ends; the status shows
held and waiting locks and memo hits and misses; bad keys are refused at validation."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import AcquireLocks, FinishNode, LookupMemo, StartTask
from shoal.core.flow_gates import (
    WORKFLOW,
    LocksGranted,
    LocksWaiting,
    MemoFound,
    memo_result,
    record_gate_event,
    released_by,
)
from shoal.core.locks import LockRequest, LockTable
from shoal.core.planner import advance
from shoal.core.state import RunState, TaskFinished, record_finished
from shoal.core.status import render_status, status_dict
from shoal.core.validation import InvalidWorkflow
from tests.unit.simulator import workflow

T0 = 1000.0
MUTEX = {"mutexes": [{"name": "db"}]}


def cmd(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": ["true"], **extra}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies the operator's status writes."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class Stored:
    """The status object as successive writes leave it in the API server."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}

    def write(self, wf: CompiledWorkflow, state: RunState) -> dict[str, Any]:
        self.status = merge_patch(self.status, status_dict(render_status(wf, state)))
        return self.status


def start(wf: CompiledWorkflow) -> tuple[RunState, list[Any]]:
    state = RunState.new(list(wf.order))
    return state, advance(wf, state, T0).decisions


def finish(wf: CompiledWorkflow, state: RunState, node: str, **outputs: Any) -> list[Any]:
    record_finished(state, TaskFinished(node, 0, 1, True, T0 + 1, outputs=outputs))
    return advance(wf, state, T0 + 1).decisions


def test_a_workflow_lock_holds_the_run_pending_until_granted() -> None:
    wf = workflow(cmd("a"), synchronization={**MUTEX, "priority": 3})
    stored = Stored()
    state, decisions = start(wf)
    assert decisions == [AcquireLocks(WORKFLOW, {"mutex/db": 1}, 3)]
    assert advance(wf, state, T0).decisions == []  # asked once, then waits
    assert state.phase is WorkflowPhase.PENDING
    assert stored.write(wf, state)["locks"] == {"waiting": ["mutex/db"]}
    record_gate_event(state, LocksWaiting(WORKFLOW, ("deploy-1",)))
    assert stored.write(wf, state)["locks"] == {"waiting": ["mutex/db"], "holders": ["deploy-1"]}
    record_gate_event(state, LocksGranted(WORKFLOW))
    started = advance(wf, state, T0).decisions
    assert any(isinstance(d, StartTask) for d in started)
    assert stored.write(wf, state)["locks"] == {"held": ["mutex/db"]}  # waiting is gone
    ended = finish(wf, state, "a")
    assert state.phase is WorkflowPhase.SUCCEEDED
    assert [name for d in ended for name in released_by(state, d)] == [WORKFLOW]
    assert "locks" not in stored.write(wf, state)


def test_a_stop_while_waiting_ends_the_run_stopped_and_releases_the_request() -> None:
    wf = workflow(cmd("a"), synchronization=MUTEX)
    state, _ = start(wf)
    state.stop_requested = "stopped (spec.stop)"
    decisions = advance(wf, state, T0).decisions
    assert state.phase is WorkflowPhase.STOPPED
    assert not any(isinstance(d, StartTask) for d in decisions)
    assert [n for d in decisions for n in released_by(state, d)] == [WORKFLOW]


def test_a_node_lock_holds_only_that_node_and_is_released_when_it_ends() -> None:
    sem = {"semaphores": [{"name": "gpu", "limit": 2}], "mutexes": [{"name": "db"}]}
    wf = workflow(cmd("a", synchronization=sem), cmd("b"))
    stored = Stored()
    state, decisions = start(wf)
    assert AcquireLocks("a", {"mutex/db": 1, "semaphore/gpu": 2}, 0) in decisions
    assert [d.node for d in decisions if isinstance(d, StartTask)] == ["b"]
    nodes = stored.write(wf, state)["nodes"]
    assert nodes["a"]["locks"] == {"waiting": ["mutex/db", "semaphore/gpu"]}
    record_gate_event(state, LocksGranted("a"))
    assert [d.node for d in advance(wf, state, T0).decisions if isinstance(d, StartTask)] == ["a"]
    assert stored.write(wf, state)["nodes"]["a"]["locks"] == {"held": ["mutex/db", "semaphore/gpu"]}
    record_finished(state, TaskFinished("a", 0, 1, False, T0 + 1, message="boom", exit_code=1))
    ended = advance(wf, state, T0 + 1).decisions
    assert state.nodes["a"].phase is NodePhase.FAILED
    assert [n for d in ended for n in released_by(state, d)] == ["a"]
    assert "locks" not in stored.write(wf, state)["nodes"]["a"]


def test_a_grant_for_a_request_never_made_is_ignored() -> None:
    wf = workflow(cmd("a", synchronization=MUTEX))
    state = RunState.new(list(wf.order))
    record_gate_event(state, LocksGranted("a"))
    assert state.locks_held == set()


MEMO = {"key": "sum-${{ params.day }}", "maxAge": "10m"}


def test_a_memo_hit_finishes_the_node_with_the_cached_outputs_and_no_task() -> None:
    wf = workflow(cmd("a", memoize=MEMO), cmd("b", dependsOn=["a"]), parameters={"day": 3})
    state, decisions = start(wf)
    assert decisions[-1] == LookupMemo("a", "sum-3", 600.0)
    assert advance(wf, state, T0).decisions == []
    record_gate_event(state, MemoFound("a", {"total": 7}))
    decisions = advance(wf, state, T0).decisions
    assert not any(isinstance(d, StartTask) and d.node == "a" for d in decisions)
    assert state.nodes["a"].phase is NodePhase.SUCCEEDED
    assert state.nodes["a"].outputs == {"total": 7}
    assert [d.node for d in decisions if isinstance(d, StartTask)] == ["b"]
    assert [memo_result(state, d) for d in decisions] == [None] * len(decisions)
    entry = status_dict(render_status(wf, state))["nodes"]["a"]
    assert entry["memoized"] == {"key": "sum-3", "hit": True}


def test_a_memo_miss_runs_the_node_and_caches_its_outputs_on_success() -> None:
    wf = workflow(cmd("a", memoize=MEMO), parameters={"day": 3})
    state, _ = start(wf)
    record_gate_event(state, MemoFound("a", None))
    assert [d.node for d in advance(wf, state, T0).decisions if isinstance(d, StartTask)] == ["a"]
    ended = finish(wf, state, "a", total=7)
    assert [r for d in ended if (r := memo_result(state, d))] == [("sum-3", {"total": 7})]
    entry = status_dict(render_status(wf, state))["nodes"]["a"]
    assert entry["memoized"] == {"key": "sum-3", "hit": False}


def test_a_failed_memoized_node_is_not_cached() -> None:
    wf = workflow(cmd("a", memoize=MEMO), parameters={"day": 3})
    state, _ = start(wf)
    record_gate_event(state, MemoFound("a", None))
    advance(wf, state, T0)
    record_finished(state, TaskFinished("a", 0, 1, False, T0 + 1, message="x", exit_code=1))
    decisions = advance(wf, state, T0 + 1).decisions
    assert state.nodes["a"].phase is NodePhase.FAILED
    assert all(memo_result(state, d) is None for d in decisions)


def test_a_memo_hit_needs_no_lock() -> None:
    wf = workflow(cmd("a", memoize=MEMO, synchronization=MUTEX), parameters={"day": 1})
    state, _ = start(wf)
    record_gate_event(state, MemoFound("a", {}))
    decisions = advance(wf, state, T0).decisions
    assert not any(isinstance(d, AcquireLocks) for d in decisions)
    assert state.phase is WorkflowPhase.SUCCEEDED


def test_a_key_that_fails_to_render_fails_the_node_naming_the_field() -> None:
    wf = workflow(
        cmd("a", memoize={"key": "${{ params.day.x }}", "maxAge": "1m"}), parameters={"day": 3}
    )
    _state, decisions = start(wf)
    finished = [d for d in decisions if isinstance(d, FinishNode)]
    assert finished[0].phase is NodePhase.FAILED
    assert finished[0].message.startswith("memoize.key:")


@pytest.mark.parametrize(
    ("memoize", "field", "words"),
    [
        ({"key": "${{ nodes.b.outputs.x }}", "maxAge": "1m"}, "memoize.key", "dependsOn"),
        ({"key": "${{ params.nope }}", "maxAge": "1m"}, "memoize.key", "params.nope"),
        ({"key": "${{ item }}", "maxAge": "1m"}, "memoize.key", "item"),
    ],
)
def test_validation_names_the_node_and_field_of_a_bad_key(
    memoize: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidWorkflow) as err:
        workflow(cmd("a", memoize=memoize), cmd("b"))
    problems = [p for p in err.value.problems if p.node == "a" and p.field == field]
    assert problems
    assert words in problems[0].message


@pytest.mark.parametrize(
    ("sync", "words"),
    [
        ({}, "at least one mutex or semaphore"),
        ({"mutexes": [{"name": "a"}, {"name": "a"}]}, "named twice"),
        ({"semaphores": [{"name": "s", "limit": 0}]}, "greater than or equal to 1"),
        ({"mutexes": [{"name": "Bad_Name"}]}, "should match pattern"),
    ],
)
def test_bad_synchronization_is_refused_naming_the_field(sync: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        workflow(cmd("a", synchronization=sync))
    assert "nodes.0.synchronization" in str(err.value)
    assert words in str(err.value)


def test_a_bad_max_age_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        workflow(cmd("a", memoize={"key": "k", "maxAge": "ten minutes"}))
    assert "nodes.0.memoize.maxAge" in str(err.value)


def test_a_run_reopened_by_retry_takes_its_workflow_lock_again_before_a_node_starts() -> None:
    wf = workflow(cmd("a"), cmd("b"), synchronization=MUTEX)
    state = RunState.new(list(wf.order))
    state.phase = WorkflowPhase.RUNNING  # what core/retry's reopen patch leaves
    state.started_at = T0
    decisions = advance(wf, state, T0).decisions
    assert decisions == [AcquireLocks(WORKFLOW, {"mutex/db": 1}, 0)]
    record_gate_event(state, LocksGranted(WORKFLOW))
    started = advance(wf, state, T0).decisions
    assert [d.node for d in started if isinstance(d, StartTask)] == ["a", "b"]


LOCK_NAMES = ["mutex/a", "mutex/b", "semaphore/s"]


@settings(max_examples=60, deadline=None)
@given(
    wants=st.lists(st.sets(st.sampled_from(LOCK_NAMES), max_size=3), min_size=1, max_size=8),
    chain=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_through_the_planner_locked_nodes_never_exceed_a_limit_and_all_finish(
    wants: list[set[str]], chain: bool, seed: int
) -> None:
    """Any nodes with any overlapping locks, finishing in any order, as an executor with
    one lock table would run them: the limits hold at every step and the run ends."""
    rng = random.Random(seed)
    nodes = []
    for i, locks in enumerate(wants):
        node = cmd(f"n{i}", dependsOn=[f"n{i - 1}"] if chain and i % 3 == 2 else [])
        sync: dict[str, Any] = {
            "mutexes": [{"name": lock[6:]} for lock in sorted(locks) if lock.startswith("mutex/")],
            "semaphores": [{"name": "s", "limit": 2}] if "semaphore/s" in locks else [],
        }
        if locks:
            node["synchronization"] = sync
        nodes.append(node)
    wf = workflow(*nodes)
    state = RunState.new(list(wf.order))
    table = LockTable()
    running: list[str] = []
    now = T0
    for _ in range(20 * len(nodes) + 20):
        for d in advance(wf, state, now).decisions:
            if isinstance(d, AcquireLocks):
                table.request(LockRequest(d.node, "wf", d.locks, d.priority, now))
            elif isinstance(d, StartTask):
                running.append(d.node)
            gone = set(released_by(state, d))
            table.release(lambda r, g=gone: r.holder in g)  # type: ignore[misc]
        for req in table.grant():
            record_gate_event(state, LocksGranted(req.holder))
        for lock, limit in {"mutex/a": 1, "mutex/b": 1, "semaphore/s": 2}.items():
            inside = [n for n in running if lock in (wants[int(n[1:])])]
            assert len(inside) <= limit, (lock, inside)
        if state.phase.finished:
            break
        if running:
            now += 1
            done = running.pop(rng.randrange(len(running)))
            record_finished(state, TaskFinished(done, 0, 1, True, now))
    assert state.phase is WorkflowPhase.SUCCEEDED
    assert table.holders == []
    assert table.waiters == []
