"""Pure CronWorkflow decisions: (spec, last schedule time, existing runs, now) -> what to do.

No I/O and no clock: the controller passes `now`, so unit tests drive time by hand.

Time zones. Cron expressions are read in wall-clock time of `spec.timezone` and each wall
time is mapped to an instant with `fold=0`:
- a wall time that does not exist (spring-forward gap) fires once, shifted by the gap
  (Europe/Berlin 02:30 on the last Sunday of March fires at 03:30 CEST); when the shifted
  instant equals another scheduled time, the run fires once;
- a wall time that happens twice (fall-back overlap) fires once, at its first occurrence.

Seconds. A six-field schedule puts seconds first, as Quartz and Argo do (`*/2 * * * * *`
fires every two seconds); `api/cron_syntax` reorders it for croniter.

Runs are named `<cron>-<scheduled epoch seconds>`, so a run that exists has fired; the
decision never fires a time whose run already exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from shoal.api.cron import CatchUpPolicy, ConcurrencyPolicy, CronWorkflowSpec
from shoal.api.cron_syntax import croniter_form, schedule_problem
from shoal.api.workflow import FINISHED_PHASES

MAX_NAME = 253
"""A Workflow name is a DNS subdomain."""
ON_TIME_SECONDS = 5.0
"""With catch-up `none`, a scheduled time later than this is missed (operator downtime)."""
FINISHED = FINISHED_PHASES
"""A run's phases that end it (the enum says which)."""
_MAX_COUNT = 10_000  # missed runs counted one by one, at most
_MAX_SCAN = 1 << 40  # seconds; the catch-up window never grows past ~35,000 years


SCHEDULE, POLL, AFTER = "schedule", "poll", "after"
"""Which trigger fired a run (its `shoal.dev/trigger` annotation)."""


@dataclass(frozen=True, slots=True)
class Run:
    """An existing Workflow of this CronWorkflow, fired by one of its triggers."""

    name: str
    scheduled: datetime
    """Its scheduled time (for `poll` and `after` runs: when it was created)."""
    phase: str | None = None
    trigger: str = SCHEDULE

    @property
    def active(self) -> bool:
        return self.phase not in FINISHED


@dataclass
class Decision:
    """What the controller does now, and when it looks again."""

    fire: list[datetime] = field(default_factory=list)
    """Scheduled times to create runs for, oldest first."""
    stop: list[str] = field(default_factory=list)
    """Active runs to stop (Replace)."""
    delete: list[str] = field(default_factory=list)
    """Finished runs beyond the history limits."""
    missed: int = 0
    """Due times not fired: past the starting deadline or outside the catch-up policy."""
    skipped: list[datetime] = field(default_factory=list)
    """Due times not fired because a run was active (Forbid)."""
    replaced: int = 0
    last_schedule_time: datetime | None = None
    """The latest scheduled time decided (fired, skipped or missed)."""
    next_wake: datetime | None = None
    active: list[str] = field(default_factory=list)
    """Active runs after this decision (fired ones included, stopped ones not)."""


def run_name(cron: str, scheduled: datetime) -> str:
    """`<cron>-<epoch seconds>`; a long cron name is truncated and hashed to fit 253."""
    suffix = f"-{int(scheduled.timestamp())}"
    if len(cron) + len(suffix) <= MAX_NAME:
        return f"{cron}{suffix}"
    digest = hashlib.sha256(cron.encode()).hexdigest()[:8]
    head = cron[: MAX_NAME - len(suffix) - 9].rstrip("-.")
    return f"{head}-{digest}{suffix}"


def expressions(spec: CronWorkflowSpec) -> list[str]:
    if spec.schedule is None:
        return []
    return [spec.schedule] if isinstance(spec.schedule, str) else list(spec.schedule)


def _instant(wall: datetime, zone: ZoneInfo) -> tuple[datetime, bool]:
    """The instant of a naive wall time (fold=0) and whether that wall time exists."""
    local = wall.replace(tzinfo=zone, fold=0)
    utc = local.astimezone(UTC)
    exists = utc.astimezone(zone).replace(tzinfo=None) == wall
    return utc, exists


def times_between(
    exprs: Sequence[str], zone: ZoneInfo, after: datetime, until: datetime | None
) -> Iterator[datetime]:
    """Scheduled instants t (UTC) with `after < t <= until` (unbounded if None), in order."""
    for expr in exprs:
        _check(expr)
    local_after = after.astimezone(zone)
    # A wall time in a spring-forward gap maps later than its wall time; start early enough.
    day_before = (after - timedelta(days=1)).astimezone(zone).utcoffset() or timedelta()
    margin = max(timedelta(), (local_after.utcoffset() or timedelta()) - day_before)
    start = local_after.replace(tzinfo=None) - margin
    iters = [croniter(croniter_form(expr), start) for expr in exprs]
    heads = [_next_wall(it) for it in iters]
    emitted: datetime | None = None
    pending: list[datetime] = []  # gap times waiting for their turn (they map later)
    while True:
        wall = min(heads)
        index = heads.index(wall)
        heads[index] = _next_wall(iters[index])
        instant, exists = _instant(wall, zone)
        if not exists:
            pending.append(instant)
            continue
        ready = sorted(t for t in pending if t <= instant)
        pending = [t for t in pending if t > instant]
        for t in [*ready, instant]:
            if t <= after or t == emitted:
                continue
            if until is not None and t > until:
                return
            emitted = t
            yield t


def _next_wall(it: croniter) -> datetime:
    value: datetime = it.get_next(datetime)
    return value


def _check(expr: str) -> None:
    if (problem := schedule_problem(expr)) is not None:
        raise ValueError(problem)


