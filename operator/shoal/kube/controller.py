"""The Workflow controller: what happens to a Workflow, as kopf handlers and a pod router.

Each handler is a module-level function taking the shared `OperatorMemo` first (`shared`; kopf's own
per-object `memo` keeps the signals between one Workflow's handlers); `app.py`
binds and registers them. For each Workflow:
- a daemon (`workflow_daemon`) is that workflow's runner for as long as it runs, and
  then waits out its TTL;
- an event handler (`workflow_event`) forwards spec changes (`spec.stop`) to the runner,
  and wakes the daemon of a reopened (`shoal retry`) or deleted workflow;
- `route_pod_event` hands each pod labelled as Shoal's to the runner of the workflow its
  workflow-uid label names: no listing per event, no polling, no requeue delay. The
  label is only a claim: the runner accepts a pod only from its namespace and controlled
  by the Job it created (ownership.py), and reports any other as an impostor.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import kopf

from shoal.api.workflow import FINISHED_PHASES
from shoal.artifact_steps import run_prefix
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.artifact_store import WorkflowStore
from shoal.kube.children import LABEL_PARENT_UID
from shoal.kube.naming import LABEL_WORKFLOW_UID
from shoal.kube.runner import WorkflowRunner, wait_ttl
from shoal.kube.templates import frozen_body
from shoal.kube.workflow_body import WorkflowControls, deletion_due
from shoal.operator_context import OperatorMemo

__all__ = [
    "collects_on_deletion",
    "post_event",
    "route_pod_event",
    "run_unless_gone",
    "without_daemon_finalizer",
    "workflow_daemon",
    "workflow_deleted",
    "workflow_event",
]

log = logging.getLogger("shoal.operator")
REOPENED, GONE = "shoal_reopened", "shoal_gone"
"""Keys of kopf's per-object memo: the signals `workflow_event` gives a daemon."""
FINISHED = FINISHED_PHASES
Waiter = Callable[[float | None], Awaitable[bool]]


