"""The one check every write the operator makes passes: may this replica write now?

A sharded operator (docs/scaling.md) runs each Workflow's and CronWorkflow's work in a
task whose context carries that object's guard (`GUARD`); asyncio copies the context
into every task the work spawns, so the Job creations, status patches and deletes of a
runner and its helpers all see it without being passed anything. `KubeApi.request`
calls `checked` before sending each write, on every retry too, so a replica that lost
its shard (or could not renew it within its renew deadline) sends nothing further.
Writes outside any shard's work (the lease loop itself, start-up) carry no guard.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = ["CREATED_BY", "GUARD", "Guard", "checked"]

CREATED_BY = "shoal.dev/created-by"
"""Annotation naming the replica that created an object (the audit of who acted)."""
Guard = Callable[[str, str, Any], Any]
"""(method, path, body) → the body to send; raises to refuse the write."""
GUARD: ContextVar[Guard | None] = ContextVar("shoal_write_guard", default=None)


def checked(method: str, path: str, body: Any) -> Any:
    """The body to send for this write, after the current guard (if any) allowed it."""
    guard = GUARD.get()
    return body if guard is None else guard(method, path, body)
