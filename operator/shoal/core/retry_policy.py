"""Whether a failed attempt is retried, and when: a node's `retries` applied to one failure.

Kept apart from the planner so the policy (which failures, the `expression` over the last
attempt, `maxDurationSeconds`) reads in one place; the planner only asks `choose_retry`.
"""

from __future__ import annotations

from typing import Any

from shoal.api.backoff import backoff_delay
from shoal.api.enums import RetryOn
from shoal.core.compiled import CompiledNode
from shoal.core.expressions import ExpressionError
from shoal.core.state import MAX_INFRASTRUCTURE_RETRIES, Task
from shoal.core.text import clip
from shoal_worker.records import Record

__all__ = [
    "INFRASTRUCTURE_RETRY_DELAY",
    "LAST_RETRY_MESSAGE_CHARS",
    "RetryChoice",
    "choose_retry",
    "last_retry_context",
]

INFRASTRUCTURE_RETRY_DELAY = 1.0
"""Seconds before re-running an item whose pod was lost: long enough not to spin."""
LAST_RETRY_MESSAGE_CHARS = 1024
"""`lastRetry.message` is clipped to this: the expression needs the gist, not a log."""


class RetryChoice(Record):
    """The verdict on one failed attempt: retry at `at`, or give up (`at` is None)."""

    at: float | None
    free: bool = False
    """An infrastructure retry that does not spend `retries.limit` (no retryPolicy set)."""
    note: str = ""
    """Why a retry the limit still allowed did not happen, for the failure message."""


def _named(policy: RetryOn, infrastructure: bool) -> bool:
    if policy is RetryOn.ALWAYS:
        return True
    return infrastructure if policy is RetryOn.ON_ERROR else not infrastructure


def last_retry_context(task: Task, ended: float) -> dict[str, Any]:
    """What `retries.expression` sees as `lastRetry`; `exitCode` is -1 when there was none
    (a pod lost before its container ended)."""
    return {
        "exitCode": task.exit_code if task.exit_code is not None else -1,
        "status": "Error" if task.infrastructure else "Failed",
        "message": clip(task.message, LAST_RETRY_MESSAGE_CHARS),
        "duration": max(ended - task.started_at, 0.0),
    }


def _expression_allows(node: CompiledNode, task: Task, ended: float) -> str:
    """An empty string when `retries.expression` (if any) allows a retry, else why not."""
    expr = node.retry_when
    if expr is None:
        return ""
    try:
        value = expr.evaluate({"lastRetry": last_retry_context(task, ended)})
    except ExpressionError as err:
        return f"retries.expression: {err}"
    if not isinstance(value, bool):
        return f"retries.expression must yield a bool, got {type(value).__name__}"
    return "" if value else f"retries.expression {expr.source!r} was false"


def choose_retry(node: CompiledNode, task: Task, ended: float, first_started: float) -> RetryChoice:
    """Retry the failed `task` of `node` (ended at `ended`), or not.

    Without `retryPolicy`, infrastructure failures get MAX_INFRASTRUCTURE_RETRIES free
    retries first and every retriable failure then spends `limit` (the behaviour before
    retry policies existed). With one, exactly the failures it names are retried, each
    spending `limit`. `maxDurationSeconds` and `expression` can only refuse a retry.
    """
    policy = node.retries
    max_duration = policy.max_duration_seconds
    if policy.retry_policy is None:
        free = task.infrastructure and task.free_attempts < MAX_INFRASTRUCTURE_RETRIES
        if free:
            at = ended + INFRASTRUCTURE_RETRY_DELAY
            if max_duration is None or at <= first_started + max_duration:
                return RetryChoice(at, free=True)
    elif not _named(policy.retry_policy, task.infrastructure):
        return RetryChoice(None)
    spent = task.attempt - task.free_attempts
    if not task.retriable or spent > policy.limit:
        return RetryChoice(None)
    at = ended + backoff_delay(policy, spent)  # not policy.delay: it may be a view
    if max_duration is not None and at > first_started + max_duration:
        note = f"maxDurationSeconds ({max_duration:g}s) since the first attempt would pass"
        return RetryChoice(None, note=note)
    refused = _expression_allows(node, task, ended)
    return RetryChoice(None, note=refused) if refused else RetryChoice(at)
