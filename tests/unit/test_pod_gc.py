"""Pod clean-up (shoal.kube.pod_gc, `spec.podGC`): which Jobs go when, and what
`shoal logs` says when a pod is gone.

The policy decides whether a user can still read a finished node's log on a cluster
without the archive, and whether a 10,000-item fan-out leaves 10,000 Jobs behind; the
runner test shows the decisions reach the API server as delete-collection requests.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from shoal.api.limits import MAX_KEPT_SUCCEEDED_PODS
from shoal.api.workflow import PodGCStrategy, WorkflowSpec
from shoal.cli.logs_command import LogTarget
from shoal.kube.api import KubeApi
from shoal.kube.jobs import job_token
from shoal.kube.pod_gc import STRATEGIES, PodCleanup, gone_reason
from shoal.kube.runner import RunnerConfig, WorkflowRunner
from tests.unit.test_kube_ownership import (
    GENERATED_JOB_UID,
    REAL,
    FakeApi,
    body,
    final_status,
    finished_pod,
    until,
)

UID = "0b9f4c1e-1111-2222-3333-444455556666"
OWNED = f"app.kubernetes.io/managed-by=shoal,shoal.dev/workflow-uid={UID}"


def test_the_strategies_are_the_api_enum() -> None:
    assert set(STRATEGIES) == {s.value for s in PodGCStrategy}
    spec = WorkflowSpec.model_validate(
        {"nodes": [{"name": "a", "job": "j"}], "podGC": {"strategy": "OnWorkflowSuccess"}}
    )
    assert spec.pod_gc is not None
    assert spec.pod_gc.strategy is PodGCStrategy.ON_WORKFLOW_SUCCESS
    with pytest.raises(ValueError, match="strategy"):
        WorkflowSpec.model_validate({"nodes": [{"name": "a", "job": "j"}], "podGC": {}})


def test_on_pod_success_deletes_each_succeeded_node_and_nothing_at_the_end() -> None:
    gc = PodCleanup(UID, "OnPodSuccess")
    assert gc.node_succeeded("a", 1) == f"{OWNED},shoal.dev/node=a"
    assert gc.node_succeeded("b", 5000) == f"{OWNED},shoal.dev/node=b"
    assert gc.workflow_finished(succeeded=True) is None


@pytest.mark.parametrize("succeeded", [True, False])
def test_on_workflow_completion_keeps_everything_until_the_end_whatever_the_phase(
    succeeded: bool,
) -> None:
    gc = PodCleanup(UID, "OnWorkflowCompletion")
    assert gc.node_succeeded("a", 10_000) is None
    assert gc.workflow_finished(succeeded=succeeded) == OWNED


def test_on_workflow_success_keeps_a_failed_runs_pods() -> None:
    gc = PodCleanup(UID, "OnWorkflowSuccess")
    assert gc.node_succeeded("a", 3) is None
    assert gc.workflow_finished(succeeded=False) is None
    assert gc.workflow_finished(succeeded=True) == OWNED


def test_never_and_keep_all_delete_nothing() -> None:
    for gc in (
        PodCleanup(UID, "Never"),
        PodCleanup(UID, "OnPodSuccess", keep_all=True),
        PodCleanup(UID, "OnWorkflowCompletion", keep_all=True),
        PodCleanup(UID, None, keep_all=True),
    ):
        assert gc.node_succeeded("a", 10_000) is None
        assert gc.workflow_finished(succeeded=True) is None


def test_the_default_keeps_small_workflows_whole() -> None:
    gc = PodCleanup(UID)
    assert [gc.node_succeeded(n, 1) for n in "abcde"] == [None] * 5
    assert gc.node_succeeded("fan", 50) is None
    assert gc.workflow_finished(succeeded=True) is None
    assert gc.workflow_finished(succeeded=False) is None
    assert gc.kept == 55


def test_the_default_keeps_at_most_the_bound_and_deletes_the_rest_per_node() -> None:
    gc = PodCleanup(UID, limit=100)
    assert gc.node_succeeded("first", 97) is None
    # The node that crosses the bound keeps its first items, in one request.
    assert gc.node_succeeded("fan", 10_000) == (
        f"{OWNED},shoal.dev/node=fan,shoal.dev/item notin (0,1,2)"
    )
    assert gc.kept == 100
    # From then on every succeeded node goes whole, as with OnPodSuccess.
    assert gc.node_succeeded("late", 1) == f"{OWNED},shoal.dev/node=late"
    assert gc.kept == 100


def test_the_default_bound_is_the_documented_limit() -> None:
    gc = PodCleanup(UID)
    assert gc.limit == MAX_KEPT_SUCCEEDED_PODS == 100
    selector = gc.node_succeeded("fan", 150)
    assert selector is not None
    kept = selector.split("notin (")[1].rstrip(")").split(",")
    assert kept == [str(i) for i in range(MAX_KEPT_SUCCEEDED_PODS)]


@pytest.mark.parametrize("strategy", ["OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"])
def test_the_gone_message_names_the_strategy_and_how_to_keep_logs(strategy: str) -> None:
    text = gone_reason(strategy)
    assert f"podGC strategy {strategy}" in text
    assert "spec.podGC.strategy: Never" in text
    assert "--database-url" in text


def test_the_gone_message_explains_the_default_bound() -> None:
    text = gone_reason(None)
    assert "default podGC keeps at most 100 succeeded pods" in text
    assert "spec.podGC.strategy: Never" in text


def test_shoal_logs_says_which_strategy_removed_a_nodes_pods() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "w", "uid": UID},
        "spec": {"nodes": [{"name": "a", "job": "j"}], "podGC": {"strategy": "OnPodSuccess"}},
        "status": {"phase": "Succeeded", "nodes": {"a": {"phase": "Succeeded", "attempts": 1}}},
    }
    note = LogTarget(obj, None, None).gone_note(set())
    assert note is not None
    assert note.startswith("no log for a: the pods are gone: podGC strategy OnPodSuccess")
    assert LogTarget(obj, None, None).gone_note({"a"}) is None


class RecordingApi(FakeApi):
    """FakeApi that remembers every delete-collection selector."""

    def __init__(self) -> None:
        super().__init__()
        self.collections: list[str] = []

    async def delete_collection(self, path: str, label_selector: str, **_: Any) -> None:
        self.collections.append(label_selector)


async def run_one_node(spec: dict[str, Any], config: RunnerConfig) -> RecordingApi:
    """Run the one-node workflow of test_kube_ownership to success; the deletions it made."""
    api = RecordingApi()
    doc = body()
    doc["spec"].update(spec)
    runner = WorkflowRunner(cast(KubeApi, api), doc, config, lambda *a: None)
    task = asyncio.create_task(runner.run())
    await until(lambda: api.created, "the Job")
    token = job_token(api.created[0])
    runner.pod_event("ADDED", finished_pod("real", "team-a", REAL, GENERATED_JOB_UID, token))
    await asyncio.wait_for(task, 30)
    assert final_status(api)["phase"] == "Succeeded"
    return api


@pytest.mark.parametrize(
    ("spec", "keep", "deleted"),
    [
        ({}, False, []),
        ({"podGC": {"strategy": "Never"}}, False, []),
        ({"podGC": {"strategy": "OnPodSuccess"}}, False, ["shoal.dev/node=a"]),
        ({"podGC": {"strategy": "OnPodSuccess"}}, True, []),
        ({"podGC": {"strategy": "OnWorkflowSuccess"}}, False, [""]),
    ],
)
async def test_the_runner_deletes_what_the_policy_says(
    spec: dict[str, Any], keep: bool, deleted: list[str]
) -> None:
    config = RunnerConfig(status_interval_seconds=0.01, delete_succeeded_jobs=not keep)
    api = await run_one_node(spec, config)
    owned = f"app.kubernetes.io/managed-by=shoal,shoal.dev/workflow-uid={body()['metadata']['uid']}"
    assert api.collections == [f"{owned},{d}".rstrip(",") for d in deleted]
