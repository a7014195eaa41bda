"""Building the batch/v1 Job for one attempt of one node or item (pure: no API calls).

Choices that matter:
- `backoffLimit: 0` and `restartPolicy: Never`: retries are Shoal's decision (with its
  backoff and its attempt numbers), never the Job controller's.
- Arguments travel in a pod annotation mounted as a file through the downward API, so
  they are never an oversize environment variable or command line.
- The pod meets the Pod Security "restricted" profile unless the operator is configured
  otherwise: non-root, no privilege escalation, all capabilities dropped, RuntimeDefault
  seccomp.
- No service account token is mounted unless the node (or `defaults`) asks for one.
- Every pod setting comes from the compiled node (`node.pod`, resolved once by
  `shoal.core.defaults`) and the operator's `JobDefaults`; never from `spec.defaults`.
- `terminationMessagePolicy: FallbackToLogsOnError`: the result reaches the operator
  through the termination message even when the log stream is lost.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, Field

from shoal.api.common import GROUP_VERSION
from shoal.core.compiled import CompiledNode, CompiledWorkflow
from shoal.core.decisions import StartTask
from shoal.core.defaults import ResolvedPod
from shoal.core.file_outputs import POD_WORKER, wrap
from shoal.kube.naming import ANNOTATION_ARGS, job_name, shard_labels, task_labels
from shoal_worker.protocol import TOKEN_ENV

ARGS_DIR = "/etc/shoal"
ARGS_FILE = f"{ARGS_DIR}/args.json"
MAX_ARGS_BYTES = 200 * 1024
"""Annotations share 256 KiB per object; larger inputs belong in the artifact store."""
MAX_ITEM_ENV_BYTES = 8 * 1024
CONTAINER = "main"


class JobDefaults(BaseModel):
    """Operator-wide settings for the Jobs it creates."""

    image: str = "ghcr.io/shoal-dev/worker:0.1.0"
    """Worker image for nodes whose workflow names none."""
    restricted: bool = True
    """Apply the Pod Security "restricted" security context."""
    run_as_user: int | None = 65532
    """UID for worker containers when restricted (the worker image's non-root user)."""
    termination_grace_seconds: int = Field(30, ge=0)
    deadline_backstop_seconds: int = Field(60, ge=0)
    """Added to a node's timeout for the Job's own activeDeadlineSeconds: if the operator
    is down when an attempt times out, Kubernetes still ends it."""
    shards: int = Field(0, ge=0)
    """The operator's number of shards (`--shards`); above 0, every Job and its pod carry
    `shoal.dev/shard` so each replica watches only its shards' pods (docs/scaling.md)."""


class ArgsTooLarge(ValueError):
    """Arguments too large to travel in the pod; the message names the size and the fix."""


def owner_reference(wf: CompiledWorkflow) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Workflow",
        "name": wf.meta.name,
        "uid": wf.meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _json(value: Any) -> str:
    """Compact JSON with text kept as UTF-8: an escape (\\uXXXX) costs 6 bytes per character,
    which would spend the annotation's room three times over on non-Latin text."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: only an escape can carry it
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text


def _env(
    wf: CompiledWorkflow, node: CompiledNode, task: StartTask, token: str
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "SHOAL_WORKFLOW", "value": wf.meta.name},
        {"name": "SHOAL_NAMESPACE", "value": wf.meta.namespace},
        {"name": "SHOAL_WORKFLOW_UID", "value": wf.meta.uid},
        {"name": "SHOAL_NODE", "value": node.name},
        {"name": "SHOAL_ATTEMPT", "value": str(task.attempt)},
    ]
    if node.fan_out:
        env.append({"name": "SHOAL_ITEM_INDEX", "value": str(task.index)})
        item = _json(task.item)
        if len(item.encode()) <= MAX_ITEM_ENV_BYTES:
            env.append({"name": "SHOAL_ITEM", "value": item})
    env.extend({"name": k, "value": v} for k, v in task.env.items() if k != TOKEN_ENV)
    env.extend(ref.dump() for ref in node.env_refs if ref.name != TOKEN_ENV)
    # Last, so nothing the Workflow sets can replace it.
    env.append({"name": TOKEN_ENV, "value": token})
    return env


def job_token(job: dict[str, Any]) -> str:
    """The protocol token in a Job this operator created ("" if there is none)."""
    spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in spec.get("containers") or []:
        if container.get("name") != CONTAINER:
            continue
        for var in container.get("env") or []:
            if var.get("name") == TOKEN_ENV and isinstance(var.get("value"), str):
                return str(var["value"])
    return ""


def _security(defaults: JobDefaults) -> tuple[dict[str, Any], dict[str, Any]]:
    if not defaults.restricted:
        return {}, {}
    pod: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if defaults.run_as_user is not None:
        pod["runAsUser"] = defaults.run_as_user
    container = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    return pod, container


def _scheduling(pod: ResolvedPod) -> dict[str, Any]:
    """Where and as whom the pod runs, as the compiled node resolved it."""
    fields: dict[str, Any] = {}
    if pod.service_account_name:
        fields["serviceAccountName"] = pod.service_account_name
    if pod.node_selector:
        fields["nodeSelector"] = pod.node_selector
    # No API token in worker pods unless asked for: the worker talks to S3 with
    # credentials from a Secret, never to the Kubernetes API.
    fields["automountServiceAccountToken"] = pod.automount_service_account_token
    if pod.tolerations:
        fields["tolerations"] = [t.dump() for t in pod.tolerations]
    return fields


def _work(
    node: CompiledNode, task: StartTask, container: dict[str, Any]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """What the container runs: a registered job reads its args from a mounted annotation
    (returned with the volume carrying it); a command gets its command and args as given."""
    annotations: dict[str, str] = {}
    volumes: list[dict[str, Any]] = []
    if node.spec.job is not None:
        args = _json(task.args or {})
        if len(args.encode()) > MAX_ARGS_BYTES:
            raise ArgsTooLarge(
                f"args are {len(args.encode()) // 1024} KiB, more than the "
                f"{MAX_ARGS_BYTES // 1024} KiB a pod can carry; pass large inputs as artifacts"
            )
        annotations[ANNOTATION_ARGS] = args
        container["command"] = ["shoal-worker"]
        container["args"] = ["run", "--job", node.spec.job, "--args-file", ARGS_FILE]
        container["volumeMounts"] = [
            {"name": "shoal-args", "mountPath": ARGS_DIR, "readOnly": True}
        ]
        volumes.append(
            {
                "name": "shoal-args",
                "downwardAPI": {
                    "items": [
                        {
                            "path": "args.json",
                            "fieldRef": {"fieldPath": f"metadata.annotations['{ANNOTATION_ARGS}']"},
                        }
                    ]
                },
            }
        )
    elif node.spec.outputs and task.command:
        command = [*task.command, *(str(a) for a in task.args or [])]
        container["command"] = wrap(node.spec, command, POD_WORKER)
    else:
        if task.command:
            container["command"] = task.command
        if task.args:
            container["args"] = [str(a) for a in task.args]
    return annotations, volumes


def build_job(
    wf: CompiledWorkflow,
    task: StartTask,
    defaults: JobDefaults,
    store_env: list[dict[str, Any]] | None = None,
    *,
    token: str,
) -> dict[str, Any]:
    """The Job manifest for `task`; raises ArgsTooLarge when its inputs cannot fit a pod.

    `store_env` is how the worker reaches the artifact store (no credential values);
    `token` is the attempt's protocol token (docs/protocol.md), in the container's env.
    """
    node = wf.nodes[task.node]
    name = job_name(wf.meta.name, wf.meta.uid, node.name, task.index, task.attempt)
    labels = task_labels(wf.meta.name, wf.meta.uid, node.name, task.index, task.attempt)
    labels.update(shard_labels(wf.meta.uid, defaults.shards))
    pod_security, container_security = _security(defaults)

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": node.pod.image or defaults.image,
        "env": [*(store_env or []), *_env(wf, node, task, token)],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    annotations, volumes = _work(node, task, container)
    if node.pod.resources is not None:
        container["resources"] = node.pod.resources.dump()
    if container_security:
        container["securityContext"] = container_security

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": defaults.termination_grace_seconds,
    }
    if volumes:
        pod_spec["volumes"] = volumes
    if pod_security:
        pod_spec["securityContext"] = pod_security
    pod_spec.update(_scheduling(node.pod))

    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "completions": 1,
        "parallelism": 1,
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": pod_spec,
        },
    }
    if node.timeout_seconds is not None:
        backstop = math.ceil(node.timeout_seconds) + defaults.deadline_backstop_seconds
        job_spec["activeDeadlineSeconds"] = backstop
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": wf.meta.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(wf)],
        },
        "spec": job_spec,
    }
