"""Reading worker pods (shoal.kube.pods): how an attempt ended, or why it is stuck.

The fixtures are shaped like what the API server returns for a Job's pod (GET or watch
event): metadata with the Job controller's labels and owner reference, the spec as
defaulted by the API server, and a status as the kubelet and scheduler write it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shoal.kube.naming import job_name, task_labels
from shoal.kube.pods import (
    PodView,
    end_reason,
    is_infrastructure_failure,
    parse_time,
    pending_problem,
    read_pod,
)

WF = "catalog-integration"
WF_UID = "3d5b8e0c-1a2f-4c6d-9e7f-0a1b2c3d4e5f"
JOB = job_name(WF, WF_UID, "integration", 4, 2)
JOB_UID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
POD = f"{JOB}-x7k2p"
IMAGE = "registry.example.com/acme/jobs:1.4.2"
CREATED = "2026-03-02T10:15:00Z"
STARTED = "2026-03-02T10:15:04Z"
FINISHED = "2026-03-02T10:16:41Z"
CONTAINER_ID = "containerd://4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
IMAGE_ID = f"{IMAGE.rsplit(':', 1)[0]}@sha256:" + "ab" * 32


def base_pod(memory_limit: str | None = "256Mi") -> dict[str, Any]:
    """A Job's pod as created, before any status (what every fixture starts from)."""
    resources: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    if memory_limit is not None:
        resources["limits"] = {"memory": memory_limit}
    labels = {
        **task_labels(WF, WF_UID, "integration", 4, 2),
        "batch.kubernetes.io/controller-uid": JOB_UID,
        "batch.kubernetes.io/job-name": JOB,
        "controller-uid": JOB_UID,
        "job-name": JOB,
    }
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": POD,
            "generateName": f"{JOB}-",
            "namespace": "data-pipelines",
            "uid": "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
            "resourceVersion": "48213",
            "creationTimestamp": CREATED,
            "labels": labels,
            "annotations": {"shoal.dev/args": '{"market":"de"}'},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": JOB,
                    "uid": JOB_UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
        },
        "spec": {
            "volumes": [
                {
                    "name": "shoal-args",
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "args.json",
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.annotations['shoal.dev/args']",
                                },
                            }
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "command": ["shoal-worker"],
                    "args": ["run", "--job", "integration", "--args-file", "/etc/shoal/args.json"],
                    "resources": resources,
                    "volumeMounts": [
                        {"name": "shoal-args", "readOnly": True, "mountPath": "/etc/shoal"}
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {
                        "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                    },
                }
            ],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {
                "runAsUser": 65532,
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": False,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def scheduled(pod: dict[str, Any], node: str = "worker-2") -> dict[str, Any]:
    pod["spec"]["nodeName"] = node
    return pod


def conditions(
    *, initialized: bool = True, ready: bool = False, scheduled: bool = True
) -> list[dict[str, Any]]:
    def cond(kind: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": STARTED,
        }
        if reason and not ok:
            entry["reason"] = reason
        return entry

    return [
        cond("PodReadyToStartContainers", initialized),
        cond("Initialized", initialized),
        cond("Ready", ready, "ContainersNotReady"),
        cond("ContainersReady", ready, "ContainersNotReady"),
        cond("PodScheduled", scheduled),
    ]


def container_status(state: dict[str, Any], *, started: bool = False) -> dict[str, Any]:
    return {
        "name": "main",
        "state": state,
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": IMAGE,
        "imageID": IMAGE_ID if started else "",
        **({"containerID": CONTAINER_ID} if started else {}),
        "started": False,
    }


def on_node(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "hostIP": "10.0.3.12",
        "hostIPs": [{"ip": "10.0.3.12"}],
        "podIP": "10.244.2.17",
        "podIPs": [{"ip": "10.244.2.17"}],
        "startTime": STARTED,
        "qosClass": "Burstable",
        **status,
    }


def terminated(exit_code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": STARTED,
        "finishedAt": FINISHED,
        "containerID": CONTAINER_ID,
    }
    if message is not None:
        state["message"] = message
    return {"terminated": state}


# --- the fixtures ----------------------------------------------------------------------------

SCHEDULER_MESSAGE = (
    "0/3 nodes are available: 1 node(s) had untolerated taint "
    "{node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 nodes "
    "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims "
    "found for incoming pod."
)
RESULT = '{"v":1,"status":"succeeded","outputs":{"count":42},"message":""}'
LOG_TAIL = 'Traceback (most recent call last):\n  File "job.py", line 3\nValueError: bad market\n'
EVICTION = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91028Ki. "
    "Container main was using 1843292Ki, request is 128Mi, has larger consumption of memory. "
)


def pending_unschedulable() -> dict[str, Any]:
    pod = base_pod()
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-03-02T10:15:00Z",
                "reason": "Unschedulable",
                "message": SCHEDULER_MESSAGE,
            }
        ],
        "qosClass": "Burstable",
    }
    return pod


