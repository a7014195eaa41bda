"""One resolver decides a node's pod settings (shoal.core.defaults.resolve_pod).

What a user relies on: a node's own setting wins, an unset one inherits `spec.defaults`,
an empty scheduling value does not clear the defaults', and every executor (the Job
builder, the local executor, the planner's timeouts and retries) sees the same values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoal.api.workflow import RetryPolicy, WorkflowSpec
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.decisions import StartTask
from shoal.core.defaults import resolve_pod
from shoal.core.planner import advance
from shoal.core.state import RunState
from shoal.core.validation import compile_workflow
from shoal.kube.jobs import JobDefaults, build_job
from shoal.local.process import local_env

META = WorkflowMeta(name="wf", namespace="ns", uid="u-1")


def compiled(spec: dict[str, Any]) -> CompiledWorkflow:
    return compile_workflow(WorkflowSpec.model_validate(spec), META)


def resolved(node: dict[str, Any], defaults: dict[str, Any], image: str | None = None) -> Any:
    spec: dict[str, Any] = {"nodes": [{"name": "a", "job": "j", **node}], "defaults": defaults}
    if image is not None:
        spec["image"] = image
    model = WorkflowSpec.model_validate(spec)
    return resolve_pod(model.nodes[0], model)


DEFAULTS: dict[str, Any] = {
    "image": "d:1",
    "timeoutSeconds": 60,
    "retries": {"limit": 3},
    "resources": {"requests": {"cpu": "1"}},
    "nodeSelector": {"pool": "batch"},
    "tolerations": [{"key": "batch", "operator": "Exists"}],
    "serviceAccountName": "etl",
    "automountServiceAccountToken": True,
}
OWN: dict[str, Any] = {
    "image": "n:1",
    "timeoutSeconds": 5,
    "retries": {"limit": 0},
    "resources": {"limits": {"memory": "1Gi"}},
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "gpu"}],
    "serviceAccountName": "trainer",
    "automountServiceAccountToken": False,
}


def same(pod: Any, field: str, written: Any) -> bool:
    """Whether the resolved setting is the one written in the manifest (models compared
    in their full form, so `{requests: ...}` equals the model with empty `limits`)."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in field)
    value = getattr(pod, snake)
    if isinstance(value, tuple):
        return [v.dump() for v in value] == written
    if hasattr(value, "dump"):
        return bool(value == type(value).model_validate(written))
    return bool(value == written)


@pytest.mark.parametrize("field", sorted(DEFAULTS))
def test_a_nodes_own_setting_wins_over_the_defaults(field: str) -> None:
    assert same(resolved({field: OWN[field]}, DEFAULTS), field, OWN[field])


@pytest.mark.parametrize("field", sorted(DEFAULTS))
def test_an_unset_setting_is_inherited_from_the_defaults(field: str) -> None:
    assert same(resolved({}, DEFAULTS), field, DEFAULTS[field])


@pytest.mark.parametrize(
    ("field", "empty"), [("nodeSelector", {}), ("tolerations", []), ("env", [])]
)
def test_an_empty_node_value_keeps_the_defaults(field: str, empty: Any) -> None:
    defaults = {**DEFAULTS, "env": [{"name": "REGION", "value": "eu"}]}
    assert same(resolved({field: empty}, defaults), field, defaults[field])


def test_env_lists_merge_by_name_and_the_nodes_entry_wins() -> None:
    defaults = {"env": [{"name": "A", "value": "d"}, {"name": "B", "value": "d"}]}
    pod = resolved({"env": [{"name": "B", "value": "n"}, {"name": "C", "value": "n"}]}, defaults)
    assert [(e.name, e.value) for e in pod.env] == [("A", "d"), ("B", "n"), ("C", "n")]


def test_the_image_falls_back_to_the_workflows_then_to_the_executors() -> None:
    assert resolved({}, {}, image="w:1").image == "w:1"
    assert resolved({}, {"image": "d:1"}, image="w:1").image == "d:1"
    assert resolved({}, {}).image is None  # the operator's configured image applies


def test_with_nothing_set_a_pod_gets_no_retry_no_timeout_and_no_api_token() -> None:
    pod = resolved({}, {})
    assert pod.retries == RetryPolicy()
    assert pod.timeout_seconds is None
    assert pod.automount_service_account_token is False
    assert pod.resources is None
    assert pod.node_selector is None
    assert not pod.tolerations


def test_the_compiled_node_carries_the_resolved_settings_for_the_planner() -> None:
    wf = compiled({"defaults": DEFAULTS, "nodes": [{"name": "a", "job": "j"}]})
    node = wf.nodes["a"]
    assert node.pod == resolve_pod(wf.spec.nodes[0], wf.spec)
    assert (node.image, node.timeout_seconds, node.retries.limit) == ("d:1", 60, 3)


def test_the_job_and_a_local_run_see_the_same_service_account() -> None:
    """A `fieldRef: spec.serviceAccountName` reads the defaults' account in both."""
    wf = compiled(
        {
            "defaults": {"serviceAccountName": "etl"},
            "nodes": [
                {
                    "name": "a",
                    "job": "j",
                    "env": [
                        {
                            "name": "SA",
                            "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}},
                        }
                    ],
                }
            ],
        }
    )
    plan = advance(wf, RunState.new(list(wf.order)), 0.0)
    task = next(d for d in plan.decisions if isinstance(d, StartTask))
    job = build_job(wf, task, JobDefaults(), token="t")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "etl"
    assert local_env(wf, wf.nodes["a"], task, {})["SA"] == "etl"


def test_a_fan_out_items_environment_holds_its_item_as_compact_json() -> None:
    """$SHOAL_ITEM is the item's JSON whatever its type (an int takes a shortcut; a bool,
    which is an int in Python, must still read `true`)."""
    items: list[Any] = [3, -1, True, None, 1.5, "a b", {"k": [1, "x"]}, 10**20]
    wf = compiled({"nodes": [{"name": "a", "command": ["true"], "forEach": items}]})
    plan = advance(wf, RunState.new(list(wf.order)), 0.0)
    starts = [d for d in plan.decisions if isinstance(d, StartTask)]
    seen = {d.index: local_env(wf, wf.nodes["a"], d, {})["SHOAL_ITEM"] for d in starts}
    assert seen == {i: json.dumps(item, separators=(",", ":")) for i, item in enumerate(items)}
