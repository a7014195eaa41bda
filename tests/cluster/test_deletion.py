"""Deleting a Workflow never waits on the operator (issue 13: it hung on a finalizer).

Only Workflows whose artifacts are collected on deletion carry a finalizer (covered in
test_artifacts.py); every other one is deleted by the API server at once, with or
without a running operator, and its Jobs and pods follow through owner references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    ArtifactBucket,
    create_workflow,
    custom,
    get_workflow,
    start_operator,
    wait_until,
    wait_workflow,
    workflow_exists,
)
from tests.support.plugin import Kubectl

pytestmark = pytest.mark.cluster
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workflows"


def long_workflow(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"nodes": [{"name": "wait", "command": ["sleep", "300"]}]},
    }


def gone(k8s_api: Any, namespace: str, name: str) -> bool:
    return not workflow_exists(k8s_api, namespace, name)


def running(k8s_api: Any, namespace: str, name: str) -> bool:
    body = get_workflow(k8s_api, namespace, name)
    node = ((body.get("status") or {}).get("nodes") or {}).get("wait") or {}
    return node.get("phase") == "Running"


def delete(k8s_api: Any, namespace: str, name: str) -> None:
    custom(k8s_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def test_own_operator_a_workflow_deleted_while_the_operator_is_down_is_gone(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    try:
        create_workflow(k8s_api, namespace, long_workflow("orphan"))
        wait_until(lambda: running(k8s_api, namespace, "orphan"), 60, "its node to run")
        body = get_workflow(k8s_api, namespace, "orphan")
        assert not body["metadata"].get("finalizers"), body["metadata"]
        op.kill()
        delete(k8s_api, namespace, "orphan")
        # Nothing of Shoal's runs now: the API server alone completes the deletion.
        wait_until(lambda: gone(k8s_api, namespace, "orphan"), 30, "the Workflow to be gone")
    finally:
        op.stop()


def test_own_operator_deleting_a_running_workflow_stops_its_run(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """The runner of a deleted Workflow stops: a new Workflow of the same name runs alone
    and the operator logs no error about the old one."""
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    try:
        create_workflow(k8s_api, namespace, long_workflow("again"))
        wait_until(lambda: running(k8s_api, namespace, "again"), 60, "its node to run")
        delete(k8s_api, namespace, "again")
        wait_until(lambda: gone(k8s_api, namespace, "again"), 30, "the Workflow to be gone")
        doc = long_workflow("again")
        doc["spec"]["nodes"][0]["command"] = ["true"]
        create_workflow(k8s_api, namespace, doc)
        status = wait_workflow(k8s_api, namespace, "again", timeout=90)["status"]
        assert status["phase"] == "Succeeded", status
        assert status["nodes"]["wait"]["attempts"] == 1, status
        output = op.output()
        assert "Traceback" not in output, output
        assert "status write for" not in output, output
    finally:
        op.stop()


def test_own_operator_gone_for_good_the_documented_patch_releases_a_gc_workflow(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    kubectl: Kubectl,
    namespace: str,
    artifact_store: ArtifactBucket,
    tmp_path: Path,
) -> None:
    """`artifacts.gc: OnDeletion` keeps a finalizer (the artifacts go first); with its
    operator gone, the command docs/operator.md gives completes the deletion."""
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log", artifact_store)
    try:
        doc = long_workflow("kept")
        doc["spec"]["artifacts"] = {"gc": "OnDeletion"}
        create_workflow(k8s_api, namespace, doc)
        wait_until(lambda: running(k8s_api, namespace, "kept"), 60, "its node to run")
        finalizers = get_workflow(k8s_api, namespace, "kept")["metadata"].get("finalizers")
        assert finalizers == ["shoal.dev/finalizer"]
        op.kill()
        delete(k8s_api, namespace, "kept")
        body = get_workflow(k8s_api, namespace, "kept")
        assert body["metadata"].get("deletionTimestamp"), "the finalizer should hold it"
        kubectl(
            *("patch", "workflow", "kept", "--type=merge"),
            *("-p", '{"metadata":{"finalizers":null}}'),
            namespace=namespace,
        )
        wait_until(lambda: gone(k8s_api, namespace, "kept"), 30, "the Workflow to be gone")
    finally:
        op.stop()
