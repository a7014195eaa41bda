"""The wait before a retry (`retries`: exponential backoff), without pydantic.

`RetryPolicy.delay` (the model) and `core/retry_policy` (which a run may hand a view of the
document instead, `shoal run`'s fast path) both ask this function, so the rule has one
owner. It reads attributes only: a model or a view (`api/model_view.py`) will do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["backoff_delay"]


def backoff_delay(policy: Any, failed_attempt: int) -> float:
    """Seconds to wait after attempt `failed_attempt` (1-based) before the next one:
    `min(backoffSeconds * factor**(n-1), maxBackoffSeconds)`."""
    raw = policy.backoff_seconds * policy.factor ** (failed_attempt - 1)
    return float(min(raw, policy.max_backoff_seconds))
