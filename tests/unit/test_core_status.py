"""The one renderer and the one reader of the status (shoal.core.status, status_reader).

Issue 14 moved the status from two hand-built dicts onto the typed `WorkflowStatus`. What
users and the CRD rely on is the JSON itself, so the renderer is checked against the
renderers it replaced (kept below, verbatim in behaviour, as the reference) on random
runs; and the reader must take back whatever an operator, an older version or a person
with `kubectl edit` left in the status without ever failing.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api.workflow import NodePhase, WorkflowPhase, WorkflowStatus
from shoal.cli.local_commands import status_document
from shoal.core.compiled import CompiledWorkflow
from shoal.core.item_ranges import format_ranges
from shoal.core.state import RunState
from shoal.core.status import clip, render_status, status_dict, timestamp
from shoal.core.status_reader import read_status
from shoal.kube.status import rebuild_state
from tests.unit.restart import drive
from tests.unit.simulator import HANG, Simulator, fail, ok, workflow
from tests.unit.test_kube_status import scripts, specs

PROPERTIES = settings(
    max_examples=int(os.environ.get("SHOAL_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the renderers the typed status replaced (the reference) ---------------------------------


def operator_status_before(wf: CompiledWorkflow, state: RunState) -> dict[str, Any]:
    """kube/status.render_status as it was before issue 14."""
    nodes: dict[str, Any] = {}
    for name in wf.order:
        ns = state.nodes[name]
        entry: dict[str, Any] = {"phase": ns.phase.value}
        if ns.attempts:
            entry["attempts"] = ns.attempts
        for key, value in (("startedAt", ns.started_at), ("finishedAt", ns.finished_at)):
            if value is not None:
                entry[key] = timestamp(value)
        if ns.exit_code is not None:
            entry["exitCode"] = ns.exit_code
        if ns.message:
            entry["message"] = clip(ns.message)
        if ns.progress is not None and not ns.phase.finished:
            entry["progress"] = ns.progress
        if ns.outputs:
            encoded = json.dumps(ns.outputs, separators=(",", ":"), default=str).encode()
            if len(encoded) <= 32 * 1024:
                entry["outputs"] = ns.outputs
            else:
                entry["outputsOmitted"] = (
                    f"outputs of {len(encoded) // 1024} KiB are too large for the status"
                )
        if ns.fan_out or (ns.total and wf.nodes[name].fan_out):
            finished = ns.phase.finished
            entry["items"] = {
                "total": ns.total,
                "pending": ns.pending_items if not finished else 0,
                "running": ns.running,
                "succeeded": ns.succeeded,
                "failed": ns.failed,
                "skipped": ns.total - ns.next_index if finished else 0,
            }
            if ns.failures:
                entry["failedItems"] = [
                    {"index": i, "message": clip(m, 300)} for i, m in ns.failures[:10]
                ]
            if ns.succeeded_items and "outputsOmitted" not in entry:  # added for retries
                entry["succeededItems"] = ns.succeeded_items
            live_record_before(ns, entry)  # added for bounded live Jobs (issue 17)
        nodes[name] = entry
    status: dict[str, Any] = {"phase": state.phase.value, "progress": state.progress}
    status["nodes"] = nodes
    if state.message:
        status["message"] = clip(state.message)
    if state.started_at is not None:
        status["startedAt"] = timestamp(state.started_at)
    if state.finished_at is not None:
        status["finishedAt"] = timestamp(state.finished_at)
    return status


def live_record_before(ns: Any, entry: dict[str, Any]) -> None:
    """A fan-out's record of its items while it runs; explicit nulls once it ended."""
    if ns.phase.finished:
        entry.setdefault("outputs", None)
        entry.setdefault("succeededItems", None)
        return
    for key in ("outputs", "outputsOmitted", "succeededItems"):
        entry.pop(key, None)
    if not ns.fan_out or not ns.item_outputs:
        return
    ranges = format_ranges(ns.item_outputs)
    names = sorted({key for values in ns.item_outputs.values() for key in values})
    columns = {k: [ns.item_outputs.get(i, {}).get(k) for i in range(ns.total)] for k in names}
    encoded = json.dumps(columns, separators=(",", ":"), default=str).encode()
    if ranges is not None and len(encoded) <= 32 * 1024:
        if columns:
            entry["outputs"] = columns
        entry["succeededItems"] = ranges


