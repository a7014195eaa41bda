"""The operator on a real control plane: Workflows applied with kubectl run as Jobs.

Every example runs to the same phase and outputs as under `shoal run` (the expectations
are shared with the local tier), plus the failure modes a user meets on a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal.core.resolved_spec import run_spec
from tests.cluster.conftest import (
    REPO,
    as_run_result,
    create_workflow,
    custom,
    wait_until,
    wait_workflow,
)
from tests.local.test_examples import IN_A_CLUSTER
from tests.support.plugin import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]


def workflow(name: str, *nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": "ghcr.io/shoal-dev/worker:0.1.0", "nodes": list(nodes), **spec},
    }


def jobs_and_pods(k8s_api: Any, namespace: str) -> tuple[list[str], list[str]]:
    from kubernetes import client

    batch = client.BatchV1Api(k8s_api)
    core = client.CoreV1Api(k8s_api)
    selector = "app.kubernetes.io/managed-by=shoal"
    jobs = [
        j.metadata.name for j in batch.list_namespaced_job(namespace, label_selector=selector).items
    ]
    pods = [
        p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items
    ]
    return jobs, pods


@pytest.mark.parametrize("example", sorted(IN_A_CLUSTER))
def test_example_via_kubectl_apply(
    example: str, kubectl: Kubectl, k8s_api: Any, namespace: str
) -> None:
    phase, check = IN_A_CLUSTER[example]
    kubectl("apply", "-f", str(REPO / "examples" / example), namespace=namespace)
    documents = yaml.safe_load_all((REPO / "examples" / example).read_text())
    [name] = [d["metadata"]["name"] for d in documents if d and d["kind"] == "Workflow"]
    body = wait_workflow(k8s_api, namespace, name, timeout=120)
    assert body["status"]["phase"] == phase, body["status"]
    check(as_run_result(body))
    nodes = len(run_spec(body)["nodes"])  # from a template: the nodes it expanded to
    assert body["status"]["progress"] == f"{nodes}/{nodes}"


def test_twenty_workflows_at_once_each_node_runs_once(
    k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    node = {
        "name": "mark",
        "command": ["sh", "-c", f'echo "$SHOAL_WORKFLOW" >> {marks}/"$SHOAL_WORKFLOW"'],
    }
    follow = {"name": "after", "job": "shoal.noop", "dependsOn": ["mark"]}
    names = [f"many-{i}" for i in range(20)]
    for name in names:
        create_workflow(
            k8s_api, namespace, workflow(name, node, follow, podGC={"strategy": "OnPodSuccess"})
        )
    for name in names:
        body = wait_workflow(k8s_api, namespace, name, timeout=180)
        assert body["status"]["phase"] == "Succeeded", body["status"]
    for name in names:
        assert (marks / name).read_text().splitlines() == [name]
    wait_until(lambda: jobs_and_pods(k8s_api, namespace) == ([], []), 60, "Jobs cleaned up")


def test_retries_exhausted_fail_with_attempt_count(k8s_api: Any, namespace: str) -> None:
    node = {
        "name": "always-fails",
        "command": ["sh", "-c", "echo trying; exit 4"],
        "retries": {"limit": 2, "backoffSeconds": 0.2},
    }
    create_workflow(k8s_api, namespace, workflow("retries", node))
    status = wait_workflow(k8s_api, namespace, "retries")["status"]
    failed = status["nodes"]["always-fails"]
    assert status["phase"] == "Failed"
    assert failed["attempts"] == 3
    assert failed["exitCode"] == 4
    assert "after 3 attempts" in failed["message"]


def test_non_zero_exit_reports_code_and_last_log_lines(k8s_api: Any, namespace: str) -> None:
    node = {"name": "bad", "command": ["sh", "-c", "echo first; echo the last words; exit 3"]}
    create_workflow(k8s_api, namespace, workflow("exit3", node))
    status = wait_workflow(k8s_api, namespace, "exit3")["status"]
    bad = status["nodes"]["bad"]
    assert (bad["phase"], bad["exitCode"]) == ("Failed", 3)
    assert "exit code 3" in bad["message"].lower()
    assert "the last words" in bad["message"]
    assert "node 'bad' failed" in status["message"]


def test_timeout_fails_the_node_quickly(k8s_api: Any, namespace: str) -> None:
    node = {"name": "slow", "command": ["sleep", "300"], "timeoutSeconds": 2}
    create_workflow(k8s_api, namespace, workflow("timeout", node))
    status = wait_workflow(k8s_api, namespace, "timeout", timeout=60)["status"]
    assert status["phase"] == "Failed"
    assert "timed out after 2s" in status["nodes"]["slow"]["message"]


def test_unschedulable_pod_fails_with_the_schedulers_reason(k8s_api: Any, namespace: str) -> None:
    node = {
        "name": "huge",
        "command": ["true"],
        "resources": {"requests": {"cpu": "1000"}},
    }
    create_workflow(k8s_api, namespace, workflow("unschedulable", node))
    status = wait_workflow(k8s_api, namespace, "unschedulable", timeout=90)["status"]
    message = status["nodes"]["huge"]["message"]
    assert status["phase"] == "Failed"
    assert "did not start within 15s" in message
    assert "Insufficient cpu" in message


def test_stop_deletes_running_pods_and_ends_stopped(k8s_api: Any, namespace: str) -> None:
    nodes = [
        {"name": "long", "command": ["sleep", "300"]},
        {"name": "never", "job": "shoal.noop", "dependsOn": ["long"]},
    ]
    create_workflow(k8s_api, namespace, workflow("to-stop", *nodes))
    wait_workflow(k8s_api, namespace, "to-stop", phases={"Running"})
    wait_until(lambda: jobs_and_pods(k8s_api, namespace)[1], 60, "the pod to exist")
    custom(k8s_api).patch_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", "to-stop", {"spec": {"stop": True}}
    )
    status = wait_workflow(k8s_api, namespace, "to-stop", timeout=90)["status"]
    assert status["phase"] == "Stopped"
    assert status["nodes"]["never"]["phase"] == "Omitted"
    wait_until(lambda: not jobs_and_pods(k8s_api, namespace)[1], 60, "pods to be gone")


@pytest.mark.parametrize(("field", "notify"), [("stop", "Succeeded"), ("terminate", "Omitted")])
def test_stop_runs_always_nodes_and_terminate_does_not(
    k8s_api: Any, namespace: str, field: str, notify: str
) -> None:
    # The catalog's promise: "always notify at the end", also when a user stops the run.
    name = f"to-{field}"
    nodes = [
        {"name": "long", "command": ["sleep", "300"]},
        {"name": "never", "job": "shoal.noop", "dependsOn": ["long"]},
        {"name": "notify", "job": "shoal.noop", "dependsOn": ["never"], "runPolicy": "always"},
    ]
    create_workflow(k8s_api, namespace, workflow(name, *nodes))
    wait_until(lambda: jobs_and_pods(k8s_api, namespace)[1], 60, "the pod to exist")
    custom(k8s_api).patch_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", name, {"spec": {field: True}}
    )
    status = wait_workflow(k8s_api, namespace, name, timeout=90)["status"]
    assert status["phase"] == "Stopped"
    assert status["nodes"]["never"]["phase"] == "Omitted"
    assert status["nodes"]["notify"]["phase"] == notify


def test_deleting_a_workflow_removes_its_jobs_and_pods(k8s_api: Any, namespace: str) -> None:
    create_workflow(
        k8s_api, namespace, workflow("to-delete", {"name": "long", "command": ["sleep", "300"]})
    )
    wait_until(lambda: jobs_and_pods(k8s_api, namespace)[1], 60, "the pod to exist")
    custom(k8s_api).delete_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", "to-delete"
    )
    wait_until(lambda: jobs_and_pods(k8s_api, namespace) == ([], []), 90, "Jobs and pods gone")


def test_invalid_workflow_ends_in_error_and_runs_nothing(k8s_api: Any, namespace: str) -> None:
    nodes = [
        {"name": "a", "job": "shoal.noop", "dependsOn": ["b"]},
        {"name": "b", "job": "shoal.noop", "dependsOn": ["a"]},
    ]
    create_workflow(k8s_api, namespace, workflow("cyclic", *nodes))
    status = wait_workflow(k8s_api, namespace, "cyclic")["status"]
    assert status["phase"] == "Error"
    assert "dependency cycle" in status["message"]
    assert jobs_and_pods(k8s_api, namespace) == ([], [])


def test_live_job_shape(k8s_api: Any, namespace: str) -> None:
    """A running attempt's Job: owned by its Workflow, labelled, no Job-level retries."""
    from kubernetes import client

    created = create_workflow(
        k8s_api, namespace, workflow("inspect", {"name": "slow", "command": ["sleep", "300"]})
    )
    jobs = wait_until(
        lambda: client.BatchV1Api(k8s_api).list_namespaced_job(namespace).items, 60, "a Job"
    )
    job = jobs[0]
    uid = created["metadata"]["uid"]
    assert job.spec.backoff_limit == 0
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.uid, owner.controller) == ("Workflow", uid, True)
    assert job.metadata.labels["shoal.dev/workflow-uid"] == uid
    assert job.metadata.labels["shoal.dev/node"] == "slow"
    assert job.metadata.name.startswith("inspect-slow-0-1-")
    assert len(job.metadata.name) <= 63
    pod_spec = job.spec.template.spec
    assert pod_spec.restart_policy == "Never"
    assert pod_spec.containers[0].termination_message_policy == "FallbackToLogsOnError"
    custom(k8s_api).patch_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", "inspect", {"spec": {"stop": True}}
    )
    assert wait_workflow(k8s_api, namespace, "inspect")["status"]["phase"] == "Stopped"


