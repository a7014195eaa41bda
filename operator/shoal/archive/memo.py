"""The memo cache of `memoize` in PostgreSQL, when the archive is configured
(docs/flow-control.md): one row per (namespace, key), the least recently used rows of a
namespace deleted past MAX_ARCHIVED_MEMO_ENTRIES. The decisions on what may be cached
(key length, entry size) are `core/memo.py`'s, as for the Lease-backed cache.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shoal.archive.db import using
from shoal.archive.pgtext import pg_json
from shoal.core import jsonbounds
from shoal.core.memo import MemoCache

__all__ = ["MAX_ARCHIVED_MEMO_ENTRIES", "memo_lookup", "memo_store"]

MAX_ARCHIVED_MEMO_ENTRIES = 10000
"""Rows kept per namespace; the least recently used go first."""

_LOOKUP = """
UPDATE shoal_memo SET used_at = $4
WHERE namespace = $1 AND key = $2
  AND created_at >= $3 AND created_at <= $4::timestamptz + interval '1 minute'
RETURNING outputs::text
"""
_STORE = """
INSERT INTO shoal_memo (namespace, key, outputs, workflow, created_at, used_at)
VALUES ($1, $2, $3::jsonb, $4, $5, $5)
ON CONFLICT (namespace, key) DO UPDATE
SET outputs = EXCLUDED.outputs, workflow = EXCLUDED.workflow,
    created_at = EXCLUDED.created_at, used_at = EXCLUDED.used_at
"""
_EVICT = """
DELETE FROM shoal_memo WHERE namespace = $1 AND key IN (
    SELECT key FROM shoal_memo WHERE namespace = $1
    ORDER BY used_at DESC OFFSET $2
)
"""


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def memo_lookup(
    db: Any, namespace: str, key: str, max_age: float, now: float
) -> dict[str, Any] | None:
    """The outputs cached under `key` at most `max_age` seconds ago (marked used), or None."""
    oldest = _at(now) - timedelta(seconds=max_age)
    async with using(db) as conn:
        text = await conn.fetchval(_LOOKUP, namespace, key, oldest, _at(now))
    if text is None:
        return None
    value = jsonbounds.loads(text)
    return value if isinstance(value, dict) else None


async def memo_store(
    db: Any, namespace: str, key: str, outputs: dict[str, Any], now: float, origin: str
) -> str | None:
    """Cache `outputs` under `key`; None, or why they were not cached."""
    note = MemoCache().store(key, outputs, now, origin)  # the same bounds as everywhere
    if note is not None:
        return note
    async with using(db) as conn, conn.transaction():
        await conn.execute(_STORE, namespace, key, pg_json(outputs), origin[:300], _at(now))
        await conn.execute(_EVICT, namespace, MAX_ARCHIVED_MEMO_ENTRIES)
    return None
