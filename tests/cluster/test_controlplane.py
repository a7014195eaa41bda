"""The control plane itself: what later tiers rely on, checked against the real thing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from support.plugin import Kubectl
from support.waits import job_condition, pod_phase, wait_for, wait_gone

pytestmark = pytest.mark.cluster


def _job(name: str, script: str, **spec: Any) -> client.V1Job:
    pod_spec = spec.pop("pod_spec", {})
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=spec.pop("backoff_limit", 0),
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[
                        client.V1Container(
                            name="main", image="busybox:1.36", command=["sh", "-c", script]
                        )
                    ],
                    **pod_spec,
                )
            ),
            **spec,
        ),
    )


def test_nodes_are_ready_with_capacity(k8s_api: Any) -> None:
    nodes = client.CoreV1Api(k8s_api).list_node().items
    assert nodes
    for node in nodes:
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready, node.metadata.name
        assert ready[0].status == "True"
        assert {"cpu", "memory", "pods"} <= set(node.status.allocatable)
        assert node.status.daemon_endpoints.kubelet_endpoint.port > 0


def test_job_completes_and_logs_stream_with_follow(
    namespace: str, k8s_api: Any, kubectl: Kubectl, tmp_path: Path
) -> None:
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    # The container holds its second line back until the test, having seen the first
    # one through `kubectl logs -f`, drops a file into a hostPath volume: the output
    # streams rather than arriving after the fact.
    script = (
        "echo first; i=0; "
        "while [ ! -e /signal/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
        "echo second"
    )
    job = _job("hello", script)
    pod_spec = job.spec.template.spec
    pod_spec.volumes = [
        client.V1Volume(name="work", host_path=client.V1HostPathVolumeSource(path=str(tmp_path)))
    ]
    pod_spec.containers[0].volume_mounts = [client.V1VolumeMount(name="work", mount_path="/signal")]
    batch.create_namespaced_job(namespace, job)
    pod = wait_for(
        core.list_namespaced_pod,
        namespace,
        label_selector="job-name=hello",
        predicate=pod_phase("Running"),
        description="the job's pod to run",
    )
    follower = kubectl.popen("logs", "-f", "job/hello", namespace=namespace)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first\n"
        assert core.read_namespaced_pod(pod.metadata.name, namespace).status.phase == "Running"
        (tmp_path / "go").touch()
        assert follower.stdout.readline() == "second\n"
        assert follower.wait(timeout=60) == 0
    finally:
        follower.kill()
        follower.wait()
    wait_for(
        batch.list_namespaced_job,
        namespace,
        field_selector="metadata.name=hello",
        predicate=job_condition("Complete"),
        description="job hello to complete",
    )
    pod = core.read_namespaced_pod(pod.metadata.name, namespace)
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert terminated.started_at <= terminated.finished_at
    # The non-follow options of pods/log go through the same kubelet endpoint.
    tail = core.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=1)
    assert tail == "second\n"
    stamped = core.read_namespaced_pod_log(pod.metadata.name, namespace, timestamps=True)
    lines = stamped.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "second"]
    assert lines[0].split(" ", 1)[0].endswith("Z")


def test_failing_container_fails_the_job_with_its_exit_code(namespace: str, k8s_api: Any) -> None:
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    job = _job(
        "fails",
        "echo about to fail >&2; echo 'bad input' > /dev/termination-log; exit 3",
        pod_failure_policy=client.V1PodFailurePolicy(
            rules=[
                client.V1PodFailurePolicyRule(
                    action="FailJob",
                    on_exit_codes=client.V1PodFailurePolicyOnExitCodesRequirement(
                        operator="In", values=[3]
                    ),
                )
            ]
        ),
    )
    batch.create_namespaced_job(namespace, job)
    failed = wait_for(
        batch.list_namespaced_job,
        namespace,
        field_selector="metadata.name=fails",
        predicate=job_condition("Failed"),
        description="job fails to fail",
    )
    condition = next(c for c in failed.status.conditions if c.type == "Failed")
    assert condition.reason == "PodFailurePolicy"
    assert "exit code 3" in condition.message
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=fails").items
    assert len(pods) == 1
    assert pods[0].status.phase == "Failed"
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert terminated.message == "bad input\n"
    assert core.read_namespaced_pod_log(pods[0].metadata.name, namespace) == "about to fail\n"


def test_deleting_a_job_removes_its_pod_through_the_garbage_collector(
    namespace: str, k8s_api: Any
) -> None:
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    job = _job(
        "long",
        "trap 'echo terminated; exit 0' TERM; sleep 600 & wait",
        pod_spec={"termination_grace_period_seconds": 30},
    )
    batch.create_namespaced_job(namespace, job)
    wait_for(
        core.list_namespaced_pod,
        namespace,
        label_selector="job-name=long",
        predicate=pod_phase("Running"),
        description="the job's pod to run",
    )
    started = time.monotonic()
    batch.delete_namespaced_job("long", namespace, propagation_policy="Background")
    wait_gone(
        core.list_namespaced_pod,
        namespace,
        label_selector="job-name=long",
        timeout=60,
        description="the job's pods to be garbage-collected",
    )
    # The shell exits on SIGTERM, so this is well under the 30s grace period.
    assert time.monotonic() - started < 20


def test_pod_larger_than_any_node_stays_pending_with_the_schedulers_reason(
    namespace: str, k8s_api: Any
) -> None:
    core = client.CoreV1Api(k8s_api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="huge"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="main",
                    image="busybox:1.36",
                    command=["true"],
                    resources=client.V1ResourceRequirements(requests={"cpu": "1000"}),
                )
            ]
        ),
    )
    core.create_namespaced_pod(namespace, pod)

    def unschedulable(p: Any) -> bool:
        conditions = (p.status and p.status.conditions) or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions)

    pending = wait_for(
        core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=huge",
        predicate=unschedulable,
        description="the scheduler to give up on pod huge",
    )
    condition = next(c for c in pending.status.conditions if c.type == "PodScheduled")
    assert condition.status == "False"
    assert "Insufficient cpu" in condition.message
    assert pending.status.phase == "Pending"
    assert pending.spec.node_name is None


def test_deployment_gets_a_running_ready_pod(namespace: str, k8s_api: Any) -> None:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    labels = {"app": "web"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=2,
                    containers=[
                        client.V1Container(
                            name="main",
                            image="busybox:1.36",
                            command=["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                        )
                    ],
                ),
            ),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)
    wait_for(
        apps.list_namespaced_deployment,
        namespace,
        field_selector="metadata.name=web",
        predicate=lambda d: (d.status.available_replicas or 0) == 1,
        description="deployment web to have an available replica",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert [p.status.phase for p in pods] == ["Running"]
    ready = next(c for c in pods[0].status.conditions if c.type == "Ready")
    assert ready.status == "True"
    assert pods[0].metadata.owner_references[0].kind == "ReplicaSet"


def test_service_account_can_do_what_its_role_allows_and_nothing_more(
    namespace: str, k8s_api: Any, kubectl: Kubectl
) -> None:
    core, rbac = client.CoreV1Api(k8s_api), client.RbacAuthorizationV1Api(k8s_api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-pods"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    # Inside the pod, kubectl finds the API server and the token the way any in-cluster
    # client does: KUBERNETES_SERVICE_* and /var/run/secrets/kubernetes.io/serviceaccount.
    k = str(kubectl.binary)
    script = (
        f"{k} get pods -o name >/dev/null && echo list-pods=allowed; "
        f"{k} get secrets 2>&1 | grep -q Forbidden && echo list-secrets=forbidden; "
        f"echo delete-pods=$({k} auth can-i delete pods); "
        f"echo whoami=$({k} auth whoami -o jsonpath='{{.status.userInfo.username}}')"
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="rbac-probe"),
        spec=client.V1PodSpec(
            service_account_name="reader",
            restart_policy="Never",
            containers=[
                client.V1Container(name="main", image="busybox:1.36", command=["sh", "-c", script])
            ],
        ),
    )
    core.create_namespaced_pod(namespace, pod)
    done = wait_for(
        core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=rbac-probe",
        predicate=pod_phase("Succeeded", "Failed"),
        description="the RBAC probe pod to finish",
    )
    output = core.read_namespaced_pod_log("rbac-probe", namespace)
    assert done.status.phase == "Succeeded", output
    assert output.splitlines() == [
        "list-pods=allowed",
        "list-secrets=forbidden",
        "delete-pods=no",
        f"whoami=system:serviceaccount:{namespace}:reader",
    ]
