"""Pod clean-up (`spec.podGC`): which of a run's Jobs to delete, and when.

A Job's pod is the only record of its log on a cluster without the PostgreSQL archive, so
deleting it early makes `shoal logs` answer "the pods are gone". Deleting none makes a
10,000-item fan-out keep 10,000 Jobs. The default therefore keeps succeeded pods until the
Workflow is deleted (its TTL, or a user), but at most `MAX_KEPT_SUCCEEDED_PODS` of them;
beyond that it behaves like `OnPodSuccess`. The decisions are pure: the runner asks what
to delete when a node succeeds or the workflow finishes, and deletes it (one
delete-collection request per answer) after the status write that records the result.
While a fan-out runs, `item_keep_below` says which of its recorded items keep their Jobs
(kube/item_jobs deletes the others' as they are recorded, so live Jobs stay bounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.api.limits import MAX_KEPT_SUCCEEDED_PODS
from shoal.kube.naming import LABEL_ITEM, LABEL_NODE, workflow_selector

ON_POD_SUCCESS = "OnPodSuccess"
ON_WORKFLOW_COMPLETION = "OnWorkflowCompletion"
ON_WORKFLOW_SUCCESS = "OnWorkflowSuccess"
NEVER = "Never"
STRATEGIES = (ON_POD_SUCCESS, ON_WORKFLOW_COMPLETION, ON_WORKFLOW_SUCCESS, NEVER)
"""The values of `spec.podGC.strategy` (api/workflow.PodGCStrategy)."""


@dataclass(slots=True)
class PodCleanup:
    """One run's clean-up policy and the count of succeeded pods it has kept so far.

    `strategy` is `spec.podGC.strategy` (None: the bounded default). `keep_all` is the
    operator's `--keep-succeeded-jobs`: nothing is ever deleted, whatever the strategy.
    The kept count lives in the runner: after an operator restart a run may keep up to
    `limit` more pods than the bound.
    """

    uid: str
    strategy: str | None = None
    keep_all: bool = False
    limit: int = MAX_KEPT_SUCCEEDED_PODS
    kept: int = 0
    reserved: dict[str, int] = field(default_factory=dict)
    """Per running fan-out, how many of its first items' pods the default keeps."""

    def item_keep_below(self, node: str, total: int) -> int | None:
        """While fan-out `node` (of `total` items) runs, its succeeded items below the
        returned index keep their Jobs (kube/item_jobs deletes the others'); None keeps
        them all (`--keep-succeeded-jobs`, or a strategy that waits for the run's end).
        The default reserves its room for the node's first items once, up front."""
        if self.keep_all or self.strategy in (NEVER, ON_WORKFLOW_COMPLETION, ON_WORKFLOW_SUCCESS):
            return None
        if self.strategy == ON_POD_SUCCESS:
            return 0
        if node not in self.reserved:
            self.reserved[node] = min(max(0, self.limit - self.kept), total)
            self.kept += self.reserved[node]
        return self.reserved[node]

    def node_succeeded(self, node: str, pods: int) -> str | None:
        """A node succeeded with `pods` succeeded items (numbered from 0): the label
        selector of the Jobs to delete now, or None to keep them."""
        if self.keep_all or self.strategy in (NEVER, ON_WORKFLOW_COMPLETION, ON_WORKFLOW_SUCCESS):
            return None
        whole = f"{workflow_selector(self.uid)},{LABEL_NODE}={node}"
        if self.strategy == ON_POD_SUCCESS:
            return whole
        if node in self.reserved:  # its room was taken (and counted) while it ran
            room = self.reserved.pop(node)
            return None if pods <= room else self._beyond(whole, room)
        room = max(0, self.limit - self.kept)
        if pods <= room:
            self.kept += pods
            return None
        self.kept += room
        return self._beyond(whole, room)

    @staticmethod
    def _beyond(whole: str, room: int) -> str:
        """The selector of a node's Jobs past its first `room` items."""
        if room == 0:
            return whole
        # The first items stay readable; the rest go in the same single request.
        return f"{whole},{LABEL_ITEM} notin ({','.join(str(i) for i in range(room))})"

    def workflow_finished(self, succeeded: bool) -> str | None:
        """The workflow finished: the selector of every Job to delete now, or None."""
        if self.keep_all:
            return None
        if self.strategy == ON_WORKFLOW_COMPLETION or (
            self.strategy == ON_WORKFLOW_SUCCESS and succeeded
        ):
            return workflow_selector(self.uid)
        return None


def gone_reason(strategy: str | None, *, limit: int = MAX_KEPT_SUCCEEDED_PODS) -> str:
    """Why a finished node's pods may be gone and how to keep them: what `shoal logs`
    says when it finds no pod and no archive."""
    keep = (
        "set spec.podGC.strategy: Never (or OnWorkflowSuccess to keep a failed run's) to "
        "keep pods until the Workflow is deleted, or pass --database-url (or set "
        "SHOAL_DATABASE_URL) to read them from the PostgreSQL log archive"
    )
    if strategy in (ON_POD_SUCCESS, ON_WORKFLOW_COMPLETION, ON_WORKFLOW_SUCCESS):
        return f"podGC strategy {strategy} (spec.podGC) deleted them; {keep}"
    if strategy == NEVER:
        return (
            "podGC strategy Never keeps them, so they were deleted by hand or by the node; "
            "pass --database-url (or set SHOAL_DATABASE_URL) to read the log archive"
        )
    return (
        f"the default podGC keeps at most {limit} succeeded pods per workflow and deletes "
        f"later ones when their node succeeds; {keep}"
    )


__all__ = [
    "NEVER",
    "ON_POD_SUCCESS",
    "ON_WORKFLOW_COMPLETION",
    "ON_WORKFLOW_SUCCESS",
    "STRATEGIES",
    "PodCleanup",
    "gone_reason",
]
