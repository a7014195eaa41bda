"""Memoization as data: durations, the cache's entries and its bounds (pure).

A memoized node whose key has an entry younger than `maxAge` finishes Succeeded with that
entry's outputs and runs no pod. Entries hold outputs as the status holds them, so an
offloaded output is reused as its reference (the artifact itself is not copied). The
store is a bounded map key -> entry, least recently used first out: executors keep it in
a file (local) or in one Lease per namespace (kube/memo_store.py), read and written
whole; both use `MemoCache` for every decision.
"""

from __future__ import annotations

import json
from typing import Any

from shoal.core.lazy_re import LazyPattern  # compiled on first use: start-up
from shoal_worker.records import Record, field

__all__ = [
    "MAX_ENTRY_BYTES",
    "MAX_KEY_LENGTH",
    "MAX_MEMO_BYTES",
    "MAX_MEMO_ENTRIES",
    "MemoCache",
    "MemoEntry",
    "MemoLookup",
    "parse_duration",
]

MAX_MEMO_ENTRIES = 500
"""Entries kept per cache (namespace, or local state directory); the least recently used
goes first."""
MAX_MEMO_BYTES = 200 * 1024
"""JSON size of a whole cache (the operator keeps it in a Lease annotation: 256 KiB)."""
MAX_ENTRY_BYTES = 32 * 1024
"""Outputs larger than this are not cached (offloaded outputs are small references)."""
MAX_KEY_LENGTH = 512

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = LazyPattern(r"([0-9]{1,6})([smhd])")


def parse_duration(text: str) -> float:
    """`90s`, `10m`, `1h30m`, `7d` in seconds; ValueError names the text otherwise."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is no duration (use 90s, 10m, 1h30m or 7d)")
    return float(sum(int(n) * _UNITS[u] for n, u in parts))


class MemoLookup(Record, frozen=False):
    """A memoized node's lookup in a run: its key, and once answered, hit or miss."""

    key: str
    done: bool = False
    outputs: dict[str, Any] | None = None
    """The reused outputs on a hit; None on a miss."""

    @property
    def hit(self) -> bool:
        return self.outputs is not None


class MemoEntry(Record, frozen=False):
    """One cached result: the outputs and when they were computed and last reused."""

    outputs: dict[str, Any]
    created_at: float
    used_at: float
    workflow: str = ""
    """`NAMESPACE/NAME` (or the local file) of the run that computed it."""


class MemoCache(Record, frozen=False):
    """A bounded key -> entry map (insertion order is recency: oldest first)."""

    entries: dict[str, MemoEntry] = field(default_factory=dict)

    def lookup(self, key: str, now: float, max_age: float) -> MemoEntry | None:
        """The entry for `key` if it is at most `max_age` seconds old (and mark it used)."""
        entry = self.entries.get(key)
        if entry is None or now - entry.created_at > max_age or entry.created_at > now + 60:
            return None
        entry.used_at = now
        self.entries[key] = self.entries.pop(key)  # most recently used last
        return entry

    def store(self, key: str, outputs: dict[str, Any], now: float, workflow: str) -> str | None:
        """Record `outputs` under `key`; None, or why they were not cached."""
        if len(key) > MAX_KEY_LENGTH:
            return f"key longer than {MAX_KEY_LENGTH} characters"
        try:
            size = len(json.dumps(outputs, allow_nan=False))
        except (TypeError, ValueError) as err:
            return f"outputs are not plain JSON: {err}"
        if size > MAX_ENTRY_BYTES:
            return f"outputs are {size} bytes, above the {MAX_ENTRY_BYTES}-byte entry bound"
        self.entries.pop(key, None)
        self.entries[key] = MemoEntry(outputs, now, now, workflow)
        self._evict()
        return None

    def _evict(self) -> None:
        while len(self.entries) > MAX_MEMO_ENTRIES:
            del self.entries[next(iter(self.entries))]
        while len(self.entries) > 1 and len(json.dumps(self.to_json())) > MAX_MEMO_BYTES:
            del self.entries[next(iter(self.entries))]

    def to_json(self) -> dict[str, Any]:
        return {
            key: {
                "outputs": e.outputs,
                "createdAt": e.created_at,
                "usedAt": e.used_at,
                "workflow": e.workflow,
            }
            for key, e in self.entries.items()
        }

    @classmethod
    def from_json(cls, raw: object) -> MemoCache:
        """The cache from storage, least recently used first; malformed entries dropped."""
        cache = cls()
        if not isinstance(raw, dict):
            return cache
        found: list[tuple[float, str, MemoEntry]] = []
        for key, value in list(raw.items())[: 2 * MAX_MEMO_ENTRIES]:
            if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
                continue
            if not isinstance(value, dict) or not isinstance(value.get("outputs"), dict):
                continue
            created, used = value.get("createdAt"), value.get("usedAt", value.get("createdAt"))
            if not isinstance(created, int | float) or not isinstance(used, int | float):
                continue
            origin = value.get("workflow")
            workflow = origin[:300] if isinstance(origin, str) else ""
            entry = MemoEntry(value["outputs"], float(created), float(used), workflow)
            found.append((float(used), key, entry))
        for _, key, entry in sorted(found, key=lambda f: f[0]):
            cache.entries[key] = entry
        cache._evict()
        return cache
