"""What `shoal get` says about `synchronization` and `memoize` (docs/flow-control.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["node_sync_lines", "workflow_locks_lines"]


def _locks(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    held = [str(x) for x in entry.get("held") or []]
    waiting = [str(x) for x in entry.get("waiting") or []]
    if held:
        return "holds " + ", ".join(held)
    holders = [str(x) for x in entry.get("holders") or []]
    if waiting:
        by = f" (held by {', '.join(holders)})" if holders else ""
        return "waiting for " + ", ".join(waiting) + by
    return None


def workflow_locks_lines(status: dict[str, Any]) -> list[str]:
    """`Locks:` for the workflow-level locks it holds or waits for."""
    own = _locks(status.get("locks"))
    return [f"Locks:      {own}"] if own else []


def node_sync_lines(status: dict[str, Any], order: list[str]) -> list[str]:
    """A `Locks and memo:` section: each node's locks and its memo hit or miss."""
    lines: list[str] = []
    nodes = status.get("nodes") or {}
    per_node = []
    for name in order:
        entry = nodes.get(name) if isinstance(nodes, dict) else None
        if not isinstance(entry, dict):
            continue
        locks = _locks(entry.get("locks"))
        if locks:
            per_node.append(f"  {name}: {locks}")
        memo = entry.get("memoized")
        if isinstance(memo, dict):
            verdict = "hit (outputs reused, no pod)" if memo.get("hit") else "miss (ran, cached)"
            per_node.append(f"  {name}: memo {verdict}, key {str(memo.get('key'))[:200]!r}")
    if per_node:
        lines.extend(["", "Locks and memo:", *per_node])
    return lines
