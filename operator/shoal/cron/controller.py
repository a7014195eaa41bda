"""The CronWorkflow controller's kopf handlers: a daemon per CronWorkflow, and the events
that wake it early.

Each handler is a module-level function taking the operator's `CronRuntime` first
(`crons`: kopf passes its own `runtime` argument);
`app.py` binds and registers them. The daemon's loop is `CronRuntime.run`; one pass is
`passes.reconcile`; what a run looks like is `runs.py`.
"""

from __future__ import annotations

from typing import Any

import kopf

from shoal.cron.runs import ANNOTATION_TRIGGER, MANUAL
from shoal.cron.runtime import CronRuntime
from shoal.cron.schedule import FINISHED

__all__ = ["cron_cleanup", "cron_daemon", "cron_event", "run_event", "upstream_event"]


async def cron_cleanup(crons: CronRuntime, **_: Any) -> None:
    """Write the fires pending for the archive and close the poll client."""
    await crons.close()


async def cron_daemon(
    crons: CronRuntime, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """One CronWorkflow's loop, for as long as it exists and the operator runs (sharded:
    while this replica holds its shard, so each scheduled time fires from one replica)."""
    key = (str(body.metadata.namespace), str(body.metadata.name))
    shards = crons.memo.shards
    if shards is None:
        await crons.run(key, stopped)
    else:
        await shards.run_while_owned(
            str(body.metadata.uid), stopped, lambda: crons.run(key, stopped)
        )


async def cron_event(crons: CronRuntime, event: kopf.RawEvent, **_: Any) -> None:
    """A CronWorkflow changed: wake its daemon when its spec (generation) did."""
    obj: dict[str, Any] = dict(event.get("object") or {})
    meta: dict[str, Any] = obj.get("metadata") or {}
    state = crons.states.get((str(meta.get("namespace")), str(meta.get("name"))))
    if state is not None and int(meta.get("generation") or 0) != state.generation:
        state.wake.set()  # the spec changed


async def run_event(crons: CronRuntime, event: kopf.RawEvent, **_: Any) -> None:
    """A run of some CronWorkflow: record a manual fire; wake its owner when it ends."""
    obj: dict[str, Any] = dict(event.get("object") or {})
    meta: dict[str, Any] = obj.get("metadata") or {}
    kind = event.get("type")
    if (
        kind in (None, "ADDED")
        and crons.memo.owns(str(meta.get("uid")))
        and (meta.get("annotations") or {}).get(ANNOTATION_TRIGGER) == MANUAL
    ):
        crons.manual_run_seen(obj)
    finished = (obj.get("status") or {}).get("phase") in FINISHED
    if not finished and kind != "DELETED":
        return
    for owner in meta.get("ownerReferences") or []:
        state = crons.states.get((str(meta.get("namespace")), str(owner.get("name"))))
        if owner.get("kind") == "CronWorkflow" and state is not None:
            state.wake.set()


async def upstream_event(crons: CronRuntime, event: kopf.RawEvent, **_: Any) -> None:
    """Any Workflow: when it finishes, wake the CronWorkflows that fire after it."""
    obj: dict[str, Any] = dict(event.get("object") or {})
    if crons.followers and (obj.get("status") or {}).get("phase") in FINISHED:
        crons.upstream_finished(obj)
