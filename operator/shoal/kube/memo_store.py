"""The memo cache of a namespace in the Lease `shoal-memo` (docs/flow-control.md).

Shared by every Workflow of the namespace and kept across operator restarts; bounded by
`core/memo.MemoCache` (entries, bytes, least recently used first out). A lookup that
misses writes nothing; a hit marks the entry used and a success stores one, each with one
optimistic-concurrency write (kube/shared_lease.py).
"""

from __future__ import annotations

from typing import Any

from shoal.core.memo import MemoCache
from shoal.kube.api import KubeApi
from shoal.kube.shared_lease import read_json, update_json

__all__ = ["MEMO_LEASE", "lookup", "store"]

MEMO_LEASE = "shoal-memo"
_LABELS = {"app.kubernetes.io/managed-by": "shoal", "shoal.dev/purpose": "memoize"}


async def lookup(
    api: KubeApi, namespace: str, key: str, max_age: float, now: float
) -> dict[str, Any] | None:
    """The outputs cached under `key` at most `max_age` seconds ago, or None."""
    cache = MemoCache.from_json(await read_json(api, namespace, MEMO_LEASE))
    if cache.lookup(key, now, max_age) is None:
        return None

    def touch(raw: object) -> tuple[object, dict[str, Any] | None]:
        fresh = MemoCache.from_json(raw)
        entry = fresh.lookup(key, now, max_age)
        return fresh.to_json(), (dict(entry.outputs) if entry is not None else None)

    return await update_json(api, namespace, MEMO_LEASE, touch, _LABELS)


async def store(
    api: KubeApi, namespace: str, key: str, outputs: dict[str, Any], now: float, origin: str
) -> str | None:
    """Cache `outputs` under `key`; None, or why they were not cached."""

    def put(raw: object) -> tuple[object, str | None]:
        cache = MemoCache.from_json(raw)
        note = cache.store(key, outputs, now, origin)
        return cache.to_json(), note

    return await update_json(api, namespace, MEMO_LEASE, put, _LABELS)
