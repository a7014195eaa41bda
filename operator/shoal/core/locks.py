"""Mutexes and semaphores as data: a namespace's lock table and who gets what (pure).

A holder (a workflow, `UID`, or one of its nodes, `UID/NODE`) asks for all its locks in
one request and gets all of them or none: nobody ever holds some locks while waiting for
others, which is what rules out deadlock however requests overlap. Waiters are served in
order of priority (higher first), then request time, then holder id; a waiter that cannot
be served yet reserves one unit of each lock it wants, so a later waiter never overtakes
it on a lock they share (no starvation of multi-lock waiters). Locks are considered in
sorted id order (`mutex/NAME`, `semaphore/NAME`), which is also the order they are listed.

Executors keep the table where their holders can all see it: the local executor in
memory, the operator in one Lease per namespace (kube/locks.py), read and written
whole with optimistic concurrency, so a grant is one atomic write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal_worker.records import Record, field

__all__ = [
    "MAX_TABLE_ENTRIES",
    "LockRequest",
    "LockTable",
    "TableFull",
    "holder_id",
]

MAX_TABLE_ENTRIES = 500
"""Holders plus waiters in one namespace's table (its Lease annotation stays under 256 KiB
with a few locks per entry)."""
_MAX_ID = 320


class TableFull(Exception):
    """The table has MAX_TABLE_ENTRIES entries: the request is refused, not queued."""


def holder_id(uid: str, node: str | None) -> str:
    """The id of a workflow-level (`node` None or "") or node-level holder."""
    return f"{uid}/{node}" if node else uid


class LockRequest(Record):
    """One holder's request for a set of locks, and what it says about itself."""

    holder: str
    workflow: str
    """`NAME` of the Workflow, for people reading the table."""
    locks: dict[str, int]
    """Lock id -> the limit this holder declares (1 for a mutex)."""
    priority: int = 0
    requested_at: float = 0.0

    @property
    def uid(self) -> str:
        return self.holder.split("/", 1)[0]

    def order(self) -> tuple[int, float, str]:
        return (-self.priority, self.requested_at, self.holder)

    def to_json(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "workflow": self.workflow,
            "locks": dict(sorted(self.locks.items())),
            "priority": self.priority,
            "requestedAt": self.requested_at,
        }

    @classmethod
    def from_json(cls, raw: object) -> LockRequest | None:
        """An entry read back from storage; None when it is not one (the table is data
        anyone with rights on Leases could edit, so a bad entry is dropped, not trusted)."""
        if not isinstance(raw, dict):
            return None
        holder, workflow, locks = raw.get("holder"), raw.get("workflow"), raw.get("locks")
        priority, at = raw.get("priority", 0), raw.get("requestedAt", 0.0)
        if not (isinstance(holder, str) and 0 < len(holder) <= _MAX_ID):
            return None
        if not isinstance(workflow, str) or not isinstance(locks, dict) or not locks:
            return None
        if not all(isinstance(k, str) and len(k) <= _MAX_ID for k in locks):
            return None
        if not all(type(v) is int and v >= 1 for v in locks.values()):
            return None
        if type(priority) is not int or not isinstance(at, int | float):
            return None
        return cls(holder, workflow[:_MAX_ID], dict(locks), priority, float(at))


class LockTable(Record, frozen=False):
    """Who holds and who waits for the locks of one namespace."""

    holders: list[LockRequest] = field(default_factory=list)
    waiters: list[LockRequest] = field(default_factory=list)

    def find(self, holder: str) -> tuple[bool, bool]:
        """(holds, waits) for `holder`."""
        holds = any(r.holder == holder for r in self.holders)
        return holds, any(r.holder == holder for r in self.waiters)

    def request(self, req: LockRequest) -> None:
        """Queue `req` unless its holder already holds or waits (idempotent, so an
        executor may ask again after a restart without losing its place)."""
        holds, waits = self.find(req.holder)
        if holds or waits:
            return
        if len(self.holders) + len(self.waiters) >= MAX_TABLE_ENTRIES:
            raise TableFull(f"lock table full ({MAX_TABLE_ENTRIES} holders and waiters)")
        self.waiters.append(req)

    def release(self, match: Callable[[LockRequest], bool]) -> list[LockRequest]:
        """Remove every holder and waiter `match` accepts; return them."""
        gone = [r for r in [*self.holders, *self.waiters] if match(r)]
        self.holders = [r for r in self.holders if not match(r)]
        self.waiters = [r for r in self.waiters if not match(r)]
        return gone

    def limit(self, lock: str) -> int:
        """The smallest limit any holder or waiter declares for `lock`."""
        found = [r.locks[lock] for r in [*self.holders, *self.waiters] if lock in r.locks]
        return min(found) if found else 1

    def grant(self) -> list[LockRequest]:
        """Move every waiter that can be served to the holders, in priority-then-FIFO
        order, all of its locks or none; return those granted."""
        used: dict[str, int] = {}
        for held in self.holders:
            for lock in held.locks:
                used[lock] = used.get(lock, 0) + 1
        granted: list[LockRequest] = []
        for waiter in sorted(self.waiters, key=LockRequest.order):
            wanted = sorted(waiter.locks)
            free = all(used.get(lock, 0) < self.limit(lock) for lock in wanted)
            for lock in wanted:  # served or not, it takes (or reserves) one unit of each
                used[lock] = used.get(lock, 0) + 1
            if free:
                granted.append(waiter)
        taken = {r.holder for r in granted}
        self.holders.extend(granted)
        self.waiters = [r for r in self.waiters if r.holder not in taken]
        return granted

    def to_json(self) -> dict[str, Any]:
        return {
            "holders": [r.to_json() for r in self.holders],
            "waiters": [r.to_json() for r in sorted(self.waiters, key=LockRequest.order)],
        }

    @classmethod
    def from_json(cls, raw: object) -> LockTable:
        """The table from storage; malformed or duplicate entries are dropped."""
        table = cls()
        if not isinstance(raw, dict):
            return table
        seen: set[str] = set()
        for key, target in (("holders", table.holders), ("waiters", table.waiters)):
            entries = raw.get(key)
            for entry in entries[:MAX_TABLE_ENTRIES] if isinstance(entries, list) else []:
                req = LockRequest.from_json(entry)
                if req is not None and req.holder not in seen:
                    seen.add(req.holder)
                    target.append(req)
        return table

    def holding(self, lock: str) -> list[LockRequest]:
        return [r for r in self.holders if lock in r.locks]

    def blocking(self, req: LockRequest, limit: int = 3) -> list[str]:
        """Who holds a lock `req` waits for, as people name them (`WORKFLOW` or
        `WORKFLOW/NODE`), sorted, at most `limit`: what a waiter's status shows."""
        names = {
            r.workflow + (f"/{r.holder.split('/', 1)[1]}" if "/" in r.holder else "")
            for r in self.holders
            if r.holder != req.holder and set(r.locks) & set(req.locks)
        }
        return sorted(names)[:limit]


def with_time(req: LockRequest, at: float) -> LockRequest:
    """`req` requested at `at` (adapters stamp the time they queue it)."""
    return req.replace(requested_at=at)
