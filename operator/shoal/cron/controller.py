"""The CronWorkflow controller: a kopf daemon per CronWorkflow that fires its runs.

The daemon loops: read the CronWorkflow, list its runs (label `shoal.dev/cron-workflow`,
owned by its uid), ask the pure deciders what to do (`schedule.decide`, `poll.decide`
for a finished check, `after.decide` over the upstream runs), do it, patch the status
once, then sleep until the next scheduled time or poll check. It wakes early when the
spec changes, one of its runs finishes, a poll request returns, or an upstream run of its
`after` trigger finishes (a Workflow watch handler routes those through an index, no
polling). Every run is created under a deterministic name (scheduled time; poll sequence
and content hash; upstream uid), so a 409 AlreadyExists means "already fired": no run is
created twice, across restarts or racing operators.

One daemon loop is the only writer of its CronWorkflow's status; a poll request runs in a
task of its own so a slow URL never delays a scheduled time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import kopf
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from shoal.api.cron import AfterTrigger, CronWorkflow, CronWorkflowSpec, PollTrigger
from shoal.archive.store import record_cron_fire
from shoal.core.jsonbounds import rebuild
from shoal.cron import after as after_trigger
from shoal.cron import poll as poll_trigger
from shoal.cron.fetch import Fetcher, HeadersError, load_headers
from shoal.cron.fires import Fire, FireRecorder
from shoal.cron.schedule import (
    AFTER,
    FINISHED,
    POLL,
    SCHEDULE,
    Decision,
    Run,
    decide,
    last_successful,
    run_name,
)
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.naming import GROUP, LABEL_MANAGED_BY, MANAGED_BY, label_value

if TYPE_CHECKING:
    from shoal.kube.controller import OperatorMemo

log = logging.getLogger("shoal.cron")
VERSION, PLURAL = "v1alpha1", "cronworkflows"
LABEL_CRON = f"{GROUP}/cron-workflow"
ANNOTATION_SCHEDULED = f"{GROUP}/scheduled-time"
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
"""`schedule`, `poll`, `after` (or `manual`, from `shoal trigger`)."""
ANNOTATION_UPSTREAM = f"{GROUP}/upstream-uid"
MANUAL = "manual"
ERROR_RETRY_SECONDS = 5.0
Clock = Callable[[], datetime]
OnFire = Callable[[Fire], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_precise(value: datetime) -> str:
    """With microseconds: poll times round-trip through the status exactly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def cronworkflows_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


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


def build_run(
    raw: dict[str, Any],
    spec: CronWorkflowSpec,
    name: str,
    at: datetime,
    *,
    trigger: str = SCHEDULE,
    parameters: dict[str, Any] | None = None,
    upstream_uid: str | None = None,
) -> dict[str, Any]:
    """The Workflow for a run at `at` (raw `workflowSpec`, parameters merged).

    Every run declares what any trigger of its CronWorkflow passes (placeholders unless
    this trigger sets them), so a `workflowSpec` reading `params.pollBody` also validates
    in a scheduled or manual run. Only scheduled runs carry the scheduled-time
    annotation: it is the schedule's cursor.
    """
    meta = raw["metadata"]
    wf_spec = dict(raw["spec"]["workflowSpec"])
    wf_spec["parameters"] = {
        **spec.run_parameters(),
        **(wf_spec.get("parameters") or {}),
        **spec.parameters,
        **(parameters or {}),
        "scheduledTime": rfc3339(at),
    }
    annotations = {ANNOTATION_TRIGGER: trigger}
    if trigger == SCHEDULE:
        annotations[ANNOTATION_SCHEDULED] = rfc3339(at)
    if upstream_uid is not None:
        annotations[ANNOTATION_UPSTREAM] = upstream_uid
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CRON: label_value(meta["name"])},
            "annotations": annotations,
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


@dataclass
class OwnRuns:
    runs: list[Run] = field(default_factory=list)
    """Runs of the schedule, poll and after triggers (manual runs are left alone)."""
    upstream: set[str] = field(default_factory=set)
    """Upstream uids an `after` run was fired for."""


async def list_runs(api: KubeApi, raw: dict[str, Any]) -> OwnRuns:
    """This CronWorkflow's runs: labelled with its name and owned by its uid."""
    meta = raw["metadata"]
    found = await api.get(
        workflows_path(meta["namespace"]),
        labelSelector=f"{LABEL_CRON}={label_value(meta['name'])}",
    )
    own = OwnRuns()
    for item in found.get("items") or []:
        m = item.get("metadata") or {}
        if meta["uid"] not in {o.get("uid") for o in m.get("ownerReferences") or []}:
            continue
        annotations = m.get("annotations") or {}
        phase = (item.get("status") or {}).get("phase")
        scheduled = parse_time(annotations.get(ANNOTATION_SCHEDULED))
        trigger = annotations.get(ANNOTATION_TRIGGER)
        created = parse_time(m.get("creationTimestamp"))
        if scheduled is not None:
            own.runs.append(Run(m["name"], scheduled, phase))
        elif trigger in (POLL, AFTER) and created is not None:
            own.runs.append(Run(m["name"], created, phase, trigger))
        if annotations.get(ANNOTATION_UPSTREAM):
            own.upstream.add(annotations[ANNOTATION_UPSTREAM])
    return own


