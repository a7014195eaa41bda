"""Pod objects shaped like what the API server returns for a worker Job's pod.

Each builder returns a fresh dict (GET or watch-event form): metadata with the Job
controller's labels and owner reference, the spec as defaulted by the API server, and a
status as the scheduler and kubelet write it. Shared by the pod and attempt tests.
"""

from __future__ import annotations

from typing import Any

from shoal.kube.naming import job_name, task_labels

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
RESULT = (
    '{"v":2,"token":"c0ffee00c0ffee00c0ffee00c0ffee00","status":"succeeded",'
    '"outputs":{"count":42},"message":""}'
)
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
