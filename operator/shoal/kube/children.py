"""Child workflows on Kubernetes: a child node's task is a Workflow, not a Job.

Starting the task creates the child (a deterministic name per parent, node, item and
attempt, so a restarted operator adopts it instead of creating another), owned by the
parent (garbage collection deletes it with the parent) and labelled with its depth. The
operator routes every Workflow event whose `shoal.dev/parent-uid` label names a running
parent here; an event counts only if the object is owned by that parent (the label is
just a claim). A finished child ends the task with its node outputs; a kill (the parent's
stop, terminate, deadline or the node's timeout) stops or terminates the child.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from shoal.api.common import GROUP_VERSION
from shoal.api.limits import MAX_CHILD_DEPTH
from shoal.api.workflow import FINISHED_PHASES
from shoal.core.children import child_outcome, child_outputs
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import KillTask, StartTask
from shoal.core.state import TaskFinished
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.naming import GROUP, LABEL_MANAGED_BY, MANAGED_BY, job_name

__all__ = ["LABEL_DEPTH", "LABEL_PARENT_NODE", "LABEL_PARENT_UID", "ChildWorkflows", "depth_of"]

LABEL_PARENT_UID = f"{GROUP}/parent-uid"
LABEL_PARENT_NODE = f"{GROUP}/parent-node"
LABEL_DEPTH = f"{GROUP}/depth"

Key = tuple[str, int, int]


def depth_of(labels: Mapping[str, Any] | None) -> int:
    """A Workflow's nesting depth from its label (0 for a top-level one; an unreadable
    label counts as the limit, so it can start no further child)."""
    raw = (labels or {}).get(LABEL_DEPTH)
    if raw is None:
        return 0
    try:
        return max(0, int(str(raw)[:4]))
    except ValueError:
        return MAX_CHILD_DEPTH


class ChildWorkflows:
    """The children of one parent Workflow: create, adopt, observe, stop."""

    def __init__(
        self, api: KubeApi, body: Mapping[str, Any], report: Callable[[TaskFinished], None]
    ) -> None:
        meta = body["metadata"]
        self.api = api
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        self.depth = depth_of(meta.get("labels"))
        self.report = report
        self.tasks: dict[str, Key] = {}
        """Child name -> the task it is, for children whose end is not reported yet."""

    def owns(self, kill: KillTask) -> bool:
        return (kill.node, kill.index, kill.attempt) in self.tasks.values()

    def _finish(self, name: str, succeeded: bool, message: str, outputs: dict[str, Any]) -> None:
        key = self.tasks.pop(name, None)
        if key is None:
            return
        node, index, attempt = key
        event = TaskFinished(node, index, attempt, succeeded, time.time(), None, outputs, message)
        self.report(event)

    async def start(self, wf: CompiledWorkflow, task: StartTask) -> None:
        """Create (or adopt) the child for `task`; its end arrives through `observe`."""
        name = job_name(self.name, self.uid, task.node, task.index, task.attempt)
        self.tasks[name] = (task.node, task.index, task.attempt)
        if self.depth + 1 > MAX_CHILD_DEPTH:
            msg = f"child workflows nest deeper than {MAX_CHILD_DEPTH} (docs/security.md)"
            self._finish(name, False, msg, {})
            return
        try:
            created = await self.api.create(
                workflows_path(self.namespace), self._manifest(wf, task, name)
            )
            if created is None:  # created before a restart: adopt it if it is ours
                self.observe("MODIFIED", await self.api.get(workflows_path(self.namespace, name)))
        except ApiError as err:
            self._finish(name, False, f"cannot create child workflow {name}: {err}", {})

    def _manifest(self, wf: CompiledWorkflow, task: StartTask, name: str) -> dict[str, Any]:
        child = wf.nodes[task.node].spec.workflow
        assert child is not None
        assert child.spec is not None
        spec = dict(child.spec)
        params = task.args if isinstance(task.args, dict) else {}
        spec["parameters"] = {**(spec.get("parameters") or {}), **params}
        owner = {
            "apiVersion": GROUP_VERSION,
            "kind": "Workflow",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        labels = {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_PARENT_UID: self.uid,
            LABEL_PARENT_NODE: task.node,
            LABEL_DEPTH: str(self.depth + 1),
        }
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": labels}
        meta["ownerReferences"] = [owner]
        return {"apiVersion": GROUP_VERSION, "kind": "Workflow", "metadata": meta, "spec": spec}

    def _owned(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        refs = meta.get("ownerReferences") or []
        ours = any(isinstance(r, Mapping) and r.get("uid") == self.uid for r in refs)
        return ours and meta.get("namespace") == self.namespace

    def observe(self, kind: str, obj: Mapping[str, Any]) -> None:
        """A Workflow event that claims to be one of our children."""
        name = (obj.get("metadata") or {}).get("name")
        if not isinstance(name, str) or name not in self.tasks:
            return
        if not self._owned(obj):
            msg = f"a Workflow named {name} exists but is not this workflow's child"
            self._finish(name, False, msg, {})
            return
        if kind == "DELETED":
            self._finish(name, False, f"child workflow {name} was deleted", {})
            return
        status = obj.get("status") or {}
        if status.get("phase") not in FINISHED_PHASES:
            return
        succeeded, message = child_outcome(name, status)
        self._finish(name, succeeded, "" if succeeded else message, child_outputs(status))

    async def stop(self, kill: KillTask, terminate: bool) -> None:
        """Stop (or terminate) the child of a killed task; its end arrives as an event."""
        key = (kill.node, kill.index, kill.attempt)
        name = next((n for n, k in self.tasks.items() if k == key), None)
        if name is None:
            return
        field = "terminate" if terminate else "stop"
        with contextlib.suppress(ApiError):  # already gone: its DELETED event says so
            await self.api.merge_patch(
                workflows_path(self.namespace, name), {"spec": {field: True}}
            )
