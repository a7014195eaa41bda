"""A 100,000-item fan-out keeps the whole Workflow object small (the brief's size claim).

Argo hits etcd's object limit somewhere between a few hundred and ~50k nodes. Shoal's
status holds per-node aggregates only, so the object must stay far below the limit
whatever the item count. Measured here: the object as the API server would store it —
metadata (with kubectl's last-applied annotation and managedFields), a spec whose
`forEach` is an expression over an upstream node's output (not a literal 100k list), and
`render_status` of a RunState where the fan-out node has 100,000 items, some failed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoal.api.workflow import NodePhase, Workflow, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.state import MAX_RECORDED_FAILURES, RunState, Task, TaskPhase
from shoal.core.validation import compile_workflow
from shoal.kube.status import render_status

ITEMS = 100_000
LIMIT = 256 * 1024
T0 = 1_790_000_000.0
NAME = "nightly-catalog-integration-eu-west"
UID = "0b7e1c4e-8f55-4a8e-9d1c-3f2a7d9e6b10"

MANIFEST: dict[str, Any] = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": NAME, "namespace": "data-pipelines"},
    "spec": {
        "image": "registry.example.com/acme/jobs:1.4.2",
        "parameters": {"region": "eu-west", "batch": 100_000},
        "parallelism": 50,
        "activeDeadlineSeconds": 86400,
        "ttlSecondsAfterFinished": 86400,
        "defaults": {
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "timeoutSeconds": 600,
        },
        "nodes": [
            {
                "name": "list-markets",
                "job": "market-finder",
                "args": {"region": "${{ params.region }}", "count": "${{ params.batch }}"},
            },
            {
                "name": "integrate",
                "job": "integration",
                "dependsOn": ["list-markets"],
                "forEach": '${{ nodes["list-markets"].outputs.market_ids }}',
                "itemArg": "market",
                "args": {"region": "${{ params.region }}"},
                "parallelism": 50,
                "failFast": False,
                "retries": {"limit": 2, "backoffSeconds": 10, "factor": 2},
            },
            {
                "name": "notify",
                "command": ["sh", "-c", "echo done"],
                "image": "curlimages/curl:8.10.1",
                "dependsOn": ["integrate"],
                "runPolicy": "always",
            },
        ],
    },
}


def compiled() -> CompiledWorkflow:
    spec = Workflow.model_validate(MANIFEST).spec
    return compile_workflow(spec, WorkflowMeta(name=NAME, namespace="data-pipelines", uid=UID))


def long_message(index: int) -> str:
    """A worker's failure message as long as they come (the status clips it)."""
    return f"item {index}: upstream returned HTTP 503; " + "traceback line " * 200


def state_for(items: int, *, finished: bool) -> RunState:
    """`list-markets` succeeded with `items` ids; `integrate` is mid-way or done, 3% failed."""
    wf = compiled()
    state = RunState.new(list(wf.order))
    state.phase = WorkflowPhase.RUNNING
    state.started_at = T0
    ids = [f"market-{i:06d}" for i in range(items)]

    upstream = state.nodes["list-markets"]
    upstream.phase = NodePhase.SUCCEEDED
    upstream.attempts = 1
    upstream.started_at, upstream.finished_at = T0, T0 + 30
    upstream.exit_code = 0
    upstream.outputs = {"market_ids": ids, "count": items}

    fan = state.nodes["integrate"]
    fan.phase = NodePhase.RUNNING
    fan.started_at = T0 + 31
    fan.items = ids
    fan.total = items
    failed = items * 3 // 100
    fan.failed = failed
    fan.failures = [(i * 33, long_message(i * 33)) for i in range(MAX_RECORDED_FAILURES)]
    fan.exit_code = 1
    if finished:
        fan.next_index = items
        fan.succeeded = items - failed
        fan.attempts = items + failed * 2
        fan.phase = NodePhase.FAILED
        fan.finished_at = T0 + 7200
        fan.message = f"{failed} of {items} items failed; item 0: {long_message(0)}"
        # What the planner aggregates for a finished fan-out: one list per output key.
        fan.outputs = {"market": ids, "rows": list(range(items))}
        notify = state.nodes["notify"]
        notify.phase = NodePhase.SUCCEEDED
        notify.attempts = 1
        notify.started_at, notify.finished_at = T0 + 7201, T0 + 7203
        state.phase = WorkflowPhase.FAILED
        state.finished_at = T0 + 7204
        state.message = f"node 'integrate' failed: {fan.message}"
    else:
        running = 50
        fan.next_index = items * 6 // 10
        fan.succeeded = fan.next_index - failed - running - 10
        fan.attempts = fan.next_index + failed * 2
        for i in range(fan.next_index - running, fan.next_index):
            fan.tasks[i] = Task(i, 1, TaskPhase.RUNNING, started_at=T0 + 3000)
        for i in range(fan.next_index - running - 10, fan.next_index - running):
            fan.tasks[i] = Task(i, 2, TaskPhase.WAITING, started_at=T0, retry_at=T0 + 3020)
        fan.running = running
        state.running = running
        # Per-item outputs are held in memory until the node finishes, never in the status.
        fan.item_outputs = {i: {"market": ids[i], "rows": i} for i in range(fan.succeeded)}
    return state


def fields_v1(value: Any) -> dict[str, Any]:
    """The managedFields `fieldsV1` the API server records for a value (lists are atomic)."""
    if not isinstance(value, dict):
        return {}
    return {".": {}, **{f"f:{k}": fields_v1(v) for k, v in value.items()}}


def stored_object(status: dict[str, Any]) -> dict[str, Any]:
    """The Workflow as a GET returns it after `kubectl apply` and the operator's writes."""
    last_applied = json.dumps(MANIFEST, separators=(",", ":"))

    def managed(manager: str, operation: str, fields: dict[str, Any], sub: str = "") -> Any:
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": "shoal.dev/v1alpha1",
            "time": "2026-09-21T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(fields),
        }
        return {**entry, "subresource": sub} if sub else entry

    metadata = {
        **MANIFEST["metadata"],
        "uid": UID,
        "resourceVersion": "123456789",
        "generation": 1,
        "creationTimestamp": "2026-09-21T10:00:00Z",
        "finalizers": ["shoal.dev/finalizer"],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied + "\n"},
    }
    metadata["managedFields"] = [
        managed(
            "kubectl-client-side-apply",
            "Update",
            {"metadata": {"annotations": metadata["annotations"]}, "spec": MANIFEST["spec"]},
        ),
        managed("kopf", "Update", {"metadata": {"finalizers": None}}),
        managed("python-httpx", "Update", {"status": status}, sub="status"),
    ]
    return {**MANIFEST, "metadata": metadata, "status": status}


def size(obj: Any) -> int:
    return len(json.dumps(obj).encode())


@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
def test_workflow_with_100k_item_fan_out_stays_under_256_kib(finished: bool) -> None:
    status = render_status(compiled(), state_for(ITEMS, finished=finished))
    obj = stored_object(status)
    parts = {key: size(obj[key]) for key in ("metadata", "spec", "status")}
    assert size(obj) < LIMIT, f"{size(obj)} bytes ({parts}) for a {ITEMS}-item fan-out"


@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
def test_status_size_does_not_grow_with_item_count(finished: bool) -> None:
    small = size(render_status(compiled(), state_for(10_000, finished=finished)))
    large = size(render_status(compiled(), state_for(ITEMS, finished=finished)))
    # Only the digits of the counters may differ.
    assert large - small < 100, f"status: {small} bytes at 10,000 items, {large} at {ITEMS}"
