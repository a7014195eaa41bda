"""Exit handlers and retry policies on a real control plane (issue 20, items 1 and 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import create_workflow, custom, wait_until, wait_workflow
from tests.cluster.test_operator import jobs_and_pods, workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]

PAYLOAD = '{"status": "${{ workflow.status }}", "failures": ${{ workflow.failures }}}'


def handler(seen: Path) -> dict[str, Any]:
    """An exit handler that writes what it saw to `seen` (pods run as local processes)."""
    script = 'printf "%s" "$1" > "$2"'
    return {"name": "notify", "command": ["sh", "-c", script, "notify", PAYLOAD, str(seen)]}


@pytest.mark.parametrize(
    ("case", "work", "spec", "status", "failed"),
    [
        ("ok", "true", {}, "Succeeded", False),
        ("fail", "exit 3", {}, "Failed", True),
        ("stop", "sleep 300", {}, "Stopped", True),
        ("deadline", "sleep 300", {"activeDeadlineSeconds": 3}, "Failed", True),
    ],
)
def test_the_exit_handler_sees_how_the_run_ended(
    k8s_api: Any,
    namespace: str,
    tmp_path: Path,
    case: str,
    work: str,
    spec: dict[str, Any],
    status: str,
    failed: bool,
) -> None:
    seen = tmp_path / "seen.json"
    name = f"exit-{case}"
    nodes = [
        {"name": "work", "command": ["sh", "-c", work]},
        {"name": "after", "job": "shoal.noop", "dependsOn": ["work"]},
        handler(seen),
    ]
    create_workflow(k8s_api, namespace, workflow(name, *nodes, onExit="notify", **spec))
    if case == "stop":
        wait_until(lambda: jobs_and_pods(k8s_api, namespace)[1], 60, "the pod to exist")
        custom(k8s_api).patch_namespaced_custom_object(
            "shoal.dev", "v1alpha1", namespace, "workflows", name, {"spec": {"stop": True}}
        )
    body = wait_workflow(k8s_api, namespace, name, timeout=120)["status"]

    assert body["phase"] == status, body
    assert body["nodes"]["notify"]["phase"] == "Succeeded", body
    got = json.loads(seen.read_text())
    assert got["status"] == status
    assert [f["node"] for f in got["failures"]] == (["work"] if failed else [])


def test_terminate_skips_the_exit_handler(k8s_api: Any, namespace: str, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    nodes = [{"name": "work", "command": ["sleep", "300"]}, handler(seen)]
    create_workflow(k8s_api, namespace, workflow("exit-terminate", *nodes, onExit="notify"))
    wait_until(lambda: jobs_and_pods(k8s_api, namespace)[1], 60, "the pod to exist")
    custom(k8s_api).patch_namespaced_custom_object(
        "shoal.dev",
        "v1alpha1",
        namespace,
        "workflows",
        "exit-terminate",
        {"spec": {"terminate": True}},
    )
    body = wait_workflow(k8s_api, namespace, "exit-terminate", timeout=90)["status"]
    assert body["phase"] == "Stopped"
    assert body["nodes"]["notify"]["phase"] == "Omitted"
    assert not seen.exists()


@pytest.mark.parametrize(("policy", "attempts"), [("OnError", 1), ("OnFailure", 3)])
def test_a_retry_policy_retries_only_the_failures_it_names(
    k8s_api: Any, namespace: str, policy: str, attempts: int
) -> None:
    name = f"policy-{policy.lower()}"
    node = {
        "name": "flaky",
        "command": ["sh", "-c", "exit 4"],
        "retries": {"limit": 2, "backoffSeconds": 0.2, "retryPolicy": policy},
    }
    create_workflow(k8s_api, namespace, workflow(name, node))
    status = wait_workflow(k8s_api, namespace, name, timeout=90)["status"]
    assert status["phase"] == "Failed"
    assert status["nodes"]["flaky"]["attempts"] == attempts