def next_time(spec: CronWorkflowSpec, after: datetime) -> datetime | None:
    """The first scheduled instant strictly after `after`, or None without a schedule."""
    exprs = expressions(spec)
    if not exprs:
        return None
    return next(times_between(exprs, ZoneInfo(spec.timezone), after, None))


def due_times(
    spec: CronWorkflowSpec, cursor: datetime, now: datetime, keep: int
) -> tuple[list[datetime], int]:
    """The last `keep` scheduled times in (cursor, now], and how many there are (capped).

    The window grows backwards from `now`, so a long downtime with a seconds schedule
    costs a few times `keep` iterations, not one per second of downtime.
    """
    exprs = expressions(spec)
    zone = ZoneInfo(spec.timezone)
    width = 60.0
    while True:
        lower = max(cursor, now - timedelta(seconds=width))
        found = list(times_between(exprs, zone, lower, now))
        if len(found) >= keep or lower == cursor or width > _MAX_SCAN:
            earlier = times_between(exprs, zone, cursor, lower)
            uncounted = sum(1 for _ in zip(range(_MAX_COUNT), earlier, strict=False))
            return found[-keep:] if keep else [], len(found) + uncounted
        width *= 4


def fingerprint(spec: CronWorkflowSpec) -> str:
    """Identifies the schedule in force (expressions and time zone), to notice an edit."""
    text = "\n".join([spec.timezone, *expressions(spec)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def schedule_since(
    spec: CronWorkflowSpec, seen: str | None, since: datetime | None, now: datetime
) -> datetime | None:
    """When the schedule in force took effect, given the fingerprint recorded with `since`.

    Nothing recorded (a new CronWorkflow): None, the creation time bounds catch-up. The
    same schedule: `since` stays. An edited schedule: `now`, so the new schedule never
    fires times that passed while the old one was in force.
    """
    if seen is None:
        return since
    return since if seen == fingerprint(spec) else now


def decide(
    spec: CronWorkflowSpec,
    cron: str,
    created: datetime,
    last_schedule_time: datetime | None,
    runs: Sequence[Run],
    now: datetime,
    on_time: float = ON_TIME_SECONDS,
    since: datetime | None = None,
) -> Decision:
    """Everything the controller should do at `now`.

    `runs` holds the runs of every trigger: the history limits and `active` cover them
    all; the schedule's cursor and `concurrencyPolicy` look at scheduled runs only.
    `since` is when the schedule in force took effect (see `schedule_since`).
    """
    scheduled = [run for run in runs if run.trigger == SCHEDULE]
    # A run that exists was decided, even if the status patch recording it was lost.
    decided = [t for t in [last_schedule_time, *(r.scheduled for r in scheduled)] if t]
    decision = Decision(last_schedule_time=max(decided, default=None))
    existing = {run.name for run in runs}
    active = [run for run in sorted(scheduled, key=lambda r: r.scheduled) if run.active]
    others = [r.name for r in sorted(runs, key=lambda r: r.scheduled) if r.active]
    others = [name for name in others if name not in {run.name for run in active}]
    decision.delete = history_to_delete(spec, runs)
    decision.active = [run.name for run in active] + others
    if not expressions(spec):
        return decision
    cursor = max(decision.last_schedule_time or created, created, since or created)
    catch_up = spec.catch_up
    keep = catch_up.max_runs if catch_up.policy == CatchUpPolicy.ALL else 1
    due, total = due_times(spec, cursor, now, keep)
    deadline = spec.starting_deadline_seconds
    if due:
        decision.last_schedule_time = due[-1]
    if not spec.suspend:
        decision.next_wake = next_time(spec, now)
    if spec.suspend or not due:
        return decision

    def late(t: datetime) -> float:
        return (now - t).total_seconds()

    chosen = [t for t in due if deadline is None or late(t) <= deadline]
    if catch_up.policy == CatchUpPolicy.NONE:
        chosen = [t for t in chosen[-1:] if late(t) <= on_time]
    fresh = [t for t in due if run_name(cron, t) not in existing]
    chosen = [t for t in chosen if t in fresh]
    if spec.concurrency_policy == ConcurrencyPolicy.FORBID:
        if active:
            decision.skipped, chosen = chosen, []
        else:
            decision.skipped, chosen = chosen[:-1], chosen[-1:]
    elif spec.concurrency_policy == ConcurrencyPolicy.REPLACE and chosen:
        decision.skipped, chosen = chosen[:-1], chosen[-1:]
        decision.stop = [run.name for run in active]
        decision.replaced = len(decision.stop)
        decision.active = others
    decision.missed = total - len(due) + len(fresh) - len(chosen) - len(decision.skipped)
    decision.fire = chosen
    decision.active += [run_name(cron, t) for t in chosen]
    return decision


def history_to_delete(spec: CronWorkflowSpec, runs: Sequence[Run]) -> list[str]:
    """Finished runs beyond `successfulRunsHistoryLimit` / `failedRunsHistoryLimit`."""
    newest_first = sorted(runs, key=lambda r: r.scheduled, reverse=True)
    succeeded = [r.name for r in newest_first if r.phase == "Succeeded"]
    failed = [r.name for r in newest_first if r.phase in FINISHED and r.phase != "Succeeded"]
    return (
        succeeded[spec.successful_runs_history_limit :] + failed[spec.failed_runs_history_limit :]
    )


def last_successful(runs: Sequence[Run]) -> datetime | None:
    """The scheduled time of the newest successful scheduled run."""
    done = (r.scheduled for r in runs if r.phase == "Succeeded" and r.trigger == SCHEDULE)
    return max(done, default=None)
