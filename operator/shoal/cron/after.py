"""Pure chained-trigger decisions: (trigger, state, upstream runs, now) -> runs to fire.

No I/O: the controller lists the upstream runs (a named Workflow, or every run of a
CronWorkflow) whenever one of them finishes, and passes them here.

Exactly once per upstream run:
- the run fired for an upstream run is named `<cron>-a<hash of the upstream uid>`, so
  firing it twice is a harmless 409;
- the status keeps a cursor (the newest upstream finish time seen) and the uids fired
  for within `GRACE` of it. Upstream runs finishing longer than `GRACE` before the cursor
  count as handled, so a fired run deleted by the history limits never fires again
  after a restart, while runs that finished while the operator was down (after the
  cursor) still fire. `GRACE` covers finish times that reach the API out of order;
- upstream runs that finished before the CronWorkflow was created never fire it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shoal.api.cron import AfterTrigger
from shoal.api.limits import MAX_FORWARDED_OUTPUTS_BYTES
from shoal.core.sizes import json_size
from shoal.cron.schedule import FINISHED

GRACE = timedelta(minutes=5)
MAX_REMEMBERED = 500
"""At most this many fired uids stay in the status (the newest)."""
MAX_NAME = 253


@dataclass(frozen=True, slots=True)
class Upstream:
    """A run of the upstream Workflow or CronWorkflow, as listed."""

    uid: str
    name: str
    phase: str | None
    finished: datetime | None
    outputs: dict[str, Any] = field(default_factory=dict)
    """Node name to that node's outputs (from the upstream's status)."""


@dataclass(frozen=True, slots=True)
class AfterState:
    cursor: datetime | None = None
    fired: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Fire:
    run: str
    upstream: Upstream
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AfterDecision:
    state: AfterState
    fire: list[Fire] = field(default_factory=list)
    suspended: int = 0
    """Upstream runs passed over because the CronWorkflow is suspended."""


def run_name(cron: str, upstream_uid: str) -> str:
    """`<cron>-a<first 10 hex of sha256(upstream uid)>`, the cron name shortened to fit."""
    suffix = "-a" + hashlib.sha256(upstream_uid.encode()).hexdigest()[:10]
    return f"{cron[: MAX_NAME - len(suffix)].rstrip('-.')}{suffix}"


def decide(
    cron: str,
    trigger: AfterTrigger,
    *,
    suspended: bool,
    created: datetime,
    state: AfterState,
    upstream: Sequence[Upstream],
    already: Collection[str],
) -> AfterDecision:
    """The runs to fire for `upstream` and the state to record.

    `already`: upstream uids that one of this CronWorkflow's runs was fired for.
    """
    done = set(state.fired) | set(already)
    window = None if state.cursor is None else state.cursor - GRACE
    finished = sorted(
        (
            u
            for u in upstream
            if u.phase in FINISHED
            and u.finished is not None
            and u.finished >= created
            and (window is None or u.finished >= window)
        ),
        key=lambda u: (u.finished, u.uid),
    )
    wanted = {phase.value for phase in trigger.phases}
    fires: list[Fire] = []
    handled: set[str] = set()
    errors: list[str] = []
    for run in finished:
        if run.uid in done or run.phase not in wanted:
            continue
        handled.add(run.uid)
        if suspended:
            continue
        size = json_size(run.outputs)
        if size > MAX_FORWARDED_OUTPUTS_BYTES:
            errors.append(
                f"upstream run {run.name}: outputs of {size // 1024} KiB exceed the "
                f"{MAX_FORWARDED_OUTPUTS_BYTES // 1024} KiB a run's parameters may carry: "
                "nothing fired"
            )
            continue
        parameters = {
            "upstreamName": run.name,
            "upstreamPhase": run.phase,
            "upstreamOutputs": run.outputs,
        }
        fires.append(Fire(run_name(cron, run.uid), run, parameters))
    times = [t for t in [state.cursor, *(u.finished for u in finished)] if t is not None]
    cursor = max(times, default=None)
    keep = done | handled
    remembered = sorted(
        (
            u
            for u in upstream
            if u.uid in keep
            and u.finished is not None
            and (cursor is None or u.finished >= cursor - GRACE)
        ),
        key=lambda u: (u.finished, u.uid),
        reverse=True,
    )
    # A problem stays shown until a later upstream run fires.
    error = "; ".join(errors) if errors else (None if fires else state.error)
    new_state = AfterState(
        cursor=cursor,
        fired=tuple(u.uid for u in remembered[:MAX_REMEMBERED]),
        error=error,
    )
    return AfterDecision(new_state, fires, suspended=len(handled) if suspended else 0)