def test_large_args_travel_by_file_and_large_outputs_by_reference(
    k8s_api: Any, namespace: str
) -> None:
    note = "x" * 100_000  # far more than an env var or a command line should carry
    first = {"name": "echo", "job": "shoal.echo", "args": {"note": note}}
    # The next node gets the value back (the worker reads the reference) and echoes it.
    again = {
        "name": "again",
        "job": "shoal.echo",
        "dependsOn": ["echo"],
        "args": {"note": "${{ nodes.echo.outputs.note }}"},
    }
    create_workflow(k8s_api, namespace, workflow("big-args", first, again))
    body = wait_workflow(k8s_api, namespace, "big-args")
    nodes = body["status"]["nodes"]
    assert nodes["echo"]["phase"] == "Succeeded", nodes
    assert nodes["again"]["phase"] == "Succeeded", nodes
    ref = nodes["echo"]["outputs"]["note"]["$artifact"]
    copy = nodes["again"]["outputs"]["note"]["$artifact"]
    assert ref["size"] == len(note) + 2  # the JSON string, quotes included
    assert (copy["size"], copy["sha256"]) == (ref["size"], ref["sha256"])
    assert copy["key"] != ref["key"]
    assert len(json.dumps(body["status"])) < 4096  # the spec holds the 100 kB literal


