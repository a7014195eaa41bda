"""The operator-wide part of the CronWorkflow controller, and each CronWorkflow's daemon loop.

The daemon loops: read the CronWorkflow, run one pass (`passes.reconcile`), then sleep
until the next scheduled time or poll check. It wakes early when the spec changes, one of
its runs finishes, a poll request returns, or an upstream run of its `after` trigger
finishes (routed through the upstream index here, no polling). One daemon loop is the
only writer of its CronWorkflow's status; a poll request runs in a task of its own so a
slow URL never delays a scheduled time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from shoal.api.cron import CronWorkflowSpec, PollTrigger
from shoal.archive.store import record_cron_fire
from shoal.cron import poll as poll_trigger
from shoal.cron.fetch import Fetcher, HeadersError, load_headers
from shoal.cron.fires import Fire, FireRecorder
from shoal.cron.passes import Checked, CronMetrics, reconcile
from shoal.cron.runs import cronworkflows_path, manual_time, parse_time, utc_now
from shoal.kube.api import KubeApi
from shoal.operator_context import OperatorMemo

__all__ = ["Clock", "CronRuntime", "CronState"]

log = logging.getLogger("shoal.cron")
ERROR_RETRY_SECONDS = 5.0
Clock = Callable[[], datetime]


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
