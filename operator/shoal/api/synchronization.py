"""Flow-control fields of a Workflow: `synchronization` (mutexes and semaphores) and
`memoize`, with the status entries that report them (docs/flow-control.md).

They live apart from `api/workflow.py` so the concept reads in one place; `Node` and
`WorkflowSpec` only hold a field of these types.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from shoal.api.common import DNS_SUBDOMAIN, STATUS_CONFIG, ApiModel
from shoal.api.limits import MAX_EXPRESSION_LENGTH, MAX_NAME_LENGTH

__all__ = [
    "DURATION_PATTERN",
    "MAX_LOCKS_PER_HOLDER",
    "MAX_SEMAPHORE_LIMIT",
    "LockStatus",
    "MemoStatus",
    "Memoize",
    "Mutex",
    "Semaphore",
    "Synchronization",
]

MAX_LOCKS_PER_HOLDER = 8
"""Mutexes plus semaphores one workflow or node may take at once."""
MAX_SEMAPHORE_LIMIT = 10000
DURATION_PATTERN = r"^([0-9]{1,6}[smhd]){1,4}$"
"""`90s`, `10m`, `1h30m`, `7d`: units s, m, h, d, largest first."""


class Mutex(ApiModel):
    """A lock only one holder in the namespace has at a time."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=DNS_SUBDOMAIN)
    """Shared by every Workflow of the namespace that names it."""


class Semaphore(ApiModel):
    """A lock at most `limit` holders in the namespace have at a time."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=DNS_SUBDOMAIN)
    """Shared by every Workflow of the namespace that names it."""
    limit: int = Field(ge=1, le=MAX_SEMAPHORE_LIMIT)
    """Holders at once. When holders and waiters declare different limits, the smallest
    one applies (no declarer ever sees more holders than it asked for)."""


class Synchronization(ApiModel):
    """Locks held while the workflow (or the node) runs: all of them or none, so that
    two holders taking the same locks never deadlock (docs/flow-control.md)."""

    mutexes: list[Mutex] = Field(default_factory=list, max_length=MAX_LOCKS_PER_HOLDER)
    semaphores: list[Semaphore] = Field(default_factory=list, max_length=MAX_LOCKS_PER_HOLDER)
    priority: int = Field(0, ge=-1000, le=1000)
    """Waiters with a higher priority get a lock first; equal ones in request order."""

    @model_validator(mode="after")
    def _some_locks(self) -> Synchronization:
        names = [f"mutex/{m.name}" for m in self.mutexes]
        names += [f"semaphore/{s.name}" for s in self.semaphores]
        if not names:
            raise ValueError("`synchronization` needs at least one mutex or semaphore")
        if len(names) > MAX_LOCKS_PER_HOLDER:
            raise ValueError(f"at most {MAX_LOCKS_PER_HOLDER} locks per holder")
        if len(set(names)) != len(names):
            raise ValueError("a lock is named twice in `synchronization`")
        return self

    def lock_limits(self) -> dict[str, int]:
        """Each lock's id (`mutex/NAME`, `semaphore/NAME`) and the limit asked for."""
        limits = {f"mutex/{m.name}": 1 for m in self.mutexes}
        limits.update({f"semaphore/{s.name}": s.limit for s in self.semaphores})
        return dict(sorted(limits.items()))


class Memoize(ApiModel):
    """Reuse the outputs of an earlier successful run of this node with the same key."""

    key: str = Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH)
    """Text with `${{ }}` templates (`"price-${{ params.day }}"`), rendered when the node is
    ready; nodes of any Workflow in the namespace with the same key share the entry."""
    max_age: str = Field(pattern=DURATION_PATTERN, max_length=24)
    """How old an entry may be and still be reused (`90s`, `10m`, `1h30m`, `7d`)."""


class LockStatus(ApiModel):
    """The locks a workflow or node holds or waits for (`mutex/NAME`, `semaphore/NAME`)."""

    model_config = STATUS_CONFIG

    held: list[str] | None = None
    waiting: list[str] | None = None
    """Empty once granted; while waiting, every lock asked for (they are taken together)."""
    holders: list[str] | None = None
    """While waiting: who holds those locks (`WORKFLOW` or `WORKFLOW/NODE`, at most 3)."""


class MemoStatus(ApiModel):
    """Whether a memoized node reused an entry."""

    model_config = STATUS_CONFIG

    key: str
    hit: bool
    """True: the outputs came from the cache and no pod ran."""
