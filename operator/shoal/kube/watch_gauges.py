"""Gauges for the people who watch Shoal itself: what is stuck, counted from the runners.

Two things no counter shows: attempts whose pod has not started (unschedulable, an image
that never pulls, a full quota) and running workflows past their `activeDeadlineSeconds`
(the planner fails those at once, so one still running past a grace means the operator
is stuck on it). Read at scrape time (`Gauge.set_function`), from the live runners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import RunState
from shoal.kube.attempts import Attempt

__all__ = ["DEADLINE_GRACE_SECONDS", "LiveRun", "past_deadline", "pods_pending"]

DEADLINE_GRACE_SECONDS = 60.0
"""A workflow counts as stuck this long after its deadline (an exit handler's time, a
status write under load)."""


class LiveRun(Protocol):
    """What a gauge reads of a runner (kube/runner.WorkflowRunner)."""

    @property
    def wf(self) -> CompiledWorkflow | None: ...

    @property
    def state(self) -> RunState | None: ...

    @property
    def attempts(self) -> Mapping[tuple[str, int, int], Attempt]: ...


def _waiting_for_pod(attempt: Attempt) -> bool:
    if attempt.reported or attempt.completing or attempt.kill_deadline is not None:
        return False
    pod = attempt.pod
    return pod is None or not (pod.running or pod.terminated)


def pods_pending(runs: Iterable[LiveRun]) -> int:
    """Attempts whose Job exists but whose pod has not started yet."""
    return sum(
        1
        for run in runs
        if run.state is not None and not run.state.phase.finished
        for attempt in run.attempts.values()
        if _waiting_for_pod(attempt)
    )


def past_deadline(
    runs: Iterable[LiveRun], now: float, grace: float = DEADLINE_GRACE_SECONDS
) -> int:
    """Unfinished workflows more than `grace` seconds past their activeDeadlineSeconds."""
    count = 0
    for run in runs:
        wf, state = run.wf, run.state
        if wf is None or state is None or state.phase.finished or state.started_at is None:
            continue
        deadline = wf.active_deadline_seconds
        if deadline is not None and now > state.started_at + deadline + grace:
            count += 1
    return count
