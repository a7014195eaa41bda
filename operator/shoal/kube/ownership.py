"""Which Jobs and pods are Shoal's own: namespace and controller ownership, never labels.

Labels are written by whoever creates an object, so a pod anywhere can carry a
Workflow's `shoal.dev/workflow-uid`. What a tenant in another namespace cannot do is
make a pod in the Workflow's namespace, or give its own pod an owner there: owner
references never cross namespaces. So an attempt accepts a pod only when the pod is in
the Workflow's namespace and its controller owner is the Job whose uid the API server
returned when the operator created it; a Job counts only when it is in that namespace
and its controller owner is the Workflow's uid. (pure: no API calls)
"""

from __future__ import annotations

from typing import Any

WORKFLOW_API_GROUP = "shoal.dev"
JOB_API_VERSION = "batch/v1"


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The owner reference marked `controller: true`, if any (Kubernetes allows one)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def job_problem(job: dict[str, Any], namespace: str, workflow_uid: str) -> str | None:
    """None when `job` belongs to the Workflow `workflow_uid` of `namespace`; else why not."""
    found = (job.get("metadata") or {}).get("namespace")
    if found != namespace:
        return f"it is in namespace {found!r}, not the Workflow's {namespace!r}"
    ref = controller_ref(job)
    if ref is None:
        return "it has no controller owner"
    group = str(ref.get("apiVersion") or "").split("/", 1)[0]
    if ref.get("kind") != "Workflow" or group != WORKFLOW_API_GROUP:
        return f"its controller is a {ref.get('kind')} ({ref.get('apiVersion')}), not a Workflow"
    if ref.get("uid") != workflow_uid:
        return "its controller is another Workflow (owner uid differs)"
    return None


def pod_problem(pod: dict[str, Any], namespace: str, job_uid: str) -> str | None:
    """None when `pod` is the attempt's own; else why it is not.

    The attempt's own pod is in the Workflow's `namespace` and controlled by the Job
    `job_uid` (the uid the API server gave the Job the operator created).
    """
    found = (pod.get("metadata") or {}).get("namespace")
    if found != namespace:
        return f"it is in namespace {found!r}, not the Workflow's {namespace!r}"
    ref = controller_ref(pod)
    if ref is None:
        return "it has no controller owner"
    if ref.get("kind") != "Job" or ref.get("apiVersion") != JOB_API_VERSION:
        return f"its controller is a {ref.get('kind')} ({ref.get('apiVersion')}), not a Job"
    if ref.get("uid") != job_uid:
        return "its controller is not the Job the operator created for this attempt"
    return None


def in_namespace(obj: dict[str, Any], namespace: str) -> bool:
    return (obj.get("metadata") or {}).get("namespace") == namespace