def upstream_of(item: dict[str, Any]) -> after_trigger.Upstream:
    """A listed Workflow as an upstream run: identity, phase, finish time, node outputs."""
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    outputs = {
        name: node["outputs"]
        for name, node in (status.get("nodes") or {}).items()
        if isinstance(node, dict) and node.get("outputs")
    }
    return after_trigger.Upstream(
        uid=str(meta.get("uid")),
        name=str(meta.get("name")),
        phase=status.get("phase"),
        finished=parse_time(status.get("finishedAt")),
        outputs=outputs,
    )


async def list_upstream(
    api: KubeApi, namespace: str, trigger: AfterTrigger
) -> list[after_trigger.Upstream]:
    """The named Workflow, or every run of the named CronWorkflow."""
    if trigger.workflow is not None:
        try:
            return [upstream_of(await api.get(workflows_path(namespace, trigger.workflow)))]
        except ApiError as err:
            if err.status == 404:
                return []
            raise
    cron = str(trigger.cron_workflow)
    found = await api.get(
        workflows_path(namespace), labelSelector=f"{LABEL_CRON}={label_value(cron)}"
    )
    return [
        upstream_of(item)
        for item in found.get("items") or []
        if any(
            o.get("kind") == "CronWorkflow" and o.get("name") == cron
            for o in (item.get("metadata") or {}).get("ownerReferences") or []
        )
    ]


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
    decision = decide(spec, name, created, last, own.runs, now)
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
    }
    errors: list[str] = []
    fired_at: datetime | None = now if fired else None
    poll_due = None
    if spec.poll is not None:
        state = poll_state(status)
        if checked is not None:
            state, created_run = await _poll(api, raw, spec, spec.poll, state, checked, metrics)
            patch["lastCheckedAt"] = rfc3339_precise(checked.at)
            patch["contentHash"] = state.content_hash
            if created_run is not None:
                fired += 1
                metrics.fired.inc()
                patch["active"] = [*patch["active"], created_run]
                fired_at = checked.at
                if on_fire is not None:
                    on_fire(Fire(namespace, name, checked.at, created_run))
        patch["poll"] = {
            "nextCheckTime": _opt_precise(state.next_check),
            "fires": state.fires,
            "failures": state.failures,
            "error": state.error,
            "url": state.target,
        }
        errors += [state.error] if state.error else []
        poll_due = None if spec.suspend else (state.next_check or now)
    if spec.after is not None:
        upstream = await list_upstream(api, namespace, spec.after)
        outcome = after_trigger.decide(
            name,
            spec.after,
            suspended=spec.suspend,
            created=created,
            state=after_state(status),
            upstream=upstream,
            already=own.upstream,
        )
        for fire in outcome.fire:
            at = fire.upstream.finished or now
            body = build_run(
                raw,
                spec,
                fire.run,
                at,
                trigger=AFTER,
                parameters=fire.parameters,
                upstream_uid=fire.upstream.uid,
            )
            if await api.create(workflows_path(namespace), body) is not None:
                fired += 1
                metrics.fired.inc()
                fired_at = now
                patch["active"] = [*patch["active"], fire.run]
                log.info("%s/%s fired %s after %s", namespace, name, fire.run, fire.upstream.name)
                if on_fire is not None:
                    on_fire(Fire(namespace, name, at, fire.run))
        patch["after"] = {
            "cursor": _opt_precise(outcome.state.cursor),
            "fired": list(outcome.state.fired),
            "error": outcome.state.error,
        }
        errors += [outcome.state.error] if outcome.state.error else []
    patch["fireCount"] = int(status.get("fireCount") or 0) + fired
    patch["lastError"] = "; ".join(errors)[:1000] or None
    if fired_at is not None:
        patch["lastFiredAt"] = rfc3339_precise(fired_at)
    if any(_unset_none(v) != _unset_none(status.get(k)) for k, v in patch.items()):
        await api.merge_patch(status_path, {"status": patch})
    # Deleted only once the status records their times: a run's name is its proof of firing.
    for run in decision.delete:
        await api.delete(workflows_path(namespace, run))
    return PassResult(decision.next_wake, poll_due)


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


