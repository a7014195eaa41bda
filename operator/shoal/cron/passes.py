"""One reconcile pass of a CronWorkflow: fire, stop, delete, patch its status once.

The pass reads the CronWorkflow and its runs, asks the pure deciders what to do
(`schedule.decide`, `poll.decide` for a finished check, `after.decide` over the upstream
runs), does it, and says when to look again. It keeps nothing: the status is the state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from shoal.api.cron import AfterTrigger, CronWorkflow, CronWorkflowSpec, PollTrigger
from shoal.api.cron_syntax import describe
from shoal.core.jsonbounds import rebuild
from shoal.cron import after as after_trigger
from shoal.cron import poll as poll_trigger
from shoal.cron.fires import Fire
from shoal.cron.runs import (
    build_run,
    cronworkflows_path,
    list_runs,
    list_upstream,
    parse_time,
    rfc3339,
    rfc3339_precise,
)
from shoal.cron.schedule import (
    AFTER,
    POLL,
    Decision,
    decide,
    expressions,
    fingerprint,
    last_successful,
    run_name,
    schedule_since,
)
from shoal.kube.api import KubeApi, workflows_path

__all__ = [
    "Checked",
    "CronMetrics",
    "OnFire",
    "PassResult",
    "after_state",
    "apply",
    "poll_state",
    "reconcile",
]

log = logging.getLogger("shoal.cron")
OnFire = Callable[[Fire], None]


class CronMetrics:
    """Counters by outcome of a scheduled time, and of poll checks."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fired = Counter(
            "shoal_cron_runs_fired_total", "Runs created (every trigger)", registry=registry
        )
        self.skipped = Counter(
            "shoal_cron_runs_skipped_total", "Due runs skipped by Forbid", registry=registry
        )
        self.replaced = Counter(
            "shoal_cron_runs_replaced_total", "Active runs stopped by Replace", registry=registry
        )
        self.missed = Counter(
            "shoal_cron_runs_missed_total",
            "Due runs not started (starting deadline or catch-up policy)",
            registry=registry,
        )
        self.poll_checks = Counter(
            "shoal_cron_poll_checks_total", "Poll requests answered or failed", registry=registry
        )
        self.poll_changes = Counter(
            "shoal_cron_poll_changes_total", "Poll checks that saw new content", registry=registry
        )
        self.poll_errors = Counter(
            "shoal_cron_poll_errors_total",
            "Poll checks that ended in an error (no answer, not 2xx, body too large)",
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class Checked:
    """A finished poll request and when its answer (or failure) arrived."""

    outcome: poll_trigger.Outcome
    at: datetime


@dataclass(frozen=True, slots=True)
class PassResult:
    wake: datetime | None
    """The next scheduled time (None: no schedule, suspended or invalid)."""
    poll_due: datetime | None
    """When the next poll request may go out (None: no poll trigger, or suspended)."""


def poll_state(status: dict[str, Any]) -> poll_trigger.PollState:
    saved = status.get("poll") or {}
    return poll_trigger.PollState(
        content_hash=status.get("contentHash"),
        fires=int(saved.get("fires") or 0),
        failures=int(saved.get("failures") or 0),
        next_check=parse_time(saved.get("nextCheckTime")),
        error=saved.get("error"),
        target=saved.get("url"),
    )


def after_state(status: dict[str, Any]) -> after_trigger.AfterState:
    saved = status.get("after") or {}
    return after_trigger.AfterState(
        cursor=parse_time(saved.get("cursor")),
        fired=tuple(saved.get("fired") or ()),
        error=saved.get("error"),
    )


@dataclass
class _Pass:
    """One pass in progress: what it works on, and what its triggers add to the patch."""

    api: KubeApi
    raw: dict[str, Any]
    spec: CronWorkflowSpec
    metrics: CronMetrics
    on_fire: OnFire | None
    now: datetime
    patch: dict[str, Any]
    fired: int = 0
    fired_at: datetime | None = None
    errors: list[str] = field(default_factory=list)

    def count(self, run: str, fired_at: datetime) -> None:
        """A trigger created `run`: it is active, counted, and the last fire."""
        self.fired += 1
        self.metrics.fired.inc()
        self.fired_at = fired_at
        self.patch["active"] = [*self.patch["active"], run]


async def reconcile(
    api: KubeApi,
    raw: dict[str, Any],
    now: datetime,
    metrics: CronMetrics,
    *,
    checked: Checked | None = None,
    on_fire: OnFire | None = None,
) -> PassResult:
    """One pass: fire, stop, delete, patch status. Says when to look again."""
    meta = raw["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status_path = cronworkflows_path(namespace, name) + "/status"
    status = raw.get("status") or {}
    try:
        doc = {"metadata": {"name": name}, "spec": raw.get("spec") or {}}
        spec = CronWorkflow.model_validate(doc).spec
    except ValidationError as err:
        message = "; ".join(_problem(e["loc"], e["msg"]) for e in err.errors())
        await api.merge_patch(status_path, {"status": {"lastError": message[:1000]}})
        return PassResult(None, None)
    own = await list_runs(api, raw)
    created = parse_time(meta.get("creationTimestamp")) or now
    last = parse_time(status.get("lastScheduleTime"))
    since = _schedule_since(spec, status, now)
    decision = decide(spec, name, created, last, own.runs, now, since=since)
    fired = await apply(api, raw, spec, decision, on_fire)
    metrics.fired.inc(fired)
    metrics.skipped.inc(len(decision.skipped))
    metrics.replaced.inc(decision.replaced)
    metrics.missed.inc(decision.missed)
    success = last_successful(own.runs)
    patch: dict[str, Any] = {
        "lastScheduleTime": _opt(decision.last_schedule_time),
        "nextScheduleTime": _opt(decision.next_wake),
        "active": decision.active,
        "lastSuccessfulTime": _opt(success) if success else status.get("lastSuccessfulTime"),
        **_schedule_fields(spec, since),
    }
    work = _Pass(api, raw, spec, metrics, on_fire, now, patch, fired, now if fired else None)
    poll_due = None
    if spec.poll is not None:
        poll_due = await _poll_trigger(work, spec.poll, status, checked)
    if spec.after is not None:
        await _after_trigger(work, spec.after, status, created, own.upstream)
    patch["fireCount"] = int(status.get("fireCount") or 0) + work.fired
    patch["lastError"] = "; ".join(work.errors)[:1000] or None
    if work.fired_at is not None:
        patch["lastFiredAt"] = rfc3339_precise(work.fired_at)
    if any(_unset_none(v) != _unset_none(status.get(k)) for k, v in patch.items()):
        await api.merge_patch(status_path, {"status": patch})
    # Deleted only once the status records their times: a run's name is its proof of firing.
    for run in decision.delete:
        await api.delete(workflows_path(namespace, run))
    return PassResult(decision.next_wake, poll_due)


async def _poll_trigger(
    work: _Pass, trigger: PollTrigger, status: dict[str, Any], checked: Checked | None
) -> datetime | None:
    """Apply a finished poll check (if any) to the patch; when the next check is due."""
    meta = work.raw["metadata"]
    state = poll_state(status)
    if checked is not None:
        state, created_run = await _poll(
            work.api, work.raw, work.spec, trigger, state, checked, work.metrics
        )
        work.patch["lastCheckedAt"] = rfc3339_precise(checked.at)
        work.patch["contentHash"] = state.content_hash
        if created_run is not None:
            work.count(created_run, checked.at)
            if work.on_fire is not None:
                work.on_fire(Fire(meta["namespace"], meta["name"], checked.at, created_run))
    work.patch["poll"] = {
        "nextCheckTime": _opt_precise(state.next_check),
        "fires": state.fires,
        "failures": state.failures,
        "error": state.error,
        "url": state.target,
    }
    work.errors += [state.error] if state.error else []
    return None if work.spec.suspend else (state.next_check or work.now)


async def _after_trigger(
    work: _Pass,
    trigger: AfterTrigger,
    status: dict[str, Any],
    created: datetime,
    already: set[str],
) -> None:
    """Fire a run for each newly finished upstream run; its cursor into the patch."""
    namespace, name = work.raw["metadata"]["namespace"], work.raw["metadata"]["name"]
    upstream = await list_upstream(work.api, namespace, trigger)
    outcome = after_trigger.decide(
        name,
        trigger,
        suspended=work.spec.suspend,
        created=created,
        state=after_state(status),
        upstream=upstream,
        already=already,
    )
    for fire in outcome.fire:
        at = fire.upstream.finished or work.now
        body = build_run(
            work.raw,
            work.spec,
            fire.run,
            at,
            trigger=AFTER,
            parameters=fire.parameters,
            upstream_uid=fire.upstream.uid,
        )
        if await work.api.create(workflows_path(namespace), body) is not None:
            work.count(fire.run, work.now)
            log.info("%s/%s fired %s after %s", namespace, name, fire.run, fire.upstream.name)
            if work.on_fire is not None:
                work.on_fire(Fire(namespace, name, at, fire.run))
    work.patch["after"] = {
        "cursor": _opt_precise(outcome.state.cursor),
        "fired": list(outcome.state.fired),
        "error": outcome.state.error,
    }
    work.errors += [outcome.state.error] if outcome.state.error else []


async def _poll(
    api: KubeApi,
    raw: dict[str, Any],
    spec: CronWorkflowSpec,
    trigger: PollTrigger,
    state: poll_trigger.PollState,
    checked: Checked,
    metrics: CronMetrics,
) -> tuple[poll_trigger.PollState, str | None]:
    """Apply one poll check: the new state, and the run created (None if none was)."""
    meta = raw["metadata"]
    decision = poll_trigger.decide(meta["name"], trigger, state, checked.outcome, checked.at)
    metrics.poll_checks.inc()
    metrics.poll_changes.inc(decision.changed)
    metrics.poll_errors.inc(decision.state.error is not None and not decision.fire)
    if not decision.fire or decision.run is None:
        return decision.state, None
    if spec.suspend:  # a check that was in flight when suspended fires nothing
        return replace(decision.state, fires=state.fires), None
    body = build_run(
        raw, spec, decision.run, checked.at, trigger=POLL, parameters=decision.parameters
    )
    created = await api.create(workflows_path(meta["namespace"]), body) is not None
    if created:
        log.info("%s/%s fired %s (poll)", meta["namespace"], meta["name"], decision.run)
    return decision.state, decision.run if created else None


def _schedule_since(
    spec: CronWorkflowSpec, status: dict[str, Any], now: datetime
) -> datetime | None:
    """When the schedule in force took effect (an edit is noticed by its fingerprint)."""
    try:
        recorded = parse_time(status.get("scheduleSince"))
    except ValueError:  # a hand-edited status: treat the schedule as unchanged
        recorded = None
    return schedule_since(spec, status.get("scheduleFingerprint"), recorded, now)


def _schedule_fields(spec: CronWorkflowSpec, since: datetime | None) -> dict[str, Any]:
    """The schedule's fingerprint, start and words, for the status."""
    exprs = expressions(spec)
    if not exprs:
        return {}
    return {
        "scheduleFingerprint": fingerprint(spec),
        "scheduleSince": _opt(since),
        "scheduleDescription": "; ".join(describe(expr) for expr in exprs)[:1000],
    }


def _unset_none(value: Any) -> Any:
    """A merge patch deletes what it sets to null: compare as the server will store it."""
    return rebuild(value, drop_none=True)


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    text = msg.removeprefix("Value error, ")
    return f"{'.'.join(map(str, loc))}: {text}" if loc else text


def _opt(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def _opt_precise(value: datetime | None) -> str | None:
    return None if value is None else rfc3339_precise(value)


async def apply(
    api: KubeApi,
    raw: dict[str, Any],
    spec: CronWorkflowSpec,
    decision: Decision,
    on_fire: OnFire | None = None,
) -> int:
    """Stop replaced runs, create due ones (409 = already fired); returns how many fired."""
    namespace, name = raw["metadata"]["namespace"], raw["metadata"]["name"]
    for run in decision.stop:
        await api.merge_patch(workflows_path(namespace, run), {"spec": {"stop": True}})
    fired = 0
    for at in decision.fire:
        run = run_name(name, at)
        body = build_run(raw, spec, run, at)
        if await api.create(workflows_path(namespace), body) is not None:
            fired += 1
            log.info("%s/%s fired %s for %s", namespace, name, run, rfc3339(at))
            if on_fire is not None:
                on_fire(Fire(namespace, name, at, run))
    return fired