def post_event(body: dict[str, Any], type: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event about a workflow through kopf's poster (never blocks)."""
    try:
        kopf.event(kopf.Body(cast(kopf.RawBody, body)), type=type, reason=reason, message=message)
    except LookupError:  # outside the operator's context (unit tests): nothing to post to
        log.info("%s %s: %s", type, reason, message)


def _signal(kopf_memo: Any, key: str) -> asyncio.Event:
    event: asyncio.Event = kopf_memo.setdefault(key, asyncio.Event())
    return event


async def workflow_daemon(
    shared: OperatorMemo, body: kopf.Body, stopped: kopf.DaemonStopped, **kwargs: Any
) -> None:
    """Run the workflow, then wait out its TTL (and delete it) unless it is reopened first.

    `shoal retry` sets a finished workflow's status back to Running, and a fresh runner
    carries on from the status (finished nodes keep their outputs, Pending ones run
    again). The signal comes from workflow_event, through kopf's per-object memo.
    Sharded, it runs only while this replica holds the workflow's shard.
    """
    if shared.shards is not None:
        work = functools.partial(_daemon, shared, body, stopped, kwargs["memo"])
        await shared.shards.run_while_owned(str(body.metadata.uid), stopped, work)
    else:
        await _daemon(shared, body, stopped, kwargs["memo"])


async def _daemon(
    shared: OperatorMemo, body: kopf.Body, stopped: kopf.DaemonStopped, kopf_memo: Any
) -> None:
    api = shared.connected_api()
    reopened, gone = _signal(kopf_memo, REOPENED), _signal(kopf_memo, GONE)

    async def reopened_or_stopped(seconds: float | None) -> bool:
        await _first_of([reopened.wait(), stopped.wait()], seconds)
        return reopened.is_set() or stopped.is_set()

    raw: dict[str, Any] | None = copy.deepcopy(dict(body))
    while raw is not None:
        reopened.clear()
        if not await _run_once(shared, api, raw, stopped, gone):
            return  # deleted: its Jobs and pods go with it (owner references)
        raw = await _wait_finished(api, raw, stopped, reopened, reopened_or_stopped)


async def _run_once(
    shared: OperatorMemo,
    api: KubeApi,
    raw: dict[str, Any],
    stopped: kopf.DaemonStopped,
    gone: asyncio.Event,
) -> bool:
    """One runner over the workflow until it finishes; False if it was deleted first."""
    meta = raw["metadata"]
    archive = shared.archive
    frozen = await frozen_body(api, raw, post_event)  # templates: resolved once, recorded
    if frozen is None:
        return True
    runner = WorkflowRunner(
        api,
        frozen,
        shared.config.runner,
        post_event,
        log_sink=archive.sink if archive is not None else None,
        attempt_sink=archive.attempts if archive is not None else None,
        dispatch_limit=shared.dispatch_limit,
        on_dispatch=shared.metrics.dispatch_latency.observe,
        on_error=shared.metrics.reconcile_errors.inc,
        artifacts=shared.config.artifacts,
        on_impostor=shared.impostors,
        memo_db=archive.pool if archive is not None else None,  # memoize's cache
    )
    uid = meta["uid"]
    shared.runners[uid] = runner
    shared.metrics.workflows_running.inc()
    task = asyncio.current_task()
    if task is not None:
        shared.running.add(task)
    try:
        if not await run_unless_gone(runner.run(stopped.is_set), gone):
            return False
    except ApiError as err:
        # kopf retries the daemon; its own line does not name the object.
        log.error("workflow %s/%s: %s", meta["namespace"], meta["name"], err)
        raise
    finally:
        if task is not None:
            shared.running.discard(task)
        shared.runners.pop(uid, None)
        shared.metrics.workflows_running.dec()
        if archive is not None:
            archive.sink.forget(uid)  # its log size count
    if runner.state is not None:
        shared.metrics.workflow_finished(runner.state)
    return True


async def _wait_finished(
    api: KubeApi,
    raw: dict[str, Any],
    stopped: kopf.DaemonStopped,
    reopened: asyncio.Event,
    reopened_or_stopped: Waiter,
) -> dict[str, Any] | None:
    """Wait out a finished workflow's TTL; its body when reopened, None when done."""
    meta = raw["metadata"]
    path = workflows_path(meta["namespace"], meta["name"])
    while not stopped.is_set():
        reopened.clear()  # before reading, so a later reopening is never missed
        try:
            raw = await api.get(path)
        except Exception:  # deleted meanwhile: nothing to wait for
            return None
        status = raw.get("status") or {}
        if status.get("phase") not in FINISHED:
            return raw  # reopened: run it again
        due = deletion_due(raw)
        if not await reopened_or_stopped(None if due is None else max(0.0, due - time.time())):
            await wait_ttl(raw, api, reopened_or_stopped)
            return None
    return None  # the operator is exiting (or the object is gone): never delete early


async def _first_of(waits: list[Awaitable[Any]], seconds: float | None) -> None:
    """Until the first of `waits` completes or `seconds` pass (None: no limit)."""
    waiters = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def collects_on_deletion(shared: OperatorMemo, spec: kopf.Spec, **_: Any) -> bool:
    """The filter of `workflow_deleted`: only Workflows whose artifacts go with them.

    kopf adds its finalizer to the objects this filter matches, so deleting any other
    Workflow never waits on S3.
    """
    controls = WorkflowControls.of({"spec": spec})
    return shared.config.artifacts.settings is not None and controls.collects_on_deletion


async def workflow_deleted(
    shared: OperatorMemo, body: kopf.Body, spec: kopf.Spec, **_: Any
) -> None:
    """`artifacts.gc: OnDeletion`: collect the run's artifacts before the object goes."""
    meta = body["metadata"]
    if not shared.owns(str(meta["uid"])):  # its shard's holder collects; kopf asks again
        raise kopf.TemporaryError("another replica holds this workflow's shard", delay=5)
    artifacts = WorkflowControls.of({"spec": spec}).artifacts
    if artifacts is None:
        return  # an invalid spec never ran, so it has nothing stored
    store = WorkflowStore(
        shared.connected_api(), shared.config.artifacts, artifacts, meta["namespace"]
    )
    problem = await store.collect(run_prefix(meta["namespace"], meta["name"], meta["uid"]))
    if problem is not None:  # bounded retries are over: never block the deletion forever
        post_event(dict(body), "Warning", "ArtifactGCFailed", problem[:1024])


async def workflow_event(shared: OperatorMemo, event: kopf.RawEvent, **kwargs: Any) -> None:
    """Each watch event of a Workflow: archive it, signal its daemon or runner."""
    obj = event.get("object") or {}
    kind = event.get("type")
    uid = (obj.get("metadata") or {}).get("uid", "")
    runner = shared.runners.get(uid)
    if shared.archive is not None and kind != "DELETED" and shared.owns(str(uid)):
        shared.archive.runs.offer(dict(obj))  # each status patch comes back here
    if kind == "DELETED":
        # No finalizer holds a Workflow for its daemon (see without_daemon_finalizer):
        # the deletion is the signal to stop running it.
        _signal(kwargs["memo"], GONE).set()
        if runner is not None:  # before it is cancelled: no status write to that name
            runner.deleted = True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    parent = shared.runners.get(str(labels.get(LABEL_PARENT_UID, "")))
    if parent is not None:  # a child workflow's event (kube/children.py checks the claim)
        parent.children.observe(str(kind), dict(obj))
    if runner is not None:
        if kind == "MODIFIED":
            runner.spec_changed(dict(obj))
    elif kind != "DELETED" and (obj.get("status") or {}).get("phase") in {"Pending", "Running"}:
        # Not finished, yet no runner: reopened (`shoal retry`). Wake its daemon.
        _signal(kwargs["memo"], REOPENED).set()


def route_pod_event(shared: OperatorMemo, kind: str, pod: dict[str, Any]) -> None:
    """Hand a labelled pod's event to the runner its workflow-uid label names (if live).

    `pod` is the decoded watch object, not shared with anyone: it is passed on as is.
    """
    labels = (pod.get("metadata") or {}).get("labels") or {}
    runner = shared.runners.get(labels.get(LABEL_WORKFLOW_UID, ""))
    if runner is not None:
        runner.pod_event(kind, pod)


def without_daemon_finalizer(
    registry: kopf.OperatorRegistry, daemon: Callable[..., Any]
) -> kopf.OperatorRegistry:
    """Drop the finalizer kopf puts on every object that has a daemon.

    kopf blocks deletion until it has stopped an object's daemons, so a Workflow deleted
    while the operator is down (or gone for good) would hang in Terminating. Shoal's
    daemon needs no such guarantee: the Workflow's Jobs and pods carry owner references
    and go with it, and the DELETED event stops the runner (`shoal_gone`). Only Workflows
    whose artifacts are collected on deletion keep a finalizer (the on.delete handler).
    kopf offers no option for this, so the registered handlers are replaced by copies
    that say so.
    """
    spawning = registry._spawning
    spawning._handlers = [
        dataclasses.replace(handler, requires_finalizer=False) if handler.fn is daemon else handler
        for handler in spawning._handlers
    ]
    return registry


async def run_unless_gone(run: Coroutine[Any, Any, None], gone: asyncio.Event) -> bool:
    """Await `run` unless `gone` is set first (then cancel it). True if it ran to its end."""
    task = asyncio.ensure_future(run)
    waiter = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()  # its exception, if any
    return True