@dataclass
class CronState:
    """What the daemon of one CronWorkflow keeps between passes (never the source of truth:
    the status is)."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    generation: int = 0
    check: asyncio.Task[None] | None = None
    """The poll request in flight."""
    checked: Checked | None = None
    """Its result, not yet applied."""
    upstream: tuple[str, str, str] | None = None
    """(namespace, `workflow` or `cron`, name) this CronWorkflow fires after."""


class CronRuntime:
    """The operator-wide part: the daemons' states, the upstream index, one HTTP client,
    the archive writer for fires."""

    def __init__(self, memo: OperatorMemo, clock: Clock = utc_now) -> None:
        self.memo = memo
        self.clock = clock
        self.metrics = CronMetrics(memo.metrics.registry)
        self.fetcher = Fetcher()
        self.states: dict[tuple[str, str], CronState] = {}
        self.followers: dict[tuple[str, str, str], set[str]] = {}
        """Upstream (namespace, kind, name) to the CronWorkflows that fire after it."""
        self.fires: FireRecorder | None = None
        self._manual_seen: set[str] = set()

    @property
    def api(self) -> KubeApi:
        assert self.memo.api is not None, "the operator's startup connects the API first"
        return self.memo.api

    # -- archive ---------------------------------------------------------------------

    def record_fire(self, fire: Fire) -> None:
        """Into the archive when one is configured; never waits for it."""
        archive = self.memo.archive
        if archive is None:
            return
        if self.fires is None:
            pool = archive.pool

            async def record(f: Fire) -> object:
                return await record_cron_fire(pool, f.namespace, f.cron, f.at, f.workflow)

            self.fires = FireRecorder(record)
            self.fires.start()
        self.fires.offer(fire)

    def manual_run_seen(self, obj: dict[str, Any]) -> None:
        """A `shoal trigger` run (created by the CLI): record its fire once."""
        if self.memo.archive is None:
            return
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        created = parse_time(meta.get("creationTimestamp"))
        cron = next(
            (
                o.get("name")
                for o in meta.get("ownerReferences") or []
                if o.get("kind") == "CronWorkflow"
            ),
            None,
        )
        if not uid or created is None or cron is None or uid in self._manual_seen:
            return
        if len(self._manual_seen) > 10_000:
            self._manual_seen.clear()  # only saves database round trips; writes are idempotent
        self._manual_seen.add(uid)
        self.record_fire(
            Fire(str(meta["namespace"]), str(cron), manual_time(uid, created), meta["name"])
        )

    async def close(self) -> None:
        if self.fires is not None:
            await self.fires.close()
        await self.fetcher.close()

    # -- the after index ---------------------------------------------------------------

    def follow(self, key: tuple[str, str], state: CronState, raw: dict[str, Any]) -> None:
        """Index this CronWorkflow under the upstream its `after` names (before listing it,
        so an upstream run finishing meanwhile still wakes it)."""
        after = (raw.get("spec") or {}).get("after") or {}
        target = None
        if isinstance(after, dict) and isinstance(after.get("workflow"), str):
            target = (key[0], "workflow", after["workflow"])
        elif isinstance(after, dict) and isinstance(after.get("cronWorkflow"), str):
            target = (key[0], "cron", after["cronWorkflow"])
        if target == state.upstream:
            return
        self.unfollow(key, state)
        if target is not None:
            self.followers.setdefault(target, set()).add(key[1])
        state.upstream = target

    def unfollow(self, key: tuple[str, str], state: CronState) -> None:
        if state.upstream is not None:
            names = self.followers.get(state.upstream, set())
            names.discard(key[1])
            if not names:
                self.followers.pop(state.upstream, None)
        state.upstream = None

    def upstream_finished(self, obj: dict[str, Any]) -> None:
        """Wake every CronWorkflow that fires after this (finished) Workflow."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace"))
        targets = [(namespace, "workflow", str(meta.get("name")))] + [
            (namespace, "cron", str(o.get("name")))
            for o in meta.get("ownerReferences") or []
            if o.get("kind") == "CronWorkflow"
        ]
        for target in targets:
            for name in self.followers.get(target, ()):
                state = self.states.get((namespace, name))
                if state is not None:
                    state.wake.set()

    # -- the daemon --------------------------------------------------------------------

    async def run(self, key: tuple[str, str], stopped: kopf.DaemonStopped) -> None:
        state = self.states.setdefault(key, CronState())
        try:
            while not stopped.is_set():
                state.wake.clear()  # before reading, so a change while reconciling is not lost
                timeout = await self._pass(key, state)
                await _wait(state.wake, stopped, timeout)
        finally:
            if state.check is not None:
                state.check.cancel()
            self.unfollow(key, state)
            self.states.pop(key, None)

    async def _pass(self, key: tuple[str, str], state: CronState) -> float | None:
        """One reconcile pass; returns how long to sleep (None: until woken)."""
        checked, state.checked = state.checked, None
        try:
            raw = await self.api.get(cronworkflows_path(*key))
            state.generation = int(raw["metadata"].get("generation") or 0)
            self.follow(key, state, raw)
            result = await reconcile(
                self.api, raw, self.clock(), self.metrics, checked=checked, on_fire=self.record_fire
            )
        except Exception as err:  # the API refused or is down: say so, retry soon
            log.warning("CronWorkflow %s/%s: %s", *key, err)
            await _record_error(self.api, key, str(err))
            return ERROR_RETRY_SECONDS
        now = self.clock()
        due = [t for t in (result.wake,) if t is not None]
        # Not while a check's outcome waits to be applied: its Retry-After may forbid it.
        if result.poll_due is not None and state.check is None and state.checked is None:
            if result.poll_due <= now:
                spec = CronWorkflowSpec.model_validate(raw["spec"])
                assert spec.poll is not None
                state.check = asyncio.create_task(
                    self._check(key, state, spec.poll), name=f"shoal-poll-{key[0]}-{key[1]}"
                )
            else:
                due.append(result.poll_due)
        if not due:
            return None
        return max(0.0, (min(due) - now).total_seconds() + 0.001)

    async def _check(self, key: tuple[str, str], state: CronState, trigger: PollTrigger) -> None:
        """One poll request; hands its outcome to the daemon and wakes it."""
        try:
            headers = {}
            if trigger.headers_from is not None:
                headers = await load_headers(self.api, key[0], trigger.headers_from)
            outcome: poll_trigger.Outcome = await self.fetcher.fetch(
                trigger.url, headers, trigger.timeout_seconds, trigger.max_body_bytes
            )
        except HeadersError as err:
            outcome = poll_trigger.Failure(str(err))
        except Exception as err:  # anything else still ends the check with a message
            outcome = poll_trigger.Failure(f"{type(err).__name__}: {err}")
        state.checked = Checked(outcome, self.clock())
        state.check = None
        state.wake.set()