def image_pull_backoff() -> dict[str, Any]:
    pod = scheduled(base_pod())
    waiting = {
        "waiting": {
            "reason": "ImagePullBackOff",
            "message": f'Back-off pulling image "{IMAGE}"',
        }
    }
    pod["status"] = on_node(
        {
            "phase": "Pending",
            "conditions": conditions(ready=False),
            "containerStatuses": [container_status(waiting)],
        }
    )
    pod["status"].pop("podIP")
    pod["status"].pop("podIPs")
    return pod


def running() -> dict[str, Any]:
    pod = scheduled(base_pod())
    status = container_status({"running": {"startedAt": STARTED}}, started=True)
    status.update(ready=True, started=True)
    pod["status"] = on_node(
        {
            "phase": "Running",
            "conditions": conditions(ready=True),
            "containerStatuses": [status],
        }
    )
    return pod


def completed() -> dict[str, Any]:
    pod = scheduled(base_pod())
    pod["status"] = on_node(
        {
            "phase": "Succeeded",
            "conditions": conditions(ready=False),
            "containerStatuses": [
                container_status(terminated(0, "Completed", RESULT), started=True)
            ],
        }
    )
    return pod


def error_exit_3() -> dict[str, Any]:
    pod = scheduled(base_pod())
    pod["status"] = on_node(
        {
            "phase": "Failed",
            "conditions": conditions(ready=False),
            "containerStatuses": [container_status(terminated(3, "Error", LOG_TAIL), started=True)],
        }
    )
    return pod


def oom_killed(limit: str | None = "256Mi") -> dict[str, Any]:
    pod = scheduled(base_pod(memory_limit=limit))
    pod["status"] = on_node(
        {
            "phase": "Failed",
            "conditions": conditions(ready=False),
            "containerStatuses": [container_status(terminated(137, "OOMKilled"), started=True)],
        }
    )
    return pod


def evicted() -> dict[str, Any]:
    """An evicted pod as the kubelet leaves it: pod-level reason, no container state."""
    pod = scheduled(base_pod())
    pod["status"] = {
        "phase": "Failed",
        "message": EVICTION,
        "reason": "Evicted",
        "startTime": STARTED,
        "qosClass": "Burstable",
    }
    return pod


def evicted_container_unknown() -> dict[str, Any]:
    """Eviction on a recent kubelet: the container is reported terminated as well
    (ContainerStatusUnknown, exit 137), and a DisruptionTarget condition is set."""
    pod = scheduled(base_pod())
    state = {
        "terminated": {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated",
            "startedAt": None,
            "finishedAt": None,
        }
    }
    pod["status"] = on_node(
        {
            "phase": "Failed",
            "message": EVICTION,
            "reason": "Evicted",
            "conditions": [
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": FINISHED,
                    "reason": "TerminationByKubelet",
                    "message": EVICTION,
                },
                *conditions(ready=False),
            ],
            "containerStatuses": [container_status(state, started=True)],
        }
    )
    return pod


def disrupted_without_reason() -> dict[str, Any]:
    """A pod the kubelet terminated for node pressure whose status carries no pod-level
    reason, only the DisruptionTarget condition (seen when container statuses sync late)."""
    pod = evicted_container_unknown()
    del pod["status"]["reason"]
    del pod["status"]["message"]
    return pod


def being_deleted() -> dict[str, Any]:
    pod = running()
    pod["metadata"]["deletionTimestamp"] = "2026-03-02T10:16:00Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 30
    return pod


def deleted_after_sigterm() -> dict[str, Any]:
    """Deleted from outside (kubectl delete pod): SIGTERM ended the worker, exit 143."""
    pod = error_exit_3()
    pod["metadata"]["deletionTimestamp"] = "2026-03-02T10:16:40Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 30
    pod["status"]["containerStatuses"] = [
        container_status(terminated(143, "Error", "terminated"), started=True)
    ]
    return pod


def view(pod: dict[str, Any]) -> PodView:
    # Round-trip through JSON: exactly what arrives from the API server, nothing shared.
    result = read_pod(json.loads(json.dumps(pod)))
    assert result is not None
    return result


# --- read_pod --------------------------------------------------------------------------------


def test_identity_comes_from_the_labels_and_metadata() -> None:
    v = view(running())
    assert v.name == POD
    assert v.uid == "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"
    assert v.workflow_uid == WF_UID
    assert v.key == ("integration", 4, 2)
    assert (v.node, v.index, v.attempt) == ("integration", 4, 2)
    assert v.created_at == parse_time(CREATED)
    assert v.memory_limit == "256Mi"


