"""The runner's side of `synchronization` and `memoize` (docs/flow-control.md).

`act` carries out the gate decisions (core/flow_gates.py) in the background and reports
back through `deliver` (the runner's queue): lock requests are retried until granted,
every LOCK_POLL_SECONDS and at once when a runner of this process releases a lock in the
namespace; a release follows the end of a node or of the run; memo lookups and stores go
to the namespace's cache. `restore` takes back the locks a restarted runner still holds,
since the table, not the operator's memory, is where they live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.api.workflow import WorkflowStatus
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import AcquireLocks, Decision, FinishWorkflow, LookupMemo
from shoal.core.flow_gates import (
    GateEvent,
    LocksGranted,
    LocksWaiting,
    MemoFound,
    memo_result,
    released_by,
)
from shoal.core.locks import LockRequest, holder_id
from shoal.core.memo import MemoLookup
from shoal.core.state import RunState
from shoal.kube import memo_store
from shoal.kube.api import ApiError, KubeApi
from shoal.kube.locks import acquire, read_table, release
from shoal.kube.shared_lease import ConflictLimit

__all__ = ["LOCK_POLL_SECONDS", "KubeFlow"]

log = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 2.0
"""How often a waiting runner looks at the table again (others may release it from
another operator replica, or their workflow may be gone)."""

_waiting: weakref.WeakSet[KubeFlow] = weakref.WeakSet()


class KubeFlow:
    """Locks and memo entries of one Workflow's runner."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        uid: str,
        deliver: Callable[[GateEvent], None],
        spawn: Callable[[Awaitable[Any]], asyncio.Task[Any]],
        memo_db: Any = None,
    ) -> None:
        self.api, self.namespace, self.name, self.uid = api, namespace, name, uid
        self.memo_db = memo_db
        """The archive's pool when it is configured: the memo cache is its table then."""
        self.deliver = deliver
        self.spawn = spawn
        self.wanted: dict[str, LockRequest] = {}
        self._poller: asyncio.Task[Any] | None = None
        self._wake = asyncio.Event()
        self._told: dict[str, list[str]] = {}
        """What each waiting holder was last told holds its locks (told again on change)."""

    async def restore(self, wf: CompiledWorkflow, state: RunState, saved: WorkflowStatus) -> None:
        """After a restart: finished nodes' memo hits and misses as the status had them,
        and the locks this Workflow holds in the table, held."""
        for name, seen in saved.nodes.items():
            memo = seen.memoized
            if memo is not None and name in state.nodes and state.nodes[name].phase.finished:
                reused = dict(seen.outputs or {}) if memo.hit else None
                state.memo[name] = MemoLookup(memo.key, done=True, outputs=reused)
        uses = wf.spec.synchronization is not None
        if not uses and not any(n.spec.synchronization for n in wf.nodes.values()):
            return
        table = await read_table(self.api, self.namespace)
        for entry in table.holders:
            if entry.uid == self.uid:
                node = entry.holder[len(self.uid) + 1 :]  # "" for the workflow's own
                state.locks_wanted.add(node)
                state.locks_held.add(node)

    def act(self, state: RunState, decision: Decision) -> None:
        if isinstance(decision, AcquireLocks):
            holder = holder_id(self.uid, decision.node)
            self.wanted[holder] = LockRequest(
                holder, self.name, decision.locks, decision.priority, time.time()
            )
            self._kick()
        elif isinstance(decision, LookupMemo):
            self.spawn(self._lookup(decision))
        gone = {holder_id(self.uid, node) for node in released_by(state, decision)}
        if gone or isinstance(decision, FinishWorkflow):
            for holder in gone:
                self.wanted.pop(holder, None)
            whole = self.uid if isinstance(decision, FinishWorkflow) else None
            self.spawn(self._release(gone, whole))
        result = memo_result(state, decision)
        if result is not None:
            self.spawn(self._store(*result))

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        _waiting.discard(self)

    def _kick(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = self.spawn(self._poll())
        else:
            self._wake.set()

    async def _poll(self) -> None:
        _waiting.add(self)
        try:
            while self.wanted:
                self._wake.clear()
                try:
                    held, blockers, refused = await acquire(
                        self.api, self.namespace, list(self.wanted.values()), self.uid
                    )
                except (ApiError, ConflictLimit) as err:
                    log.warning("%s/%s: locks: %s", self.namespace, self.name, err)
                    held, blockers, refused = set(), {}, ""
                if refused:
                    log.warning("%s/%s: locks: %s", self.namespace, self.name, refused)
                for holder in sorted(held):
                    if self.wanted.pop(holder, None) is not None:
                        self._told.pop(holder, None)
                        self.deliver(LocksGranted(holder[len(self.uid) + 1 :]))
                for holder, names in blockers.items():
                    if holder in self.wanted and self._told.get(holder) != names:
                        self._told[holder] = names
                        self.deliver(LocksWaiting(holder[len(self.uid) + 1 :], tuple(names)))
                if self.wanted:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(LOCK_POLL_SECONDS):
                            await self._wake.wait()
        finally:
            _waiting.discard(self)

    async def _release(self, holders: set[str], uid: str | None) -> None:
        try:
            await release(self.api, self.namespace, holders, uid)
        except (ApiError, ConflictLimit) as err:  # others release it once we are finished
            log.warning("%s/%s: releasing locks: %s", self.namespace, self.name, err)
        for other in list(_waiting):
            if other.namespace == self.namespace and other is not self:
                other._wake.set()

    async def _lookup(self, decision: LookupMemo) -> None:
        outputs = None
        now = time.time()
        try:
            if self.memo_db is not None:
                from shoal.archive.memo import memo_lookup

                found = memo_lookup(
                    self.memo_db, self.namespace, decision.key, decision.max_age, now
                )
            else:
                found = memo_store.lookup(
                    self.api, self.namespace, decision.key, decision.max_age, now
                )
            outputs = await found
        except Exception as err:  # a cache that cannot be read (database down): a miss
            log.warning("%s/%s: memo lookup: %s", self.namespace, self.name, err)
        self.deliver(MemoFound(decision.node, outputs))

    async def _store(self, key: str, outputs: dict[str, Any]) -> None:
        origin, now = f"{self.namespace}/{self.name}", time.time()
        try:
            if self.memo_db is not None:
                from shoal.archive.memo import memo_store as archived_store

                stored = archived_store(self.memo_db, self.namespace, key, outputs, now, origin)
            else:
                stored = memo_store.store(self.api, self.namespace, key, outputs, now, origin)
            note = await stored
        except Exception as err:  # not cached; the node's own result stands
            note = str(err)
        if note is not None:
            log.warning("%s/%s: memoize: not cached: %s", self.namespace, self.name, note)