def manual_time(uid: str, created: datetime) -> datetime:
    """A manual run's creation time, its sub-second part taken from its uid.

    The API server keeps whole seconds; the archive keys fires by time, so two manual
    runs created in one second would otherwise be one record. Deterministic, so a repeat
    after a restart is the same record.
    """
    micros = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % 1_000_000
    return created.replace(microsecond=0) + timedelta(microseconds=micros)


def register(registry: kopf.OperatorRegistry, memo: OperatorMemo, clock: Clock = utc_now) -> None:
    """Add the CronWorkflow daemon and its handlers to the operator's registry.

    Call it before the registry's own cleanup handler is added: cleanup handlers run in
    order, and the cron fires pending for the archive are written before it closes.
    """
    runtime = CronRuntime(memo, clock)

    @kopf.on.cleanup(registry=registry)
    async def cron_cleanup(**_: Any) -> None:
        await runtime.close()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=5.0)
    async def cron_daemon(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        await runtime.run((str(body.metadata.namespace), str(body.metadata.name)), stopped)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def cron_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event.get("object") or {})
        meta: dict[str, Any] = obj.get("metadata") or {}
        state = runtime.states.get((str(meta.get("namespace")), str(meta.get("name"))))
        if state is not None and int(meta.get("generation") or 0) != state.generation:
            state.wake.set()  # the spec changed

    @kopf.on.event(
        GROUP, VERSION, "workflows", labels={LABEL_CRON: kopf.PRESENT}, registry=registry
    )
    async def run_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event.get("object") or {})
        meta: dict[str, Any] = obj.get("metadata") or {}
        kind = event.get("type")
        if (
            kind in (None, "ADDED")
            and (meta.get("annotations") or {}).get(ANNOTATION_TRIGGER) == MANUAL
        ):
            runtime.manual_run_seen(obj)
        finished = (obj.get("status") or {}).get("phase") in FINISHED
        if not finished and kind != "DELETED":
            return
        for owner in meta.get("ownerReferences") or []:
            state = runtime.states.get((str(meta.get("namespace")), str(owner.get("name"))))
            if owner.get("kind") == "CronWorkflow" and state is not None:
                state.wake.set()

    @kopf.on.event(GROUP, VERSION, "workflows", registry=registry)
    async def upstream_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event.get("object") or {})
        if runtime.followers and (obj.get("status") or {}).get("phase") in FINISHED:
            runtime.upstream_finished(obj)


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
