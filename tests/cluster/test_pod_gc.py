"""Pod clean-up (`spec.podGC`) on the real control plane, with no log archive.

What a user relies on: after a small workflow finishes, `shoal logs NAME NODE` still
prints its lines from the kept pod; with `OnPodSuccess` the pods go and `shoal logs` says
which strategy removed them; a large fan-out at the default keeps at most
MAX_KEPT_SUCCEEDED_PODS succeeded pods, not one per item. Every wait is on a cluster
condition (a phase, a deletion observed), never a sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from shoal.api.limits import MAX_KEPT_SUCCEEDED_PODS
from tests.cluster.conftest import wait_until, wait_workflow
from tests.cluster.test_cli import Shoal, manifest, ok, shoal
from tests.support.waits import wait_gone

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]
__all__ = ["shoal"]  # the CLI fixture, shared with test_cli

SAY = {"name": "say", "command": ["sh", "-c", "echo first line; echo second line"]}


def _uid(k8s_api: Any, namespace: str, name: str) -> str:
    body = client.CustomObjectsApi(k8s_api).get_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", name
    )
    return str(body["metadata"]["uid"])


def _jobs(k8s_api: Any, namespace: str, uid: str) -> list[Any]:
    selector = f"shoal.dev/workflow-uid={uid}"
    batch = client.BatchV1Api(k8s_api)
    return list(batch.list_namespaced_job(namespace, label_selector=selector).items)


def test_a_finished_workflows_logs_stay_readable_and_on_pod_success_says_why_they_are_gone(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    # The same node twice: `kept` at the default, `gone` with OnPodSuccess. Once `gone`'s
    # pods are seen deleted, the operator has carried out the clean-up `kept` went through.
    ok(shoal("submit", str(manifest(tmp_path, "kept", SAY))))
    gone_file = manifest(tmp_path, "gone", SAY, podGC={"strategy": "OnPodSuccess"})
    ok(shoal("submit", str(gone_file)))
    for name in ("kept", "gone"):
        assert wait_workflow(k8s_api, namespace, name)["status"]["phase"] == "Succeeded"
    wait_gone(
        client.CoreV1Api(k8s_api).list_namespaced_pod,
        namespace,
        label_selector="shoal.dev/workflow=gone",
        timeout=60,
        description="OnPodSuccess to delete the succeeded node's pods",
    )

    printed = ok(shoal("logs", "kept", "say"))
    assert printed.stdout.splitlines() == ["first line", "second line"]
    assert len(_jobs(k8s_api, namespace, _uid(k8s_api, namespace, "kept"))) == 1

    missing = ok(shoal("logs", "gone", "say"), 1)
    assert missing.stdout == ""
    assert "no log for say: the pods are gone: podGC strategy OnPodSuccess" in missing.stderr
    assert "spec.podGC.strategy: Never" in missing.stderr


def test_on_workflow_completion_deletes_every_job_when_the_run_ends(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    path = manifest(
        tmp_path,
        "ending",
        SAY,
        {"name": "after", "command": ["sh", "-c", "echo after"], "dependsOn": ["say"]},
        podGC={"strategy": "OnWorkflowCompletion"},
    )
    ok(shoal("submit", str(path)))
    assert wait_workflow(k8s_api, namespace, "ending")["status"]["phase"] == "Succeeded"
    uid = _uid(k8s_api, namespace, "ending")
    wait_until(lambda: not _jobs(k8s_api, namespace, uid), 60, "every Job of the run to go")
    missing = ok(shoal("logs", "ending"), 1)
    assert "podGC strategy OnWorkflowCompletion" in missing.stderr


def test_a_150_item_fan_out_at_the_default_keeps_at_most_the_bound(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    items = 150
    fan = {"name": "fan", "command": ["sh", "-c", "echo item $SHOAL_ITEM_INDEX"]}
    path = manifest(tmp_path, "wide", {**fan, "forEach": list(range(items))}, parallelism=20)
    ok(shoal("submit", str(path)))
    body = wait_workflow(k8s_api, namespace, "wide", timeout=600)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    uid = body["metadata"]["uid"]

    def kept() -> list[int] | None:
        jobs = _jobs(k8s_api, namespace, uid)
        indices = sorted(int(j.metadata.labels["shoal.dev/item"]) for j in jobs)
        return indices if len(indices) <= MAX_KEPT_SUCCEEDED_PODS else None

    indices = wait_until(kept, 120, f"at most {MAX_KEPT_SUCCEEDED_PODS} Jobs to be left")
    assert indices == list(range(MAX_KEPT_SUCCEEDED_PODS))
    wait_until(
        lambda: (
            len(
                client.CoreV1Api(k8s_api)
                .list_namespaced_pod(namespace, label_selector=f"shoal.dev/workflow-uid={uid}")
                .items
            )
            <= MAX_KEPT_SUCCEEDED_PODS
        ),
        120,
        "the deleted Jobs' pods to go",
    )
    # A kept item's log is readable; a deleted one's says why it is gone.
    assert ok(shoal("logs", "wide", "fan", "--item", "7")).stdout.splitlines() == ["item 7"]
    missing = ok(shoal("logs", "wide", "fan", "--item", "120"), 1)
    assert f"default podGC keeps at most {MAX_KEPT_SUCCEEDED_PODS}" in missing.stderr
