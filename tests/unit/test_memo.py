"""The memo cache (core/memo.py): maxAge, durations, LRU eviction under an entry and a
size bound, and stored entries read back without trusting them."""

from __future__ import annotations

import json

import pytest

from shoal.core.memo import (
    MAX_ENTRY_BYTES,
    MAX_KEY_LENGTH,
    MAX_MEMO_BYTES,
    MAX_MEMO_ENTRIES,
    MemoCache,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("1h30m", 5400), ("7d", 604800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "m10", "1h 30m", "-5s"])
def test_bad_durations_name_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="no duration"):
        parse_duration(text)


def test_an_entry_is_reused_within_max_age_and_not_after() -> None:
    cache = MemoCache()
    assert cache.store("k", {"x": 1}, now=100.0, workflow="ns/a") is None
    hit = cache.lookup("k", now=159.0, max_age=60)
    assert hit is not None
    assert hit.outputs == {"x": 1}
    assert hit.workflow == "ns/a"
    assert cache.lookup("k", now=161.0, max_age=60) is None
    assert cache.lookup("other", now=101.0, max_age=60) is None


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = MemoCache()
    for i in range(MAX_MEMO_ENTRIES):
        cache.store(f"k{i}", {}, now=float(i), workflow="")
    assert cache.lookup("k0", now=1000.0, max_age=1e9) is not None  # k0 now most recent
    cache.store("new", {}, now=1001.0, workflow="")
    assert len(cache.entries) == MAX_MEMO_ENTRIES
    assert "k0" in cache.entries
    assert "k1" not in cache.entries


def test_the_whole_cache_stays_under_its_size_bound() -> None:
    cache = MemoCache()
    blob = "x" * (MAX_ENTRY_BYTES // 2)
    for i in range(3 * MAX_MEMO_BYTES // len(blob)):
        assert cache.store(f"k{i}", {"v": blob}, now=float(i), workflow="") is None

    assert len(json.dumps(cache.to_json())) <= MAX_MEMO_BYTES
    assert f"k{3 * MAX_MEMO_BYTES // len(blob) - 1}" in cache.entries


def test_oversized_outputs_and_keys_are_not_cached_and_say_why() -> None:
    cache = MemoCache()
    assert "entry bound" in (cache.store("k", {"v": "x" * MAX_ENTRY_BYTES}, 1.0, "") or "")
    assert "key longer" in (cache.store("k" * (MAX_KEY_LENGTH + 1), {}, 1.0, "") or "")
    assert "plain JSON" in (cache.store("k", {"v": float("nan")}, 1.0, "") or "")
    assert cache.entries == {}


def test_stored_cache_round_trips_in_recency_order_and_drops_bad_entries() -> None:
    cache = MemoCache()
    cache.store("a", {"x": 1}, 1.0, "ns/w")
    cache.store("b", {"x": 2}, 2.0, "ns/w")
    cache.lookup("a", 3.0, 100)
    raw = cache.to_json()
    again = MemoCache.from_json(raw)
    assert list(again.entries) == ["b", "a"]
    raw["bad1"] = {"outputs": [1], "createdAt": 1.0}
    raw["bad2"] = {"outputs": {}, "createdAt": "yesterday"}
    raw["bad3"] = "junk"
    assert list(MemoCache.from_json(raw).entries) == ["b", "a"]
    assert MemoCache.from_json("junk").entries == {}


def test_an_entry_from_the_future_is_not_trusted() -> None:
    cache = MemoCache()
    cache.store("k", {}, now=10_000.0, workflow="")
    assert cache.lookup("k", now=100.0, max_age=1e9) is None
