"""Mutexes and semaphores on Kubernetes: a namespace's lock table in the Lease
`shoal-locks` (docs/flow-control.md).

The decisions are `core/locks.LockTable`'s; this module only reads and writes the table
(kube/shared_lease.py: one atomic write per change, so a holder gets all its locks
or none even with several operator replicas) and decides which entries are dead: an entry
whose Workflow is gone (deleted, or replaced by one with another uid) or finished is
released by whichever runner looks next. That is what frees the locks of a workflow
whose operator died and never came back, or that was deleted while it held them.
"""

from __future__ import annotations

from shoal.api.workflow import FINISHED_PHASES
from shoal.core.locks import LockRequest, LockTable, TableFull
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.shared_lease import read_json, update_json

__all__ = [
    "LOCKS_LEASE",
    "MAX_LIVENESS_CHECKS",
    "acquire",
    "dead_uids",
    "read_table",
    "release",
]

LOCKS_LEASE = "shoal-locks"
_LABELS = {"app.kubernetes.io/managed-by": "shoal", "shoal.dev/purpose": "locks"}
MAX_LIVENESS_CHECKS = 50
"""Other workflows' entries checked for liveness per acquisition (the rest next time)."""


async def read_table(api: KubeApi, namespace: str) -> LockTable:
    return LockTable.from_json(await read_json(api, namespace, LOCKS_LEASE))


async def dead_uids(api: KubeApi, namespace: str, table: LockTable, me: str) -> set[str]:
    """Uids of entries (not `me`'s) whose Workflow is gone or finished."""
    seen: dict[str, str] = {}
    for entry in [*table.holders, *table.waiters]:
        if entry.uid != me and entry.uid not in seen and len(seen) < MAX_LIVENESS_CHECKS:
            seen[entry.uid] = entry.workflow
    dead: set[str] = set()
    for uid, name in seen.items():
        try:
            wf = await api.get(workflows_path(namespace, name))
        except ApiError as err:
            if err.status in (400, 404):  # gone (or a name no Workflow can have)
                dead.add(uid)
                continue
            raise
        meta, status = wf.get("metadata") or {}, wf.get("status") or {}
        if meta.get("uid") != uid or status.get("phase") in FINISHED_PHASES:
            dead.add(uid)
    return dead


async def acquire(
    api: KubeApi, namespace: str, requests: list[LockRequest], me: str
) -> tuple[set[str], dict[str, list[str]], str]:
    """Queue `requests` (idempotent), release dead entries, grant what can be granted.

    Returns the holder ids among `requests` that now hold their locks, who holds the
    locks each of the others waits for, and why a request was refused ("" if none)."""
    dead = await dead_uids(api, namespace, await read_table(api, namespace), me)
    wanted = {r.holder for r in requests}

    def change(raw: object) -> tuple[object, tuple[set[str], dict[str, list[str]], str]]:
        table = LockTable.from_json(raw)
        table.release(lambda r: r.uid in dead)
        refused = ""
        for req in requests:
            try:
                table.request(req)
            except TableFull as err:
                refused = str(err)
        table.grant()
        held = {r.holder for r in table.holders if r.holder in wanted}
        blockers = {r.holder: table.blocking(r) for r in requests if r.holder not in held}
        return table.to_json(), (held, blockers, refused)

    return await update_json(api, namespace, LOCKS_LEASE, change, _LABELS)


async def release(api: KubeApi, namespace: str, holders: set[str], uid: str | None) -> None:
    """Remove `holders`' entries (and every entry of `uid`, when given), then grant."""

    def change(raw: object) -> tuple[object, None]:
        table = LockTable.from_json(raw)
        table.release(lambda r: r.holder in holders or r.uid == uid)
        table.grant()
        return table.to_json(), None

    await update_json(api, namespace, LOCKS_LEASE, change, _LABELS)
