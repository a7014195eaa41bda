"""The lock table (core/locks.py): priority then FIFO, all locks or none (so several
locks per holder never deadlock), a semaphore's limit never exceeded, bad stored
entries dropped instead of trusted."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.locks import MAX_TABLE_ENTRIES, LockRequest, LockTable, TableFull, holder_id


def req(
    holder: str, *locks: str, priority: int = 0, at: float = 0.0, limit: int = 1
) -> LockRequest:
    return LockRequest(holder, f"wf-{holder}", {lock: limit for lock in locks}, priority, at)


def test_a_mutex_has_one_holder_and_the_next_waiter_gets_it_on_release() -> None:
    table = LockTable()
    for i, holder in enumerate(["a", "b", "c"]):
        table.request(req(holder, "mutex/m", at=float(i)))
    assert [r.holder for r in table.grant()] == ["a"]
    assert table.grant() == []
    table.release(lambda r: r.holder == "a")
    assert [r.holder for r in table.grant()] == ["b"]


def test_higher_priority_first_then_request_order() -> None:
    table = LockTable()
    table.request(req("held", "mutex/m"))
    table.grant()
    table.request(req("early-low", "mutex/m", at=1.0))
    table.request(req("late-high", "mutex/m", priority=5, at=3.0))
    table.request(req("mid-high", "mutex/m", priority=5, at=2.0))
    order = []
    for _ in range(3):
        table.release(lambda r: r.holder in {h.holder for h in table.holders})
        order += [r.holder for r in table.grant()]
    assert order == ["mid-high", "late-high", "early-low"]


def test_a_semaphore_takes_the_smallest_declared_limit() -> None:
    table = LockTable()
    for i in range(5):
        table.request(req(f"h{i}", "semaphore/s", at=float(i), limit=3 if i else 2))
    assert [r.holder for r in table.grant()] == ["h0", "h1"]


def test_several_locks_are_taken_together_or_not_at_all() -> None:
    table = LockTable()
    table.request(req("x", "mutex/b", at=0.0))
    table.grant()
    table.request(req("y", "mutex/a", "mutex/b", at=1.0))
    assert table.grant() == []
    assert table.holding("mutex/a") == []  # y holds nothing while it waits
    table.release(lambda r: r.holder == "x")
    assert [r.holder for r in table.grant()] == ["y"]


def test_a_later_waiter_does_not_overtake_an_earlier_one_on_a_shared_lock() -> None:
    table = LockTable()
    table.request(req("x", "mutex/a", at=0.0))
    table.grant()
    table.request(req("both", "mutex/a", "mutex/b", at=1.0))
    table.request(req("only-b", "mutex/b", at=2.0))
    # b is free, but `both` asked first and reserves it: otherwise a stream of b-only
    # waiters could starve it forever.
    assert table.grant() == []
    table.request(req("only-c", "mutex/c", at=3.0))
    assert [r.holder for r in table.grant()] == ["only-c"]


def test_asking_again_keeps_the_place_in_the_queue() -> None:
    table = LockTable()
    table.request(req("a", "mutex/m", at=0.0))
    table.request(req("b", "mutex/m", at=1.0))
    table.request(req("a", "mutex/m", at=9.0))
    assert len(table.waiters) == 2
    assert [r.holder for r in table.grant()] == ["a"]


def test_the_table_is_bounded() -> None:
    table = LockTable()
    for i in range(MAX_TABLE_ENTRIES):
        table.request(req(f"h{i}", "mutex/m"))
    with pytest.raises(TableFull):
        table.request(req("one-more", "mutex/m"))


def test_stored_entries_round_trip_and_bad_ones_are_dropped() -> None:
    table = LockTable()
    table.request(req("a", "mutex/m", "semaphore/s", priority=2, at=5.0))
    table.grant()
    table.request(req("b", "mutex/m", at=6.0))
    raw = table.to_json()
    again = LockTable.from_json(raw)
    assert again.to_json() == raw
    raw["waiters"] += [
        {"holder": "c", "workflow": "w", "locks": {"mutex/m": 0}},
        {"holder": "d", "workflow": "w", "locks": {}},
        {"holder": "a", "workflow": "w", "locks": {"mutex/m": 1}},  # a duplicate
        "junk",
    ]
    assert [r.holder for r in LockTable.from_json(raw).waiters] == ["b"]
    assert LockTable.from_json(["not", "a", "table"]).to_json() == {"holders": [], "waiters": []}


def test_holder_ids() -> None:
    assert holder_id("uid-1", None) == "uid-1"
    assert holder_id("uid-1", "") == "uid-1"
    assert holder_id("uid-1", "node") == "uid-1/node"
    assert req("uid-1/node", "mutex/m").uid == "uid-1"


LOCKS = ["mutex/a", "mutex/b", "semaphore/s", "semaphore/t"]
LIMITS = {"mutex/a": 1, "mutex/b": 1, "semaphore/s": 3, "semaphore/t": 2}


@settings(max_examples=150, deadline=None)
@given(
    wants=st.lists(
        st.tuples(st.sets(st.sampled_from(LOCKS), min_size=1, max_size=4), st.integers(-2, 2)),
        min_size=1,
        max_size=25,
    ),
    seed=st.integers(0, 2**16),
)
def test_any_overlapping_requests_never_exceed_a_limit_and_all_are_served(
    wants: list[tuple[set[str], int]], seed: int
) -> None:
    rng = random.Random(seed)
    table = LockTable()
    pending = [
        LockRequest(f"h{i}", "wf", {lock: LIMITS[lock] for lock in locks}, prio, float(i))
        for i, (locks, prio) in enumerate(wants)
    ]
    served: list[str] = []
    for _ in range(10 * len(wants) + 10):  # bounded: each round serves or releases one
        if pending and rng.random() < 0.5:
            table.request(pending.pop(0))
        elif table.holders:
            gone = rng.choice(table.holders).holder
            table.release(lambda r, g=gone: r.holder == g)  # type: ignore[misc]
        served += [r.holder for r in table.grant()]
        for lock, limit in LIMITS.items():
            assert len(table.holding(lock)) <= limit
        if not pending and not table.waiters and not table.holders:
            break
        if not pending and not table.holders:
            assert table.waiters == [], "waiters left with nothing held: a deadlock"
    while table.holders or table.waiters or pending:  # drain: everyone is served in the end
        if pending:
            table.request(pending.pop(0))
        if table.holders:
            gone = table.holders[0].holder
            table.release(lambda r, g=gone: r.holder == g)  # type: ignore[misc]
        served += [r.holder for r in table.grant()]
        assert table.holders or not table.waiters, "waiters left with nothing held"
    assert sorted(served) == sorted(f"h{i}" for i in range(len(wants)))


def test_a_waiter_is_told_who_blocks_it() -> None:
    table = LockTable()
    table.request(LockRequest("u1/load", "etl", {"mutex/db": 1}, 0, 0.0))
    table.request(LockRequest("u2", "deploy", {"semaphore/s": 1}, 0, 1.0))
    table.request(LockRequest("u3", "other", {"mutex/x": 1}, 0, 2.0))
    table.grant()
    waiter = LockRequest("u4", "me", {"mutex/db": 1, "semaphore/s": 1}, 0, 3.0)
    table.request(waiter)
    assert table.grant() == []
    assert table.blocking(waiter) == ["deploy", "etl/load"]
