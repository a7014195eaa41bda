"""What a restarted runner takes over: the Jobs and pods its Workflow already has.

Pure: given the listed Jobs and pods, it says which Jobs are this Workflow's live
attempts (owned by it, under the name the operator gives that attempt), which claim to be
and are not (impostors, reported by the runner), and which attempts lost their pod to
the infrastructure. The runner then rebuilds its state from the status plus these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shoal.kube.attempts import Attempt
from shoal.kube.jobs import job_token
from shoal.kube.naming import LABEL_ATTEMPT, LABEL_ITEM, LABEL_NODE, job_name
from shoal.kube.ownership import job_problem, pod_problem
from shoal.kube.pods import is_infrastructure_failure, parse_time, read_pod
from shoal.kube.status import InFlight

__all__ = ["AttemptKey", "Found", "adopt"]

AttemptKey = tuple[str, int, int]
"""(node, item index, attempt number)."""


@dataclass
class Found:
    """The attempts a Workflow already has on the cluster."""

    attempts: dict[AttemptKey, Attempt] = field(default_factory=dict)
    """Live attempts whose Job exists (its uid known), by key."""
    in_flight: list[InFlight] = field(default_factory=list)
    """The same attempts, as the state rebuild takes them."""
    impostors: list[tuple[AttemptKey, dict[str, Any], str]] = field(default_factory=list)
    """Jobs that claim an attempt but are not this Workflow's: (key, Job, why)."""


def adopt(
    jobs: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    *,
    namespace: str,
    uid: str,
    name: str,
    nodes: set[str],
) -> Found:
    """Sort the listed Jobs into owned attempts and impostors; mark infrastructure losses."""
    found = Found()
    owned: list[tuple[AttemptKey, dict[str, Any]]] = []
    for job in jobs:
        labels = job["metadata"].get("labels") or {}
        try:
            key = (labels[LABEL_NODE], int(labels[LABEL_ITEM]), int(labels[LABEL_ATTEMPT]))
        except (KeyError, ValueError):
            continue
        # Only the Job this Workflow owns, under the name it would have given it.
        problem = job_problem(job, namespace, uid)
        if problem is None and job["metadata"].get("name") != job_name(name, uid, *key):
            problem = "its name is not the one the operator gives this attempt's Job"
        if problem is not None:
            found.impostors.append((key, job, problem))
            continue
        if key[0] not in nodes or job["metadata"].get("deletionTimestamp"):
            continue
        owned.append((key, job))
    job_uids = {key: job["metadata"].get("uid", "") for key, job in owned}
    lost: set[AttemptKey] = set()
    for pod in pods:
        view = read_pod(pod)
        if view is None or view.key not in job_uids:
            continue
        ours = pod_problem(pod, namespace, job_uids[view.key]) is None
        if ours and view.terminated and is_infrastructure_failure(view):
            lost.add(view.key)
    for key, job in owned:
        created = parse_time(job["metadata"].get("creationTimestamp")) or time.time()
        attempt = Attempt(
            *key, job=job["metadata"]["name"], created_at=created, token=job_token(job)
        )
        attempt.job_uid = job_uids[key]
        found.attempts[key] = attempt
        found.in_flight.append(InFlight(*key, started_at=created, infrastructure=key in lost))
    return found
