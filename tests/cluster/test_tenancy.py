"""Tenancy on a real control plane: forged pods, and the ServiceAccounts a node may use.

Issue 13: a pod created in another namespace with a victim's labels and a result in
`/dev/termination-log` completed the victim's node with its forged outputs; a node could
run as any ServiceAccount of its namespace, the operator's own included. Each test runs
an operator of its own (the `test_own_operator_` prefix keeps the session's operator out
of its namespaces), with its metrics endpoint on, to read the impostor counter.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal.kube.attempts import LOG_DRAIN_SECONDS
from tests.cluster.conftest import (
    OperatorProcess,
    create_workflow,
    get_workflow,
    start_operator,
    wait_until,
    wait_workflow,
)
from tests.support.procs import free_port
from tests.support.waits import pod_phase, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

WORKER_IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"
SHOAL_WORKER = Path(sys.executable).parent / "shoal-worker"
REAL = {"who": "real"}
FORGED = {"who": "forged"}
FORGED_RESULT = json.dumps({"v": 1, "status": "succeeded", "outputs": FORGED, "message": ""})


class Operator:
    """An operator of the test's own, with /metrics on a free loopback port."""

    def __init__(self, process: OperatorProcess, port: int) -> None:
        self.process = process
        self.port = port

    def counter(self, name: str, **labels: str) -> float:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0


@pytest.fixture
def own_operator(kubeconfig: Path, tmp_path: Path) -> Iterator[Any]:
    """A factory: start an operator for these namespaces, stopped after the test."""
    started: list[OperatorProcess] = []

    def start(namespaces: list[str], *args: str, env: dict[str, str] | None = None) -> Operator:
        port = free_port()
        # One --namespace each: within one kopf pattern, commas do not make a union.
        more = [arg for ns in namespaces[1:] for arg in ("--namespace", ns)]
        process = start_operator(
            kubeconfig,
            namespaces[0],
            tmp_path / "operator.log",
            extra_args=[*more, "--metrics-port", str(port), "--metrics-host", "127.0.0.1", *args],
            extra_env=env,
        )
        started.append(process)
        operator = Operator(process, port)

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "the operator's /readyz")
        return operator

    yield start
    for process in started:
        process.stop()
        print(f"operator log:\n{process.output()}")  # shown when the test failed


@pytest.fixture
def other_namespace(k8s_api: Any) -> Iterator[str]:
    """A second tenant's namespace (the session's operator ignores it by its name)."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    name = f"t-test-own-operator-tenant-b-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        core.list_namespaced_service_account,
        name,
        predicate=lambda sa: sa.metadata.name == "default",
        field_selector="metadata.name=default",
        timeout=30,
        description=f"{name}'s default ServiceAccount",
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)


def victim_workflow(name: str, gate: Path) -> dict[str, Any]:
    """One node that waits (bounded: 60 s) for `gate` to exist, then returns REAL through
    the worker SDK, so the impostor appears while the victim's pod is running."""
    wait = f"i=0; while [ ! -e {gate} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
    run = f"exec {SHOAL_WORKER} run --job shoal.echo --args '{json.dumps(REAL)}'"
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "image": WORKER_IMAGE,
            "nodes": [{"name": "a", "command": ["sh", "-c", f"{wait}; {run}"]}],
        },
    }


def forged_pod(name: str, labels: dict[str, str], owner: dict[str, Any] | None) -> dict[str, Any]:
    """A pod any tenant may create: restricted-compliant, an image Shoal never uses,
    the victim's labels, and a worker-shaped result in its termination log."""
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example.com/tenant-b/forge:1",
                    "command": [
                        "sh",
                        "-c",
                        f"printf '%s' '{FORGED_RESULT}' > /dev/termination-log",
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True,
                    },
                }
            ],
        },
    }


