"""The CronWorkflow controller: a kopf daemon per CronWorkflow that fires its runs.

The daemon loops: read the CronWorkflow, list its runs (label `shoal.dev/cron-workflow`,
owned by its uid), ask `schedule.decide` what to do, do it, patch the status, then sleep
until the next scheduled time. It wakes early when the spec changes (a new generation) or
one of its runs finishes (history limits, `active`). Runs are created under a name derived
from the scheduled time, so a 409 AlreadyExists means "already fired": no run is created
twice, across restarts or racing operators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import kopf
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from shoal.api.cron import CronWorkflowSpec
from shoal.cron.schedule import FINISHED, Decision, Run, decide, last_successful, run_name
from shoal.kube.api import KubeApi, workflows_path
from shoal.kube.naming import GROUP, LABEL_MANAGED_BY, MANAGED_BY, label_value

if TYPE_CHECKING:
    from shoal.kube.controller import OperatorMemo

log = logging.getLogger("shoal.cron")
VERSION, PLURAL = "v1alpha1", "cronworkflows"
LABEL_CRON = f"{GROUP}/cron-workflow"
ANNOTATION_SCHEDULED = f"{GROUP}/scheduled-time"
ERROR_RETRY_SECONDS = 5.0
UNSUPPORTED = "`poll` and `after` triggers are not implemented yet: only `schedule` fires runs"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def cronworkflows_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


class CronMetrics:
    """Counters by outcome of a scheduled time: fired, skipped (Forbid), replaced, missed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fired = Counter("shoal_cron_runs_fired_total", "Runs created", registry=registry)
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


def build_run(
    raw: dict[str, Any], spec: CronWorkflowSpec, name: str, at: datetime
) -> dict[str, Any]:
    """The Workflow for the run scheduled at `at` (raw `workflowSpec`, parameters merged)."""
    meta = raw["metadata"]
    wf_spec = dict(raw["spec"]["workflowSpec"])
    wf_spec["parameters"] = {
        **(wf_spec.get("parameters") or {}),
        **spec.parameters,
        "scheduledTime": rfc3339(at),
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CRON: label_value(meta["name"])},
            "annotations": {ANNOTATION_SCHEDULED: rfc3339(at)},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "CronWorkflow",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": wf_spec,
    }


async def list_runs(api: KubeApi, raw: dict[str, Any]) -> list[Run]:
    """This CronWorkflow's runs: labelled with its name and owned by its uid."""
    meta = raw["metadata"]
    found = await api.get(
        workflows_path(meta["namespace"]),
        labelSelector=f"{LABEL_CRON}={label_value(meta['name'])}",
    )
    runs = []
    for item in found.get("items") or []:
        m = item.get("metadata") or {}
        owners = {o.get("uid") for o in m.get("ownerReferences") or []}
        scheduled = parse_time((m.get("annotations") or {}).get(ANNOTATION_SCHEDULED))
        if meta["uid"] in owners and scheduled is not None:
            phase = (item.get("status") or {}).get("phase")
            runs.append(Run(m["name"], scheduled, phase))
    return runs


async def reconcile(
    api: KubeApi, raw: dict[str, Any], now: datetime, metrics: CronMetrics
) -> datetime | None:
    """One pass: fire, stop, delete, patch status. Returns when to look again."""
    meta = raw["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status_path = cronworkflows_path(namespace, name) + "/status"
    status = raw.get("status") or {}
    try:
        spec = CronWorkflowSpec.model_validate(raw.get("spec") or {})
    except ValidationError as err:
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        await api.merge_patch(status_path, {"status": {"lastError": message[:1000]}})
        return None
    runs = await list_runs(api, raw)
    created = parse_time(meta.get("creationTimestamp")) or now
    last = parse_time(status.get("lastScheduleTime"))
    decision = decide(spec, name, created, last, runs, now)
    fired = await apply(api, raw, spec, decision)
    metrics.fired.inc(fired)
    metrics.skipped.inc(len(decision.skipped))
    metrics.replaced.inc(decision.replaced)
    metrics.missed.inc(decision.missed)
    success = last_successful(runs)
    patch = {
        "lastScheduleTime": _opt(decision.last_schedule_time),
        "nextScheduleTime": _opt(decision.next_wake),
        "active": decision.active,
        "lastSuccessfulTime": _opt(success) if success else status.get("lastSuccessfulTime"),
        "fireCount": int(status.get("fireCount") or 0) + fired,
        "lastError": None if spec.schedule is not None else UNSUPPORTED,
    }
    if patch != {k: status.get(k) for k in patch}:
        await api.merge_patch(status_path, {"status": patch})
    # Deleted only once the status records their times: a run's name is its proof of firing.
    for run in decision.delete:
        await api.delete(workflows_path(namespace, run))
    return decision.next_wake


def _opt(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


async def apply(
    api: KubeApi, raw: dict[str, Any], spec: CronWorkflowSpec, decision: Decision
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
    return fired


def register(registry: kopf.OperatorRegistry, memo: OperatorMemo, clock: Clock = utc_now) -> None:
    """Add the CronWorkflow daemon and its wake-up handlers to the operator's registry."""
    metrics = CronMetrics(memo.metrics.registry)
    wakers: dict[tuple[str, str], asyncio.Event] = {}
    generations: dict[tuple[str, str], int] = {}

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=5.0)
    async def cron_daemon(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        assert memo.api is not None
        key = (str(body.metadata.namespace), str(body.metadata.name))
        wake = wakers.setdefault(key, asyncio.Event())
        try:
            while not stopped.is_set():
                wake.clear()  # before reading, so a change while reconciling is not lost
                try:
                    raw = await memo.api.get(cronworkflows_path(*key))
                    generations[key] = int(raw["metadata"].get("generation") or 0)
                    due = await reconcile(memo.api, raw, clock(), metrics)
                    timeout = None if due is None else (due - clock()).total_seconds() + 0.001
                except Exception as err:  # the API refused or is down: say so, retry soon
                    log.warning("CronWorkflow %s/%s: %s", *key, err)
                    await _record_error(memo.api, key, str(err))
                    timeout = ERROR_RETRY_SECONDS
                await _wait(wake, stopped, None if timeout is None else max(0.0, timeout))
        finally:
            wakers.pop(key, None)
            generations.pop(key, None)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def cron_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event.get("object") or {})
        meta: dict[str, Any] = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if key in wakers and int(meta.get("generation") or 0) != generations.get(key):
            wakers[key].set()  # the spec changed

    @kopf.on.event(
        GROUP, VERSION, "workflows", labels={LABEL_CRON: kopf.PRESENT}, registry=registry
    )
    async def run_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event.get("object") or {})
        meta: dict[str, Any] = obj.get("metadata") or {}
        finished = (obj.get("status") or {}).get("phase") in FINISHED
        if not finished and event.get("type") != "DELETED":
            return
        for owner in meta.get("ownerReferences") or []:
            waker = wakers.get((str(meta.get("namespace")), str(owner.get("name"))))
            if owner.get("kind") == "CronWorkflow" and waker is not None:
                waker.set()


async def _record_error(api: KubeApi, key: tuple[str, str], message: str) -> None:
    try:
        path = cronworkflows_path(*key) + "/status"
        await api.merge_patch(path, {"status": {"lastError": message[:1000]}})
    except Exception:  # already reporting a failure; the log has it
        log.debug("could not record the error on %s/%s", *key)


async def _wait(wake: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float | None) -> None:
    """Until woken, stopped, or `seconds` pass (None: no limit)."""

    async def until_stopped() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(until_stopped())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
