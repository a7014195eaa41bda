"""`POST .../retry`: the core's retry transition (`shoal.core.retry`), sent as the caller.

Retried attempts reuse their Jobs' deterministic names, so the old Jobs and pods of the
nodes that run again are deleted first (Foreground: a Job goes after its pods) and the
reopening patch is written only once they are gone, as `shoal retry` does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from shoal.core.retry import RETRYABLE_PHASES, clear_stop_patch, nodes_to_reset, reopen_patch
from shoal.core.status_reader import read_status
from shoal.kube.api import ApiError, KubeApi, jobs_path, pods_path, workflows_path
from shoal.kube.listwatch import left_at_deadline
from shoal.kube.naming import LABEL_NODE, LABEL_WORKFLOW_UID
from shoal.server.errors import ApiProblem, from_kube
from shoal.server.workflows import call

__all__ = ["REMOVAL_SECONDS", "retry_workflow"]

REMOVAL_SECONDS = 60.0
"""How long a retry waits for the old Jobs and pods to be deleted before giving up."""
PATCH_ATTEMPTS = 5
RETRYABLE = frozenset(p.value for p in RETRYABLE_PHASES)


def plan(obj: dict[str, Any]) -> list[str]:
    """The nodes a retry of `obj` runs again, or a 409 saying why there is nothing to do."""
    status = read_status(obj.get("status"))
    phase = status.phase.value
    name = (obj.get("metadata") or {}).get("name")
    if phase not in RETRYABLE:
        raise ApiProblem.of(
            409,
            "NotRetryable",
            f"workflow {name} is {phase}: only a Failed or Stopped workflow can be retried",
        )
    reset = nodes_to_reset(obj)
    if not reset:
        raise ApiProblem.of(409, "NotRetryable", f"workflow {name} has no failed node to run")
    return reset


async def retry_workflow(
    api: KubeApi, namespace: str, name: str
) -> tuple[dict[str, Any], list[str]]:
    """Reopen the workflow; returns it as it was and the nodes that run again."""
    path = workflows_path(namespace, name)
    obj = await call(api, "GET", path)
    reset = plan(obj)
    if (unstop := clear_stop_patch(obj.get("spec") or {})) is not None:
        await call(api, "PATCH", path, body=unstop, content_type="application/merge-patch+json")
    await _remove_attempts(api, namespace, obj["metadata"]["uid"], reset)
    for _ in range(PATCH_ATTEMPTS):
        obj = await call(api, "GET", path)
        reset = plan(obj)
        patch = reopen_patch(obj, reset, datetime.now(UTC))
        try:
            await call(
                api,
                "PATCH",
                path + "/status",
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiProblem as problem:
            if problem.status != 409:
                raise
            continue
        return obj, reset
    raise ApiProblem.of(409, "Conflict", f"workflow {name} kept changing; not retried")


async def _remove_attempts(api: KubeApi, namespace: str, uid: str, nodes: list[str]) -> None:
    """Delete the Jobs and pods of `nodes`, then wait (bounded) until they are gone."""
    selector = f"{LABEL_WORKFLOW_UID}={uid},{LABEL_NODE} in ({','.join(nodes)})"
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    deadline = time.monotonic() + REMOVAL_SECONDS
    for path_of in (jobs_path, pods_path):
        await call(api, "DELETE", path_of(namespace), body=body, params={"labelSelector": selector})
    for path_of in (jobs_path, pods_path):
        try:
            left = await left_at_deadline(api, path_of(namespace), deadline, selector)
        except ApiError as err:
            raise from_kube(err) from None
        if left:
            raise ApiProblem.of(
                504,
                "Timeout",
                f"the old Jobs and pods were still there after {REMOVAL_SECONDS:g}s; "
                "nothing was retried",
            )