def test_pod_deleted_from_outside_is_retried_as_infrastructure(
    k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    from kubernetes import client

    marker = tmp_path / "second-run"
    # The first attempt waits to be deleted; the retry finds the marker's folder and ends.
    script = f'if [ "$SHOAL_ATTEMPT" = 1 ]; then sleep 300; else touch {marker}; fi'
    node = {"name": "victim", "command": ["sh", "-c", script]}  # no `retries`: limit 0
    create_workflow(k8s_api, namespace, workflow("evicted", node))
    core = client.CoreV1Api(k8s_api)

    def running_pod() -> str | None:
        for pod in core.list_namespaced_pod(namespace).items:
            statuses = pod.status.container_statuses or []
            if statuses and statuses[0].state.running:
                return str(pod.metadata.name)
        return None

    pod = wait_until(running_pod, 60, "the first attempt to run")
    core.delete_namespaced_pod(pod, namespace)
    status = wait_workflow(k8s_api, namespace, "evicted", timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["nodes"]["victim"]["attempts"] == 2
    assert marker.exists()


def test_image_that_cannot_be_pulled_fails_with_the_kubelets_reason(
    k8s_api: Any, namespace: str
) -> None:
    node = {"name": "ghost", "image": "registry.invalid/nope:1", "command": ["true"]}
    create_workflow(k8s_api, namespace, workflow("pull", node))
    status = wait_workflow(k8s_api, namespace, "pull", timeout=90)["status"]
    message = status["nodes"]["ghost"]["message"]
    assert status["phase"] == "Failed"
    assert "ImagePullBackOff" in message or "ErrImagePull" in message


def test_workflow_deadline_on_the_cluster(k8s_api: Any, namespace: str) -> None:
    nodes = [
        {"name": "slow", "command": ["sleep", "300"]},
        {"name": "later", "job": "shoal.noop", "dependsOn": ["slow"]},
    ]
    create_workflow(k8s_api, namespace, workflow("deadline", *nodes, activeDeadlineSeconds=3))
    status = wait_workflow(k8s_api, namespace, "deadline", timeout=90)["status"]
    assert status["phase"] == "Failed"
    assert "activeDeadlineSeconds" in status["message"]
    assert status["nodes"]["later"]["phase"] == "Omitted"


def test_ttl_deletes_the_finished_workflow_and_its_failed_jobs(
    k8s_api: Any, namespace: str
) -> None:
    from kubernetes import watch

    node = {"name": "fails", "command": ["false"]}
    create_workflow(k8s_api, namespace, workflow("short-lived", node, ttlSecondsAfterFinished=2))
    assert wait_workflow(k8s_api, namespace, "short-lived")["status"]["phase"] == "Failed"
    deleted = False
    for event in watch.Watch().stream(
        custom(k8s_api).list_namespaced_custom_object,
        "shoal.dev",
        "v1alpha1",
        namespace,
        "workflows",
        field_selector="metadata.name=short-lived",
        timeout_seconds=60,
    ):
        if event["type"] == "DELETED":
            deleted = True
            break
    assert deleted, "the workflow outlived its TTL"
    wait_until(lambda: jobs_and_pods(k8s_api, namespace) == ([], []), 60, "failed Jobs gone")
