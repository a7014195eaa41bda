"""Templates on the real control plane (docs/templates.md): a run keeps the template as
it was when it started, a missing template fails a submission with its name, and a
ClusterWorkflowTemplate serves every namespace."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    GROUP,
    REPO,
    VERSION,
    ArtifactBucket,
    create_workflow,
    custom,
    get_workflow,
    wait_until,
    wait_workflow,
    workflow_exists,
)
from tests.cluster.test_cli import IMAGE, Shoal, ok, wait_for_file

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]

TEMPLATE_CRDS = ("workflowtemplates.shoal.dev", "clusterworkflowtemplates.shoal.dev")


@pytest.fixture(scope="module", autouse=True)
def template_crds(crds: None, k8s_api: Any) -> None:
    """The template CRDs (applied with the others by `crds`), Established."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(k8s_api)

    def established(name: str) -> bool:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for name in TEMPLATE_CRDS:
        wait_until(lambda name=name: established(name), 60, f"CRD {name} to be Established")


@pytest.fixture
def shoal(kubeconfig: Path, namespace: str) -> Shoal:
    return Shoal(kubeconfig, namespace)


def template_doc(
    name: str, *nodes: dict[str, Any], kind: str = "WorkflowTemplate"
) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"image": IMAGE, "parameters": {"word": "original"}, "nodes": list(nodes)},
    }


def from_template(name: str, template: str, **ref: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"workflowTemplateRef": {"name": template, **ref}},
    }


def test_editing_a_template_leaves_a_running_workflow_unchanged(
    k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    say = {
        "name": "say",
        "dependsOn": ["hold"],
        "command": ["echo", "${{ params.word }}"],
        "captureStdout": True,
    }
    hold = {"name": "hold", "command": ["sh", "-c", wait_for_file(str(go))]}
    objects = custom(k8s_api)
    created = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflowtemplates", template_doc("stages", hold, say)
    )
    create_workflow(k8s_api, namespace, from_template("first", "stages"))
    # Started: the operator recorded what it resolved; `hold` blocks until `go` exists.
    started = wait_until(
        lambda: (get_workflow(k8s_api, namespace, "first").get("status") or {}).get("templates"),
        60,
        "the resolved spec in the status",
    )
    assert started[0]["resourceVersion"] == created["metadata"]["resourceVersion"]

    edited = {**say, "command": ["echo", "edited"]}
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "workflowtemplates",
        "stages",
        {"spec": {"nodes": [hold, edited]}},
    )
    go.touch()
    first = wait_workflow(k8s_api, namespace, "first", timeout=120)["status"]
    assert first["phase"] == "Succeeded", first
    assert first["nodes"]["say"]["outputs"] == {"result": "original"}

    create_workflow(k8s_api, namespace, from_template("second", "stages"))
    second = wait_workflow(k8s_api, namespace, "second", timeout=120)["status"]
    assert second["nodes"]["say"]["outputs"] == {"result": "edited"}  # new runs see the edit


def test_a_deleted_template_fails_a_new_submission_with_its_name(
    k8s_api: Any, namespace: str, shoal: Shoal, tmp_path: Path
) -> None:
    ok(shoal("template", "create", str(REPO / "examples" / "templates.yaml")))
    listed = ok(shoal("template", "list")).stdout
    assert listed.splitlines()[1].split()[:2] == ["greeting", "2"]
    assert "compose" in ok(shoal("template", "get", "greeting")).stdout

    wf = tmp_path / "hello.yaml"
    body = from_template("hello", "greeting")
    body["spec"]["parameters"] = {"who": "cluster"}
    wf.write_text(json.dumps(body))
    ok(shoal("submit", str(wf), "--watch", "--timeout", "120"))
    status = get_workflow(k8s_api, namespace, "hello")["status"]
    assert status["nodes"]["shout"]["outputs"] == {"result": "HELLO, CLUSTER!"}

    custom(k8s_api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflowtemplates", "greeting"
    )
    body["metadata"]["name"] = "hello-again"
    wf.write_text(json.dumps(body))
    refused = ok(shoal("submit", str(wf)), code=2)
    assert "WorkflowTemplate 'greeting' not found" in refused.stderr
    assert not workflow_exists(k8s_api, namespace, "hello-again")

    # Created anyway (no webhook here): the operator fails it, naming the template.
    create_workflow(k8s_api, namespace, body)
    failed = wait_workflow(k8s_api, namespace, "hello-again", timeout=60)["status"]
    assert failed["phase"] == "Error"
    assert "WorkflowTemplate 'greeting' not found" in failed["message"]


@pytest.fixture
def second_namespace(k8s_api: Any, artifact_store: ArtifactBucket) -> Iterator[str]:
    """Another namespace the session's operator watches (`t-*`), ready for pods."""
    from kubernetes import client, watch

    core = client.CoreV1Api(k8s_api)
    name = f"t-templates-other-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        for _ in watch.Watch().stream(
            core.list_namespaced_service_account,
            name,
            field_selector="metadata.name=default",
            timeout_seconds=30,
        ):
            break
        artifact_store.create_credentials_secret(core, name)
        yield name
    finally:
        with contextlib.suppress(Exception):
            core.delete_namespace(name, propagation_policy="Background")


def test_a_cluster_workflow_template_serves_every_namespace(
    k8s_api: Any, namespace: str, second_namespace: str
) -> None:
    name = f"shared-{secrets.token_hex(3)}"
    say = {"name": "say", "command": ["echo", "${{ params.word }}"], "captureStdout": True}
    objects = custom(k8s_api)
    objects.create_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterworkflowtemplates",
        template_doc(name, say, kind="ClusterWorkflowTemplate"),
    )
    try:
        whole = from_template("whole", name, clusterScope=True)
        whole["spec"]["parameters"] = {"word": "whole"}
        create_workflow(k8s_api, namespace, whole)
        reuse = {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "reuse"},
            "spec": {
                "image": IMAGE,
                "nodes": [
                    {
                        "name": "hi",
                        "templateRef": {"name": name, "node": "say", "clusterScope": True},
                        "parameters": {"word": "elsewhere"},
                    }
                ],
            },
        }
        create_workflow(k8s_api, second_namespace, reuse)
        one = wait_workflow(k8s_api, namespace, "whole", timeout=120)["status"]
        two = wait_workflow(k8s_api, second_namespace, "reuse", timeout=120)["status"]
        assert one["nodes"]["say"]["outputs"] == {"result": "whole"}
        assert two["nodes"]["hi"]["outputs"] == {"result": "elsewhere"}
        assert two["templates"][0]["kind"] == "ClusterWorkflowTemplate"
    finally:
        objects.delete_cluster_custom_object(GROUP, VERSION, "clusterworkflowtemplates", name)


def test_a_cron_workflow_stamps_runs_from_a_template(
    k8s_api: Any, namespace: str, shoal: Shoal
) -> None:
    say = {"name": "say", "command": ["echo", "${{ params.word }}"], "captureStdout": True}
    objects = custom(k8s_api)
    objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflowtemplates", template_doc("nightly-steps", say)
    )
    cron = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 0 1 1 *",
            "suspend": True,  # only the manual run below
            "workflowSpec": {"workflowTemplateRef": {"name": "nightly-steps"}},
        },
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "cronworkflows", cron)
    created = ok(shoal("trigger", "nightly", "-p", "word=stamped")).stdout
    run = created.split()[1]  # "workflow NAME created"
    status = wait_workflow(k8s_api, namespace, run, timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["nodes"]["say"]["outputs"] == {"result": "stamped"}
    assert status["templates"][0]["name"] == "nightly-steps"