def test_pending_unschedulable_carries_the_schedulers_message() -> None:
    v = view(pending_unschedulable())
    assert v.phase == "Pending"
    assert v.unschedulable == SCHEDULER_MESSAGE
    assert not v.running
    assert not v.terminated
    assert v.exit_code is None
    assert v.started_at is None
    assert pending_problem(v) == f"Unschedulable: {SCHEDULER_MESSAGE}"
    assert end_reason(v) is None
    assert not is_infrastructure_failure(v)


def test_an_unschedulable_condition_without_message_still_says_why() -> None:
    pod = pending_unschedulable()
    del pod["status"]["conditions"][0]["message"]
    assert pending_problem(view(pod)) == "Unschedulable: Unschedulable"


def test_image_pull_backoff_is_a_pending_problem_with_the_kubelets_message() -> None:
    v = view(image_pull_backoff())
    assert v.phase == "Pending"
    assert v.unschedulable is None
    assert v.waiting_reason == "ImagePullBackOff"
    assert pending_problem(v) == f'ImagePullBackOff: Back-off pulling image "{IMAGE}"'
    assert not v.terminated
    assert not v.running


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "InvalidImageName", "CreateContainerConfigError"]
)
def test_other_stuck_waiting_reasons_are_pending_problems(reason: str) -> None:
    pod = image_pull_backoff()
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": reason}}
    assert pending_problem(view(pod)) == reason


def test_container_creating_is_not_a_problem_yet() -> None:
    pod = image_pull_backoff()
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert pending_problem(view(pod)) is None


def test_a_fresh_pod_without_status_reads_as_pending() -> None:
    pod = base_pod()
    del pod["status"]
    v = view(pod)
    assert v.phase == "Pending"
    assert pending_problem(v) is None
    assert not v.terminated


def test_running() -> None:
    v = view(running())
    assert v.phase == "Running"
    assert v.running
    assert not v.terminated
    assert v.started_at == parse_time(STARTED)
    assert v.finished_at is None
    assert pending_problem(v) is None
    assert end_reason(v) is None
    assert not v.deleted


def test_completed_with_exit_0_and_a_termination_message() -> None:
    v = view(completed())
    assert v.phase == "Succeeded"
    assert v.terminated
    assert not v.running
    assert v.exit_code == 0
    assert v.reason == "Completed"
    assert v.termination_message == RESULT
    assert v.started_at == parse_time(STARTED)
    assert v.finished_at == parse_time(FINISHED)
    assert end_reason(v) is None
    assert not is_infrastructure_failure(v)


def test_error_exit_3() -> None:
    v = view(error_exit_3())
    assert v.phase == "Failed"
    assert v.terminated
    assert v.exit_code == 3
    assert v.reason == "Error"
    assert v.termination_message == LOG_TAIL  # FallbackToLogsOnError: the log's tail
    assert end_reason(v) is None  # the job's own output explains it
    assert not is_infrastructure_failure(v)


def test_a_container_seen_terminated_before_the_pod_phase_moves_is_terminated() -> None:
    pod = running()
    pod["status"]["containerStatuses"][0]["state"] = terminated(0, "Completed", RESULT)
    v = view(pod)
    assert v.phase == "Running"
    assert v.terminated
    assert not v.running


def test_oom_killed_mentions_the_memory_limit() -> None:
    v = view(oom_killed())
    assert v.exit_code == 137
    assert v.reason == "OOMKilled"
    assert v.memory_limit == "256Mi"
    message = end_reason(v)
    assert message is not None
    assert "OOMKilled" in message
    assert "256Mi" in message
    assert not is_infrastructure_failure(v)  # the job used too much: its own failure


def test_oom_killed_without_a_limit_still_says_oom() -> None:
    v = view(oom_killed(limit=None))
    assert v.memory_limit is None
    message = end_reason(v)
    assert message is not None
    assert message.startswith("OOMKilled")


def test_evicted_pod_level_reason_without_container_state() -> None:
    v = view(evicted())
    assert v.phase == "Failed"
    assert v.terminated
    assert v.exit_code is None
    assert v.reason == "Evicted"
    assert v.message == EVICTION
    assert is_infrastructure_failure(v)
    message = end_reason(v)
    assert message is not None
    assert message.startswith("pod Evicted: The node was low on resource: memory")


def test_evicted_with_a_container_reported_lost_is_still_an_eviction() -> None:
    v = view(evicted_container_unknown())
    assert v.terminated
    assert v.exit_code == 137
    assert v.reason == "Evicted"
    assert is_infrastructure_failure(v)
    message = end_reason(v)
    assert message is not None
    assert "Evicted" in message
    assert "low on resource: memory" in message


def test_a_disruption_target_condition_marks_an_infrastructure_failure() -> None:
    v = view(disrupted_without_reason())
    assert is_infrastructure_failure(v)
    message = end_reason(v)
    assert message is not None
    assert "TerminationByKubelet" in message
    assert "low on resource: memory" in message


