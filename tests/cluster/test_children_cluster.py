"""Child workflows on the real control plane: a child's outputs reach its parent, the
child is owned by the parent and labelled with its depth, and a stop of the parent stops
the child.

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
    create_workflow,
    custom,
    get_workflow,
    load_manifest,
    start_operator,
    wait_until,
    wait_workflow,
)

pytestmark = pytest.mark.cluster

SHOAL = [sys.executable, "-m", "shoal.cli.main"]
IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"


def children_of(k8s_api: Any, namespace: str, uid: str) -> list[dict[str, Any]]:
    listing = custom(k8s_api).list_namespaced_custom_object(
        "shoal.dev",
        "v1alpha1",
        namespace,
        "workflows",
        label_selector=f"shoal.dev/parent-uid={uid}",
    )
    items: list[dict[str, Any]] = listing["items"]
    return items


def test_own_operator_a_child_workflows_outputs_reach_its_parent(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    try:
        parent = create_workflow(
            k8s_api, namespace, load_manifest(REPO / "examples" / "child-workflow.yaml")
        )
        body = wait_workflow(k8s_api, namespace, "child-workflow", timeout=240)
    finally:
        op.stop()
    status = body["status"]
    assert status["phase"] == "Succeeded", (status, log.read_text()[-4000:])
    assert status["nodes"]["report-per-region"]["outputs"] == {
        "count": {"region": "eu-west", "rows": 42}
    }
    assert status["nodes"]["publish"]["outputs"] == {"published": 42, "region": "eu-west"}
    [child] = children_of(k8s_api, namespace, parent["metadata"]["uid"])
    assert child["status"]["phase"] == "Succeeded"
    assert child["spec"]["parameters"] == {"region": "eu-west"}
    assert child["metadata"]["labels"]["shoal.dev/depth"] == "1"
    [owner] = child["metadata"]["ownerReferences"]
    assert owner["uid"] == parent["metadata"]["uid"]


def long_parent(name: str) -> dict[str, Any]:
    """A parent whose only node is a child that runs until stopped."""
    long_child = {"nodes": [{"name": "wait", "image": IMAGE, "command": ["sleep", "300"]}]}
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": IMAGE, "nodes": [{"name": "child", "workflow": {"spec": long_child}}]},
    }


def wait_child_running(k8s_api: Any, namespace: str, uid: str) -> None:
    def child_running() -> bool:
        found = children_of(k8s_api, namespace, uid)
        nodes = ((found[0].get("status") or {}).get("nodes") or {}) if found else {}
        return (nodes.get("wait") or {}).get("phase") == "Running"

    wait_until(child_running, 120, "the child's node to run")


def test_own_operator_stopping_the_parent_stops_the_child(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    try:
        parent = create_workflow(k8s_api, namespace, long_parent("parent"))
        uid = parent["metadata"]["uid"]
        wait_child_running(k8s_api, namespace, uid)
        argv = [*SHOAL, "stop", "parent", "-n", namespace, "--kubeconfig", str(kubeconfig)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 0, done.stderr
        body = wait_workflow(k8s_api, namespace, "parent", timeout=180)
        [child] = children_of(k8s_api, namespace, uid)
        child = get_workflow(k8s_api, namespace, child["metadata"]["name"])
    finally:
        op.stop()
    assert body["status"]["phase"] == "Stopped", log.read_text()[-4000:]
    assert body["status"]["nodes"]["child"]["phase"] == "Failed"
    assert child["spec"]["stop"] is True
    assert child["status"]["phase"] == "Stopped"


def test_own_operator_deleting_the_parent_deletes_the_child(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """The child is owned by its parent: the garbage collector deletes it with the parent."""
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    try:
        parent = create_workflow(k8s_api, namespace, long_parent("doomed"))
        uid = parent["metadata"]["uid"]
        wait_child_running(k8s_api, namespace, uid)
        custom(k8s_api).delete_namespaced_custom_object(
            "shoal.dev", "v1alpha1", namespace, "workflows", "doomed"
        )
        wait_until(lambda: not children_of(k8s_api, namespace, uid), 120, "the child to be gone")
    finally:
        op.stop()


def test_own_operator_a_parent_whose_operator_restarts_adopts_its_child_instead_of_making_another(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    short_child = {
        "nodes": [{"name": "wait", "image": IMAGE, "command": ["sleep", "4"]}],
    }
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "adopter"},
        "spec": {"image": IMAGE, "nodes": [{"name": "child", "workflow": {"spec": short_child}}]},
    }
    try:
        parent = create_workflow(k8s_api, namespace, doc)
        uid = parent["metadata"]["uid"]
        wait_child_running(k8s_api, namespace, uid)
        op.kill()
        op = start_operator(kubeconfig, namespace, log)
        body = wait_workflow(k8s_api, namespace, "adopter", timeout=180)
    finally:
        op.stop()
    assert body["status"]["phase"] == "Succeeded", log.read_text()[-4000:]
    [child] = children_of(k8s_api, namespace, uid)
    assert child["status"]["phase"] == "Succeeded"
    assert body["status"]["nodes"]["child"]["attempts"] == 1
