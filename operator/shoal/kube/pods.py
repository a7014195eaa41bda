"""Reading a worker pod's status: did the attempt end, how, and is it stuck? (pure)

Every way a pod can fail maps to a message a user can act on: the exit code, OOMKilled
with the memory limit, an eviction with the kubelet's reason, a pod that never got
scheduled with the scheduler's reason, an image that cannot be pulled. Failures of the
infrastructure rather than the job (eviction, deletion from outside, a lost node) are
flagged so that they are retried without spending the node's retry budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.core.timestamps import parse_rfc3339
from shoal.kube.jobs import CONTAINER
from shoal.kube.naming import LABEL_ATTEMPT, LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID

# Waiting reasons that will not fix themselves; still given the pending deadline, since
# an image pull can succeed on a later try, but reported with the kubelet's message.
STUCK_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
INFRASTRUCTURE_REASONS = frozenset(
    {
        "Evicted",
        "NodeLost",
        "Preempting",
        "Shutdown",
        "Terminated",
        # Reasons of the DisruptionTarget condition (what a Job's podFailurePolicy matches).
        "PreemptionByScheduler",
        "PreemptionByKubeScheduler",
        "DeletionByTaintManager",
        "EvictionByEvictionAPI",
        "DeletionByPodGC",
        "TerminationByKubelet",
    }
)


def parse_time(value: str | None) -> float | None:
    """A Kubernetes time as seconds since the epoch, the unit of the run state."""
    parsed = parse_rfc3339(value)
    return None if parsed is None else parsed.timestamp()


@dataclass(frozen=True, slots=True)
class PodView:
    """What the operator needs from one pod object."""

    name: str
    uid: str
    workflow_uid: str
    node: str
    index: int
    attempt: int
    phase: str
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    deleted: bool
    exit_code: int | None
    reason: str | None
    """Why it ended: the pod's reason (Evicted, DeadlineExceeded, ...) or its DisruptionTarget
    condition's when set, otherwise the container's terminated reason (OOMKilled, Error)."""
    message: str | None
    """The pod's or container's status message (not the termination message)."""
    termination_message: str | None
    waiting_reason: str | None
    waiting_message: str | None
    unschedulable: str | None
    memory_limit: str | None

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.node, self.index, self.attempt)

    @property
    def terminated(self) -> bool:
        """The container has ended (or the pod reached a final phase)."""
        return self.exit_code is not None or self.phase in ("Succeeded", "Failed")

    @property
    def running(self) -> bool:
        return self.phase == "Running" and self.exit_code is None


def _container(entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The entry for the worker's container (the first one if none has its name)."""
    entries = entries or []
    for entry in entries:
        if entry.get("name") == CONTAINER:
            return entry
    return entries[0] if entries else {}


def read_pod(pod: dict[str, Any]) -> PodView | None:
    """A PodView, or None for a pod that does not carry Shoal's task labels."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    try:
        index = int(labels[LABEL_ITEM])
        attempt = int(labels[LABEL_ATTEMPT])
        node = labels[LABEL_NODE]
        workflow_uid = labels[LABEL_WORKFLOW_UID]
    except (KeyError, ValueError):
        return None
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    # The worker's container by name: an injected sidecar (a mesh proxy) may come first.
    main = _container(status.get("containerStatuses"))
    state = main.get("state") or {}
    last = main.get("lastState") or {}
    terminated = state.get("terminated") or last.get("terminated") or {}
    waiting = state.get("waiting") or {}
    unschedulable = None
    disruption: dict[str, Any] = {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            unschedulable = cond.get("message") or cond.get("reason") or "Unschedulable"
        elif cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            disruption = cond
    phase = status.get("phase") or "Pending"
    # A pod-level reason (an eviction, a deadline) or a disruption explains the end better
    # than the container's state, which the kubelet then reports as, say,
    # ContainerStatusUnknown with exit code 137.
    reason = status.get("reason")
    message = status.get("message")
    if not reason and disruption.get("reason") and phase != "Succeeded":
        reason = disruption["reason"]
        message = message or disruption.get("message")
    reason = reason or terminated.get("reason")
    message = message or terminated.get("message")
    limits = (_container(spec.get("containers")).get("resources") or {}).get("limits") or {}
    exit_code = terminated.get("exitCode")
    return PodView(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        workflow_uid=workflow_uid,
        node=node,
        index=index,
        attempt=attempt,
        phase=phase,
        created_at=parse_time(meta.get("creationTimestamp")),
        started_at=parse_time(terminated.get("startedAt") or status.get("startTime")),
        finished_at=parse_time(terminated.get("finishedAt")),
        deleted=bool(meta.get("deletionTimestamp")),
        exit_code=int(exit_code) if exit_code is not None else None,
        reason=reason,
        message=message,
        termination_message=terminated.get("message"),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        unschedulable=unschedulable,
        memory_limit=str(limits["memory"]) if "memory" in limits else None,
    )


def is_infrastructure_failure(pod: PodView) -> bool:
    """The pod ended for reasons outside the job: retry without spending its retries."""
    if pod.reason in INFRASTRUCTURE_REASONS:
        return True
    return pod.phase == "Failed" and pod.exit_code is None


def end_reason(pod: PodView) -> str | None:
    """A message for an ending that the job's own output cannot explain, or None."""
    if pod.reason == "OOMKilled":
        limit = f" (memory limit {pod.memory_limit})" if pod.memory_limit else ""
        return f"OOMKilled: the container exceeded its memory{limit}"
    if pod.reason == "DeadlineExceeded":
        return "the Job's activeDeadlineSeconds passed (the attempt timed out)"
    if pod.reason in INFRASTRUCTURE_REASONS:
        return f"pod {pod.reason}: {pod.message or 'no message'}"
    if pod.phase == "Failed" and pod.exit_code is None:
        return f"pod failed without a container exit: {pod.message or pod.reason or 'unknown'}"
    return None


def pending_problem(pod: PodView) -> str | None:
    """Why a pod that has not started is stuck, if the cluster says so."""
    if pod.unschedulable:
        return f"Unschedulable: {pod.unschedulable}"
    if pod.waiting_reason in STUCK_WAITING:
        detail = f": {pod.waiting_message}" if pod.waiting_message else ""
        return f"{pod.waiting_reason}{detail}"
    return None


@dataclass(frozen=True, slots=True)
class PendingVerdict:
    """What to say of an attempt whose pod did not start in time, and whose fault it is."""

    message: str
    infrastructure: bool
    """True when the cluster gave no reason (a busy scheduler, Job controller or node):
    the attempt is retried without spending `retries`, up to the planner's bound."""


def pending_verdict(pod: PodView | None, job: str, limit: float) -> PendingVerdict:
    """Judge an attempt that did not start within `limit` seconds (pure).

    A reason from the cluster (Unschedulable, ImagePullBackOff, ...) would come back on a
    new attempt, so the node fails with it. No reason at all means the cluster was too
    busy to get to the pod: that is the infrastructure's fault, not the job's.
    """
    head = f"did not start within {limit:g}s"
    problem = pending_problem(pod) if pod is not None else None
    if problem is not None:
        return PendingVerdict(f"{head}: {problem}", infrastructure=False)
    what = "Pending" if pod is not None else f"no pod was created for Job {job}"
    busy = "no reason given by the cluster, taken as a busy cluster and retried"
    return PendingVerdict(f"{head}: {what} ({busy})", infrastructure=True)