def test_a_disruption_of_a_pod_that_completed_is_not_a_failure_reason() -> None:
    pod = completed()
    pod["status"]["conditions"].insert(
        0,
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        },
    )
    v = view(pod)
    assert v.exit_code == 0
    assert v.phase == "Succeeded"


@pytest.mark.parametrize("reason", ["NodeLost", "Preempting", "Shutdown", "Terminated"])
def test_other_pod_level_infrastructure_reasons(reason: str) -> None:
    pod = evicted()
    pod["status"]["reason"] = reason
    pod["status"]["message"] = f"pod {reason.lower()}"
    v = view(pod)
    assert is_infrastructure_failure(v)
    assert end_reason(v) == f"pod {reason}: pod {reason.lower()}"


def test_a_failed_pod_without_a_container_exit_is_an_infrastructure_failure() -> None:
    pod = evicted()
    del pod["status"]["reason"]
    del pod["status"]["message"]
    v = view(pod)
    assert is_infrastructure_failure(v)
    assert end_reason(v) == "pod failed without a container exit: unknown"


def test_a_pod_deadline_is_reported_as_a_timeout() -> None:
    pod = evicted()
    pod["status"]["reason"] = "DeadlineExceeded"
    pod["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    v = view(pod)
    message = end_reason(v)
    assert message is not None
    assert "activeDeadlineSeconds" in message


def test_a_pod_deadline_wins_over_the_killed_containers_reason() -> None:
    pod = error_exit_3()
    pod["status"]["reason"] = "DeadlineExceeded"
    pod["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    pod["status"]["containerStatuses"] = [container_status(terminated(137, "Error"), started=True)]
    v = view(pod)
    assert v.exit_code == 137
    assert v.reason == "DeadlineExceeded"
    message = end_reason(v)
    assert message is not None
    assert "activeDeadlineSeconds" in message


def test_deletion_timestamp_marks_the_pod_deleted() -> None:
    v = view(being_deleted())
    assert v.deleted
    assert v.running  # still running until the grace period ends


def test_deleted_after_sigterm_is_terminated_and_deleted() -> None:
    v = view(deleted_after_sigterm())
    assert v.deleted
    assert v.terminated
    assert v.exit_code == 143


def test_last_state_is_used_when_the_current_state_is_empty() -> None:
    pod = error_exit_3()
    status = pod["status"]["containerStatuses"][0]
    status["lastState"], status["state"] = status["state"], {}
    v = view(pod)
    assert v.exit_code == 3


def test_the_worker_container_is_found_by_name_beside_an_injected_sidecar() -> None:
    """A service mesh injects a proxy; the kubelet lists container statuses by name, so
    `istio-proxy` comes before `main` and is still running after the worker has ended."""
    pod = completed()
    pod["spec"]["containers"].append(
        {
            "name": "istio-proxy",
            "image": "docker.io/istio/proxyv2:1.22.0",
            "resources": {"limits": {"memory": "1Gi"}},
        }
    )
    proxy = container_status({"running": {"startedAt": STARTED}}, started=True)
    proxy.update(name="istio-proxy", image="docker.io/istio/proxyv2:1.22.0", ready=True)
    pod["status"]["phase"] = "Running"
    pod["status"]["containerStatuses"].insert(0, proxy)
    v = view(pod)
    assert v.terminated
    assert v.exit_code == 0
    assert v.termination_message == RESULT
    assert v.memory_limit == "256Mi"


# --- pods that are not Shoal's ---------------------------------------------------------------


def test_a_pod_without_shoal_labels_is_none() -> None:
    pod = running()
    pod["metadata"]["labels"] = {"job-name": JOB, "controller-uid": JOB_UID}
    assert read_pod(pod) is None


@pytest.mark.parametrize(
    "label", ["shoal.dev/node", "shoal.dev/item", "shoal.dev/attempt", "shoal.dev/workflow-uid"]
)
def test_a_pod_missing_any_routing_label_is_none(label: str) -> None:
    pod = running()
    del pod["metadata"]["labels"][label]
    assert read_pod(pod) is None


@pytest.mark.parametrize(("label", "value"), [("shoal.dev/item", "x"), ("shoal.dev/attempt", "")])
def test_a_pod_with_a_malformed_number_label_is_none(label: str, value: str) -> None:
    pod = running()
    pod["metadata"]["labels"][label] = value
    assert read_pod(pod) is None


def test_a_pod_without_metadata_is_none() -> None:
    assert read_pod({}) is None
    assert read_pod({"metadata": {"labels": None}}) is None


def test_read_pod_does_not_change_its_input() -> None:
    for fixture in (pending_unschedulable, running, completed, oom_killed, evicted):
        pod = fixture()
        before = copy.deepcopy(pod)
        read_pod(pod)
        assert pod == before
