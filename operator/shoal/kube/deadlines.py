"""Every wait of a runner has a deadline: a pod that never starts, a kill that never lands.

Pure: when waiting on an attempt ends, and the earliest such time over the attempts not
reported yet (the runner sleeps until then, or until the next observation).
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.kube.attempts import Attempt

__all__ = ["deadline_of", "next_deadline"]


def deadline_of(attempt: Attempt, pending_timeout: float) -> float | None:
    """The end of the grace after killing it, or of its pod's time to start; None when
    nothing about it is awaited with a deadline (reported, completing, or running)."""
    if attempt.reported or attempt.completing:
        return None
    if attempt.kill_deadline is not None:
        return attempt.kill_deadline
    pod = attempt.pod
    if pod is None or not (pod.running or pod.terminated):
        return attempt.created_at + pending_timeout
    return None


def next_deadline(
    attempts: Iterable[Attempt], wake_at: float | None, pending_timeout: float
) -> float | None:
    """The earliest of the planner's wake time and every attempt's deadline."""
    deadlines = [wake_at] if wake_at is not None else []
    for attempt in attempts:
        due = deadline_of(attempt, pending_timeout)
        if due is not None:
            deadlines.append(due)
    return min(deadlines) if deadlines else None