def running_victim_pod(k8s_api: Any, namespace: str, uid: str) -> Any:
    from kubernetes import client

    return wait_for(
        client.CoreV1Api(k8s_api).list_namespaced_pod,
        namespace,
        label_selector=f"shoal.dev/workflow-uid={uid}",
        predicate=pod_phase("Running"),
        timeout=60,
        description="the victim's pod to run",
    )


HOLD_SECONDS = LOG_DRAIN_SECONDS + 3
"""How long the victim is watched, untouched, after the impostor ended. Before the fix a
forged pod's end completed the victim once its log follower had been given
LOG_DRAIN_SECONDS to end: watching longer than that makes the test fail on that code.
(A negative observation needs a window; every positive wait here is on a condition.)"""


def assert_victim_unaffected_then_release(
    k8s_api: Any, namespace: str, name: str, gate: Path
) -> dict[str, Any]:
    """The victim stays Running on its first attempt, then ends with its own result."""
    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        status = get_workflow(k8s_api, namespace, name).get("status") or {}
        node = (status.get("nodes") or {}).get("a") or {}
        assert status.get("phase") == "Running", status
        assert (node.get("phase"), node.get("attempts")) == ("Running", 1), status
        time.sleep(0.2)
    gate.touch()
    return wait_workflow(k8s_api, namespace, name, timeout=90)


