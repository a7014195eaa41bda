"""The REST API's actions and node views on the real control plane, as two RBAC users:
terminate, resubmit with overrides, trigger with an idempotency key, a CronWorkflow's
next and recent fires, node attempts read from pods, a Workflow's Events.

Reuses test_server.py's server and users (A: read/write in namespace A; B: read-only
Workflows in namespace B). No operator runs: pods and Events are made by the test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shoal.reruns import FROM, manual_run_name
from tests.cluster.conftest import create_workflow
from tests.cluster.test_server import Server, _created, server, workflow
from tests.support.plugin import Kubectl

__all__ = ["server"]

pytestmark = [pytest.mark.cluster]


def _jsonpath(kubectl: Kubectl, kind: str, name: str, path: str, namespace: str) -> str:
    return kubectl("get", kind, name, "-o", f"jsonpath={path}", namespace=namespace).stdout


def test_terminate_as_rbac_allows_and_seen_by_kubectl(
    server: Server, k8s_api: Any, kubectl: Kubectl
) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    _created(k8s_api, a, "to-terminate")
    _created(k8s_api, b, "theirs")
    refused = server.call("POST", f"/api/v1/workflows/{b}/theirs/terminate", "b")
    assert refused.status_code == 403, refused.text
    assert "patch" in refused.json()["message"]
    done = server.call("POST", f"/api/v1/workflows/{a}/to-terminate/terminate", "a")
    assert done.status_code == 200, done.text
    assert _jsonpath(kubectl, "workflow", "to-terminate", "{.spec.terminate}", a) == "true"
    assert _jsonpath(kubectl, "workflow", "to-terminate", "{.spec.stop}", a) == ""
    assert _jsonpath(kubectl, "workflow", "theirs", "{.spec.terminate}", b) == ""


def test_resubmit_overrides_parameters_and_says_where_from(
    server: Server, k8s_api: Any, kubectl: Kubectl
) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    original = workflow("original", team="blue")
    original["spec"]["parameters"] = {"day": "mon", "size": 1}
    create_workflow(k8s_api, a, original)
    _created(k8s_api, b, "read-only")
    made = server.call(
        "POST",
        f"/api/v1/workflows/{a}/original/resubmit",
        "a",
        json={"parameters": {"day": "tue"}, "name": "original-again"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["name"] == "original-again"
    params = _jsonpath(kubectl, "workflow", "original-again", "{.spec.parameters}", a)
    assert '"day":"tue"' in params.replace(" ", "")
    assert '"size":1' in params.replace(" ", "")
    labels = _jsonpath(kubectl, "workflow", "original-again", "{.metadata.labels}", a)
    assert f'"{FROM}":"original"' in labels
    assert '"team":"blue"' in labels
    # Once more with the same name: Kubernetes' conflict, in the one error shape.
    again = server.call(
        "POST", f"/api/v1/workflows/{a}/original/resubmit", "a", json={"name": "original-again"}
    )
    assert again.status_code == 409
    assert set(again.json()) >= {"code", "message"}
    # Read-only user: may read it, may not create the copy.
    denied = server.call("POST", f"/api/v1/workflows/{b}/read-only/resubmit", "b")
    assert denied.status_code == 403
    assert "create" in denied.json()["message"]
    missing = server.call("POST", f"/api/v1/workflows/{a}/never-was/resubmit", "a")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NotFound"  # no archive configured: the cluster's answer


def _cron(k8s_api: Any, namespace: str, name: str) -> None:
    from kubernetes import client

    body = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 3 * * *",
            "timezone": "Europe/Paris",
            "workflowSpec": {**workflow("x")["spec"], "parameters": {"why": "scheduled"}},
        },
    }
    client.CustomObjectsApi(k8s_api).create_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "cronworkflows", body
    )


def test_trigger_is_idempotent_by_key_and_fires_are_listed(
    server: Server, k8s_api: Any, kubectl: Kubectl
) -> None:
    from zoneinfo import ZoneInfo

    a, b = server.namespaces["a"], server.namespaces["b"]
    _cron(k8s_api, a, "daily")
    path = f"/api/v1/cronworkflows/{a}/daily"
    unknown = server.call("POST", f"{path}/trigger", "a", json={"parameters": {"nope": 1}})
    assert unknown.status_code == 422  # validated as `shoal trigger` does: nothing created
    assert "nope" in unknown.json()["message"]
    key = {"idempotencyKey": "deploy-42", "parameters": {"why": "hotfix"}}
    first = server.call("POST", f"{path}/trigger", "a", json=key)
    assert first.status_code == 201, first.text
    run = first.json()["metadata"]["name"]
    assert run == manual_run_name("daily", "deploy-42")  # the CLI's name for the same key
    repeated = server.call("POST", f"{path}/trigger", "a", json=key)
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["metadata"]["name"] == run
    runs = kubectl(
        "get", "workflows", "-l", "shoal.dev/cron-workflow=daily", "-o", "name", namespace=a
    )
    assert runs.stdout.split() == [f"workflow.shoal.dev/{run}"]
    assert '"why":"hotfix"' in _jsonpath(kubectl, "workflow", run, "{.spec.parameters}", a).replace(
        " ", ""
    )
    detail = server.call("GET", f"{path}?next=3", "a")
    assert detail.status_code == 200, detail.text
    fires = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in detail.json()["nextFires"]]
    assert len(fires) == 3
    assert fires == sorted(fires)
    assert all(f.astimezone(ZoneInfo("Europe/Paris")).hour == 3 for f in fires)
    recent = detail.json()["recentFires"]
    assert [(r["metadata"]["name"], r["trigger"]) for r in recent] == [(run, "manual")]
    assert server.call("GET", f"{path}?next=1000", "a").status_code == 400  # bounded
    # B may not read (or trigger) CronWorkflows in A, nor in its own namespace.
    assert server.call("POST", f"{path}/trigger", "b").status_code == 403
    assert server.call("GET", f"/api/v1/cronworkflows/{b}/daily", "b").status_code == 403


def _pod(k8s_api: Any, namespace: str, name: str, labels: dict[str, str], script: str) -> None:
    from kubernetes import client

    client.CoreV1Api(k8s_api).create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[
                    client.V1Container(
                        name="main", image="busybox:1.36", command=["sh", "-c", script]
                    )
                ],
            ),
        ),
    )


def test_node_attempts_and_events(server: Server, k8s_api: Any) -> None:
    from kubernetes import client
    from support.waits import pod_phase, wait_for

    from shoal.kube.naming import LABEL_ATTEMPT, LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID

    a, b = server.namespaces["a"], server.namespaces["b"]
    body = create_workflow(k8s_api, a, workflow("attempted"))
    uid = body["metadata"]["uid"]
    _created(k8s_api, b, "not-attempted")
    core = client.CoreV1Api(k8s_api)
    for attempt, script in (("1", "exit 3"), ("2", "exec sleep 60")):
        labels = {
            LABEL_WORKFLOW_UID: uid,
            LABEL_NODE: "hello",
            LABEL_ITEM: "0",
            LABEL_ATTEMPT: attempt,
        }
        _pod(k8s_api, a, f"attempted-hello-{attempt}", labels, script)
    for name, phase in (("attempted-hello-1", "Failed"), ("attempted-hello-2", "Running")):
        wait_for(
            core.list_namespaced_pod,
            a,
            field_selector=f"metadata.name={name}",
            predicate=pod_phase(phase),
            timeout=60,
            description=f"pod {name} {phase}",
        )
    got = server.call("GET", f"/api/v1/workflows/{a}/attempted/nodes/hello/attempts", "a")
    assert got.status_code == 200, got.text
    page = got.json()
    assert page["archive"] == "not-configured"
    rows = [
        (r["item"], r["attempt"], r["phase"], r.get("exitCode"), r["source"]) for r in page["items"]
    ]
    assert rows == [(0, 1, "Failed", 3, "cluster"), (0, 2, "Running", None, "cluster")]
    missing = server.call("GET", f"/api/v1/workflows/{a}/attempted/nodes/nope/attempts", "a")
    assert missing.status_code == 404
    denied = server.call("GET", f"/api/v1/workflows/{b}/not-attempted/nodes/hello/attempts", "b")
    assert denied.status_code == 403
    assert "pods" in denied.json()["message"]
    core.create_namespaced_event(
        a,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="attempted.1"),
            involved_object=client.V1ObjectReference(
                kind="Workflow",
                name="attempted",
                namespace=a,
                uid=uid,
                api_version="shoal.dev/v1alpha1",
            ),
            reason="NodeFailed",
            message="node hello failed (exit code 3)",
            type="Warning",
            first_timestamp=datetime.now().astimezone(),
            last_timestamp=datetime.now().astimezone(),
        ),
    )
    events = server.call("GET", f"/api/v1/workflows/{a}/attempted/events", "a")
    assert events.status_code == 200, events.text
    assert [(e["reason"], e["type"]) for e in events.json()["items"]] == [("NodeFailed", "Warning")]
    assert server.call("GET", f"/api/v1/workflows/{b}/not-attempted/events", "b").status_code == 403
