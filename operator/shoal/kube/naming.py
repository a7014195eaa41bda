"""Deterministic names and labels for the Jobs a workflow creates.

A Job's name is a function of (workflow uid, node, item, attempt) only, so creating the
same attempt twice — after a restart, or from two racing reconciliations — is a harmless
409 AlreadyExists: dispatch many, execute once. The uid is part of the hash so a Workflow
deleted and re-created under the same name never adopts its predecessor's Jobs.
"""

from __future__ import annotations

import hashlib
import re

from shoal.sharding import policy

GROUP = "shoal.dev"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "shoal"
LABEL_WORKFLOW = f"{GROUP}/workflow"
LABEL_WORKFLOW_UID = f"{GROUP}/workflow-uid"
LABEL_NODE = f"{GROUP}/node"
LABEL_ITEM = f"{GROUP}/item"
LABEL_ATTEMPT = f"{GROUP}/attempt"
ANNOTATION_ARGS = f"{GROUP}/args"
LABEL_SHARD = policy.LABEL_SHARD
"""`shoal.dev/shard`: the shard of the Workflow a Job and its pod belong to, written once
at creation by a sharded operator, so each replica's pod watch selects its own shards'
pods on the server (kube/shard_watch.py). Its value is kept beside the uid → shard rule."""

MAX_NAME = 63
"""Job names become the `job-name` label's value, which Kubernetes caps at 63."""

_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]")


def _digest(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def label_value(text: str) -> str:
    """`text` as a valid label value: kept when it fits, otherwise truncated plus a hash."""
    clean = _NOT_LABEL.sub("-", text).strip("-._")
    if clean == text and len(text) <= MAX_NAME:
        return text
    head = clean[: MAX_NAME - 9].rstrip("-._")
    # A label value must start with an alphanumeric: text without one is its hash alone.
    return f"{head}-{_digest(text)}" if head else _digest(text)


def job_name(workflow: str, uid: str, node: str, index: int, attempt: int) -> str:
    """`<workflow>-<node>-<item>-<attempt>-<hash>`, shortened readably to 63 characters."""
    suffix = f"-{index}-{attempt}-{_digest(uid, node, str(index), str(attempt))}"
    room = MAX_NAME - len(suffix)
    node_part = node[: max(room // 2, room - len(workflow) - 1)]
    wf_part = workflow[: max(room - len(node_part) - 1, 1)]
    head = f"{wf_part}-{node_part}".replace(".", "-").strip("-")
    return f"{head[:room]}{suffix}".lower()


def task_labels(workflow: str, uid: str, node: str, index: int, attempt: int) -> dict[str, str]:
    """Labels on every Job and pod: how watches route events back to their workflow."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_WORKFLOW: label_value(workflow),
        LABEL_WORKFLOW_UID: uid,
        LABEL_NODE: node,
        LABEL_ITEM: str(index),
        LABEL_ATTEMPT: str(attempt),
    }


def shard_labels(uid: str, shards: int) -> dict[str, str]:
    """The shard label of a workflow's Jobs and pods; none when unsharded (`shards` 0)."""
    return {LABEL_SHARD: str(policy.shard_of(uid, shards))} if shards > 0 else {}


def workflow_selector(uid: str) -> str:
    """Label selector for everything one workflow run created."""
    return f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_WORKFLOW_UID}={uid}"


MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
"""Label selector for every Job and pod any workflow created (the operator's watches)."""