def test_own_operator_ignores_a_forged_pod_from_another_namespace(
    k8s_api: Any, namespace: str, other_namespace: str, own_operator: Any, tmp_path: Path
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    # The operator watches both tenants' namespaces, as a shared install does.
    operator = own_operator([namespace, other_namespace])
    gate = tmp_path / "go"
    uid = create_workflow(k8s_api, namespace, victim_workflow("victim", gate))["metadata"]["uid"]
    victim = running_victim_pod(k8s_api, namespace, uid)

    core.create_namespaced_pod(
        other_namespace, forged_pod("forged", dict(victim.metadata.labels), owner=None)
    )
    forged = wait_for(
        core.list_namespaced_pod,
        other_namespace,
        field_selector="metadata.name=forged",
        predicate=pod_phase("Succeeded"),
        timeout=60,
        description="the forged pod to end",
    )
    message = forged.status.container_statuses[0].state.terminated.message
    assert json.loads(message)["outputs"] == FORGED  # the forged result was there to take
    wait_until(
        lambda: operator.counter("shoal_impostors_ignored_total", kind="pod") >= 1,
        30,
        "the impostor to be counted",
    )

    body = assert_victim_unaffected_then_release(k8s_api, namespace, "victim", gate)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["nodes"]["a"]["outputs"] == REAL
    assert body["status"]["nodes"]["a"]["attempts"] == 1
    assert "ignored impostor pod: pod " + other_namespace + "/forged" in operator.process.output()


def test_own_operator_ignores_a_pod_of_the_same_namespace_owned_by_a_bogus_job_uid(
    k8s_api: Any, namespace: str, own_operator: Any, tmp_path: Path
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    operator = own_operator([namespace])
    gate = tmp_path / "go"
    uid = create_workflow(k8s_api, namespace, victim_workflow("victim", gate))["metadata"]["uid"]
    victim = running_victim_pod(k8s_api, namespace, uid)
    real_owner = victim.metadata.owner_references[0]
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": real_owner.name,  # the victim's Job by name, under a uid nobody created
        "uid": "00000000-0000-4000-8000-000000000000",
        "controller": True,
    }
    core.create_namespaced_pod(namespace, forged_pod("forged", dict(victim.metadata.labels), owner))
    # The garbage collector deletes a pod whose owner does not exist, perhaps before it
    # runs: either way the operator sees it claim the attempt, and ignores it.
    wait_until(
        lambda: operator.counter("shoal_impostors_ignored_total", kind="pod") >= 1,
        30,
        "the impostor to be counted",
    )
    body = assert_victim_unaffected_then_release(k8s_api, namespace, "victim", gate)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["nodes"]["a"]["outputs"] == REAL
    # Not even a retry: the victim's only attempt was its own pod.
    assert body["status"]["nodes"]["a"]["attempts"] == 1


def noop(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "job": "shoal.noop", **fields}


def workflow(name: str, *nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": WORKER_IMAGE, "nodes": list(nodes), **spec},
    }


def jobs_of(k8s_api: Any, namespace: str, uid: str) -> list[Any]:
    from kubernetes import client

    jobs = client.BatchV1Api(k8s_api).list_namespaced_job(
        namespace, label_selector=f"shoal.dev/workflow-uid={uid}"
    )
    return list(jobs.items)


def test_own_operator_runs_nodes_only_as_allowed_service_accounts(
    k8s_api: Any, namespace: str, own_operator: Any
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    for sa, labels in (
        ("listed", None),
        ("labelled", {"shoal.dev/workflow-runner": "true"}),
        ("plain", None),
        ("shoal-operator", None),
    ):
        core.create_namespaced_service_account(
            namespace,
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa, labels=labels)),
        )
    own_operator(
        [namespace],
        # Even listed, the operator's own account stays forbidden.
        "--allowed-service-accounts",
        "listed,shoal-operator",
        "--service-account-selector",
        "shoal.dev/workflow-runner=true",
        "--keep-succeeded-jobs",
        env={"POD_NAMESPACE": namespace, "POD_SERVICE_ACCOUNT": "shoal-operator"},
    )

    refused = create_workflow(
        k8s_api, namespace, workflow("refused", noop("a"), noop("b", serviceAccountName="plain"))
    )
    as_operator = create_workflow(
        k8s_api,
        namespace,
        workflow("as-operator", noop("a"), defaults={"serviceAccountName": "shoal-operator"}),
    )
    allowed = create_workflow(
        k8s_api,
        namespace,
        workflow(
            "allowed",
            noop("inherits"),
            noop("labelled", serviceAccountName="labelled"),
            noop("default", serviceAccountName="default"),
            noop("token", serviceAccountName="default", automountServiceAccountToken=True),
            defaults={"serviceAccountName": "listed"},
        ),
    )

    body = wait_workflow(k8s_api, namespace, "refused", timeout=60)
    assert body["status"]["phase"] == "Error"
    message = body["status"]["message"]
    assert message.startswith(
        'node "b" (nodes[1].serviceAccountName): ServiceAccount "plain" is not allowed; '
        'allowed: "default", "listed", "shoal-operator", or one labelled '
        "shoal.dev/workflow-runner=true"
    ), message
    assert "never the operator's own" in message
    body = wait_workflow(k8s_api, namespace, "as-operator", timeout=60)
    assert body["status"]["phase"] == "Error"
    assert body["status"]["message"].startswith(
        'node "a" (defaults.serviceAccountName): ServiceAccount "shoal-operator" is the '
        "operator's own ServiceAccount"
    )
    for doc in (refused, as_operator):
        assert jobs_of(k8s_api, namespace, doc["metadata"]["uid"]) == []

    def refusal_event() -> bool:
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=refused"
        ).items
        return any(
            e.reason == "ServiceAccountNotAllowed" and "nodes[1]" in e.message for e in events
        )

    wait_until(refusal_event, 30, "the ServiceAccountNotAllowed Event")

    body = wait_workflow(k8s_api, namespace, "allowed", timeout=90)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    pods = {
        pod.metadata.labels["shoal.dev/node"]: pod.spec
        for job in jobs_of(k8s_api, namespace, allowed["metadata"]["uid"])
        for pod in core.list_namespaced_pod(
            namespace, label_selector=f"batch.kubernetes.io/job-name={job.metadata.name}"
        ).items
    }
    assert {node: spec.service_account_name for node, spec in pods.items()} == {
        "inherits": "listed",
        "labelled": "labelled",
        "default": "default",
        "token": "default",
    }
    assert {node: spec.automount_service_account_token for node, spec in pods.items()} == {
        "inherits": False,
        "labelled": False,
        "default": False,
        "token": True,
    }