def local_document_before(wf: CompiledWorkflow, state: RunState) -> dict[str, Any]:
    """cli/local_commands.status_document as it was before issue 14."""
    nodes: dict[str, Any] = {}
    for name in wf.order:
        ns = state.nodes[name]
        entry: dict[str, Any] = {"phase": ns.phase.value, "attempts": ns.attempts}
        if ns.message:
            entry["message"] = ns.message
        if ns.exit_code is not None:
            entry["exitCode"] = ns.exit_code
        if ns.outputs:
            entry["outputs"] = ns.outputs
        if ns.fan_out:
            entry["items"] = {"total": ns.total, "succeeded": ns.succeeded, "failed": ns.failed}
        nodes[name] = entry
    doc: dict[str, Any] = {"name": wf.meta.name, "phase": state.phase.value}
    doc.update(progress=state.progress, nodes=nodes)
    if state.message:
        doc["message"] = state.message
    if state.started_at and state.finished_at:
        doc["durationSeconds"] = round(state.finished_at - state.started_at, 3)
    return doc


def same_json(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# --- the renderer --------------------------------------------------------------------------------


@PROPERTIES
@given(st.data())
def test_the_typed_status_writes_the_same_json_as_before_at_every_step(
    data: st.DataObject,
) -> None:
    from tests.unit.simulator import compile_spec

    wf = compile_spec(data.draw(specs(), label="spec"))
    script = data.draw(scripts(), label="script")
    sim = script.simulator(wf)

    def check(s: Simulator) -> None:
        same_json(status_dict(render_status(wf, s.state)), operator_status_before(wf, s.state))
        same_json(status_document(wf, s.state), local_document_before(wf, s.state))

    sim.checks.append(check)
    drive(sim, script)
    check(sim)


def test_progress_large_outputs_long_messages_and_failed_items_render_as_before() -> None:
    wf = workflow(
        {"name": "big", "job": "j"},
        {"name": "each", "forEach": list(range(15)), "itemArg": "i", "failFast": False},
        {"name": "slow", "job": "j"},
    )
    sim = Simulator(
        wf,
        {
            ("big", 0): ok(blob="x" * 40_000, n=float("nan")),
            **{("each", i): fail("y" * 500) for i in range(0, 15, 2)},
            ("slow", 0): HANG,
        },
    )
    sim.settle()
    while any(not task.outcome.hang for task in sim.running.values()):
        sim.step()
    sim.settle()  # the planner decides about the last failure
    sim.state.nodes["slow"].progress = 42.5
    sim.state.message = "z" * 5000
    entries = operator_status_before(wf, sim.state)["nodes"]
    assert "outputsOmitted" in entries["big"]
    assert len(entries["each"]["failedItems"]) == 8
    assert entries["slow"]["progress"] == 42.5
    same_json(status_dict(render_status(wf, sim.state)), operator_status_before(wf, sim.state))
    same_json(status_document(wf, sim.state), local_document_before(wf, sim.state))
    sim.state.stop_requested = "stopped by the user"
    sim.run()
    same_json(status_dict(render_status(wf, sim.state)), operator_status_before(wf, sim.state))
    same_json(status_document(wf, sim.state), local_document_before(wf, sim.state))


def test_a_local_document_keeps_what_the_workflow_object_must_cut() -> None:
    wf = workflow({"name": "a"})
    sim = Simulator(wf, {("a", 0): fail("m" * 5000)})
    sim.run()
    limited, whole = render_status(wf, sim.state), render_status(wf, sim.state, limits=False)
    assert limited.nodes["a"].message is not None
    assert len(limited.nodes["a"].message) == 1024
    assert whole.nodes["a"].message == "m" * 5000
    assert status_document(wf, sim.state)["nodes"]["a"]["message"] == "m" * 5000


def test_outputs_are_written_as_the_job_produced_them() -> None:
    wf = workflow({"name": "a"})
    sim = Simulator(wf, {("a", 0): ok(ratio=float("inf"), nested={"k": [1, None, "x"]})})
    sim.run()
    outputs = status_dict(render_status(wf, sim.state))["nodes"]["a"]["outputs"]
    assert outputs == {"ratio": float("inf"), "nested": {"k": [1, None, "x"]}}


# --- the reader -----------------------------------------------------------------------------------


def test_reading_what_was_rendered_gives_the_same_status_back() -> None:
    wf = workflow(
        {"name": "a"}, {"name": "each", "forEach": [1, 2, 3], "itemArg": "i", "dependsOn": ["a"]}
    )
    sim = Simulator(wf, {("a", 0): ok(n=1), ("each", 1): fail("bad")})
    sim.run()
    rendered = render_status(wf, sim.state)
    back = read_status(json.loads(json.dumps(status_dict(rendered))))
    assert back == rendered
    assert status_dict(back) == status_dict(rendered)


def test_a_missing_or_non_object_status_reads_as_a_new_run() -> None:
    for raw in (None, [], "Running", 3, {}):
        assert read_status(raw) == WorkflowStatus()


def test_fields_that_do_not_fit_are_dropped_and_the_rest_is_kept() -> None:
    raw = {
        "phase": "Exploded",
        "message": "kept",
        "retries": "many",
        "startedAt": "2026-01-01T00:00:00Z",
        "unknownField": {"from": "a newer operator"},
        "nodes": {
            "a": {"phase": "Succeeded", "attempts": "3", "exitCode": "zero", "outputs": [1]},
            "b": {"phase": "Teleported", "message": "kept too"},
            "c": "not an object",
            "d": {
                "phase": "Failed",
                "items": {"total": 3, "failed": -1.5},
                "failedItems": [{"index": 0, "message": "m"}, {"message": "no index"}, 7],
            },
        },
    }
    status = read_status(raw)
    assert status.phase is WorkflowPhase.PENDING
    assert (status.message, status.retries) == ("kept", None)
    assert status.started_at == "2026-01-01T00:00:00Z"
    a = status.nodes["a"]
    assert (a.phase, a.attempts, a.exit_code, a.outputs) == (NodePhase.SUCCEEDED, 3, None, None)
    assert (status.nodes["b"].phase, status.nodes["b"].message) == (NodePhase.PENDING, "kept too")
    assert "c" not in status.nodes
    d = status.nodes["d"]
    assert d.items is not None
    assert (d.items.total, d.items.failed) == (3, 0)
    assert [(f.index, f.message) for f in d.failed_items or []] == [(0, "m")]
    assert raw["nodes"]["c"] == "not an object"  # the caller's object is left alone


def test_a_restart_from_a_hand_edited_status_plans_again_instead_of_crashing() -> None:
    wf = workflow({"name": "a"}, {"name": "b", "dependsOn": ["a"]})
    edited = {
        "phase": "Running",
        "startedAt": "not a time",
        "nodes": {
            "a": {"phase": "Succeeded", "finishedAt": "yesterday", "outputs": {"n": 1}},
            "b": {"phase": "Bogus"},
        },
    }
    state = rebuild_state(wf, edited, [])
    assert state.phase is WorkflowPhase.RUNNING
    assert state.started_at is None
    assert state.nodes["a"].phase is NodePhase.SUCCEEDED
    assert state.nodes["a"].outputs == {"n": 1}
    assert state.nodes["a"].finished_at is None
    assert state.nodes["b"].phase is NodePhase.PENDING


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "phase",
        "attempts",
        "startedAt",
        "finishedAt",
        "exitCode",
        "message",
        "progress",
        "outputs",
        "outputsOmitted",
        "items",
        "failedItems",
        "total",
        "index",
        "retries",
    ]
)


@PROPERTIES
@given(
    top=st.dictionaries(FIELDS, JSON, max_size=5),
    nodes=st.dictionaries(st.sampled_from(["a", "b"]), st.dictionaries(FIELDS, JSON) | JSON),
)
def test_any_json_in_the_status_reads_and_restarts_without_failing(
    top: dict[str, Any], nodes: dict[str, Any]
) -> None:
    raw = {**top, "nodes": nodes}
    status = read_status(raw)
    assert set(status.nodes) <= set(nodes)
    wf = workflow({"name": "a"}, {"name": "b", "forEach": [1, 2], "itemArg": "i"})
    state = rebuild_state(wf, raw, [])
    assert set(state.nodes) == {"a", "b"}
