"""Approval gates and suspension on the real control plane: a gate waits with no pod,
survives its operator being killed, and goes on when `shoal resume` approves it; who
approved is recorded in the status. `shoal suspend` holds back the next node.

Each test drives its own operator, so its name starts with `test_own_operator`: the
session operator does not watch those namespaces (tests/cluster/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    REPO,
    OperatorProcess,
    create_workflow,
    get_workflow,
    start_operator,
    wait_until,
    wait_workflow,
)

pytestmark = pytest.mark.cluster

SHOAL = [sys.executable, "-m", "shoal.cli.main"]
IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"


def shoal(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*SHOAL, *args, "-n", namespace, "--kubeconfig", str(kubeconfig)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def emit(key: str, value: str) -> list[str]:
    line = f'{{"type":"output","key":"{key}","value":{value}}}'
    script = f"echo \"@shoal/2:$SHOAL_PROTOCOL_TOKEN \"'{line}'"
    return ["sh", "-c", script]


def gated(name: str) -> dict[str, Any]:
    nodes = [
        {"name": "build", "command": emit("artifact", '"app-1"')},
        {"name": "approve", "dependsOn": ["build"], "suspend": {}},
        {
            "name": "deploy",
            "dependsOn": ["approve"],
            "command": emit("by", '"${{ nodes.approve.outputs.by }}"'),
        },
    ]
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": IMAGE, "nodes": nodes},
    }


def node_phase(k8s_api: Any, namespace: str, name: str, node: str) -> str | None:
    status = get_workflow(k8s_api, namespace, name).get("status") or {}
    phase: str | None = ((status.get("nodes") or {}).get(node) or {}).get("phase")
    return phase


def test_own_operator_a_gate_waits_survives_an_operator_restart_and_continues_on_resume(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    op: OperatorProcess = start_operator(kubeconfig, namespace, log)
    try:
        create_workflow(k8s_api, namespace, gated("gated"))
        wait_until(
            lambda: node_phase(k8s_api, namespace, "gated", "approve") == "Running",
            120,
            "the gate to wait",
        )
        op.kill()  # the decision must not depend on the operator that saw the gate start
        op = start_operator(kubeconfig, namespace, log)
        # A resume asks for a gate that is waiting; nothing else decides this one.
        early = get_workflow(k8s_api, namespace, "gated")
        assert early["status"]["phase"] == "Running"
        assert early["status"]["nodes"]["deploy"]["phase"] == "Pending"

        done = shoal(kubeconfig, namespace, "resume", "gated", "--message", "ship it")
        assert done.returncode == 0, done.stderr
        assert "gate approve approved by" in done.stdout
        body = wait_workflow(k8s_api, namespace, "gated", timeout=180)
    finally:
        op.stop()
    status = body["status"]
    assert status["phase"] == "Succeeded", (status, log.read_text()[-4000:])
    gate = status["nodes"]["approve"]["outputs"]
    assert gate["approved"] is True
    assert gate["message"] == "ship it"
    assert gate["by"]  # the caller's Kubernetes user name
    assert gate["timedOut"] is False
    assert status["nodes"]["deploy"]["outputs"] == {"by": gate["by"]}
    assert body["spec"]["approvals"]["approve"]["decision"] == "Approved"


def test_own_operator_a_rejected_gate_fails_the_run_and_resume_refuses_a_node_that_is_no_gate(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    try:
        create_workflow(k8s_api, namespace, gated("rejected"))
        refused = shoal(kubeconfig, namespace, "resume", "rejected", "--node", "build")
        assert refused.returncode == 1
        assert "'build'" in refused.stderr
        assert "not an approval gate" in refused.stderr
        wait_until(
            lambda: node_phase(k8s_api, namespace, "rejected", "approve") == "Running",
            120,
            "the gate to wait",
        )
        done = shoal(kubeconfig, namespace, "resume", "rejected", "--reject")
        assert done.returncode == 0, done.stderr
        body = wait_workflow(k8s_api, namespace, "rejected", timeout=120)
    finally:
        op.stop()
    status = body["status"]
    assert status["phase"] == "Failed"
    assert status["nodes"]["approve"]["phase"] == "Failed"
    assert status["nodes"]["approve"]["message"].startswith("rejected by ")
    assert status["nodes"]["deploy"]["phase"] == "Omitted"


def test_own_operator_suspend_holds_back_the_next_node_until_resume(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "held"},
        "spec": {
            "image": IMAGE,
            "suspend": True,  # suspended from the start: nothing may start
            "nodes": [{"name": "first", "command": emit("n", "1")}],
        },
    }
    try:
        create_workflow(k8s_api, namespace, doc)
        wait_until(
            lambda: (
                (get_workflow(k8s_api, namespace, "held").get("status") or {}).get("phase")
                == "Running"
            ),
            60,
            "the run to start",
        )
        assert node_phase(k8s_api, namespace, "held", "first") in (None, "Pending")
        done = shoal(kubeconfig, namespace, "resume", "held")
        assert done.returncode == 0, done.stderr
        assert "resumed" in done.stdout
        body = wait_workflow(k8s_api, namespace, "held", timeout=120)
    finally:
        op.stop()
    assert body["status"]["phase"] == "Succeeded"
    assert body["spec"]["suspend"] is False
