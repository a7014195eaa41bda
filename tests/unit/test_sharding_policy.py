"""The pure sharding rules, driven by a simulated cluster of replicas and leases.

The simulation keeps one lease store with compare-and-swap versions (as the API server
does with resourceVersion) and lets hypothesis choose when replicas join, die, or are cut
off from the store; at every tick it checks that no shard has two replicas allowed to
write, and after a quiet spell that the shards are spread evenly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.sharding.policy import (
    LeaseRecord,
    ShardTiming,
    live_holders,
    may_write,
    plan_shards,
    quotas,
    shard_of,
)

TIMING = ShardTiming(shards=12, lease_duration=6.0, renew_deadline=4.0, retry_period=1.0)


@dataclass
class Replica:
    name: str
    alive: bool = True
    cut_off: bool = False
    renewed: dict[int, float] = field(default_factory=dict)
    """Shard → when its last successful renewal began (this replica's clock)."""
    seen: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Shard → (version, when first seen) as this replica observed the store."""
    acquired_after_release: bool = True


@dataclass
class Store:
    """Shard → (holder, version); a write succeeds only against the current version."""

    leases: dict[int, tuple[str | None, int]] = field(default_factory=dict)

    def cas(self, shard: int, version: int, holder: str | None) -> bool:
        current = self.leases.get(shard, (None, 0))
        if current[1] != version:
            return False
        self.leases[shard] = (holder, version + 1)
        return True


def tick(rep: Replica, store: Store, members: set[str], now: float) -> list[int]:
    """One pass of a replica's lease loop; returns the shards it acquired."""
    if not rep.alive or rep.cut_off:
        return []
    for shard in list(rep.renewed):
        holder, version = store.leases.get(shard, (None, 0))
        if holder == rep.name and store.cas(shard, version, rep.name):
            rep.renewed[shard] = now
        else:
            rep.renewed.pop(shard)
    records = {}
    for shard in range(TIMING.shards):
        holder, version = store.leases.get(shard, (None, 0))
        if rep.seen.get(shard, (-1, 0.0))[0] != version:
            rep.seen[shard] = (version, now)
        records[shard] = LeaseRecord(holder, rep.seen[shard][1])
    holders = live_holders(records, now, TIMING)
    holders.update({s: rep.name for s in rep.renewed})
    plan = plan_shards(rep.name, members, holders, TIMING.shards)
    for shard in plan.release:  # drained at once in the simulation
        holder, version = store.leases[shard]
        rep.renewed.pop(shard)
        store.cas(shard, version, None)
    taken = []
    for shard in plan.acquire:
        if store.cas(shard, rep.seen[shard][0], rep.name):
            rep.renewed[shard] = now
            taken.append(shard)
    return taken


def writers(replicas: dict[str, Replica], now: float) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for rep in replicas.values():
        if not rep.alive:
            continue
        for shard, at in rep.renewed.items():
            if may_write(at, now, TIMING):
                out.setdefault(shard, []).append(rep.name)
    return out


EVENT = st.tuples(
    st.sampled_from(["join", "kill", "cut", "heal", "none", "none"]), st.integers(0, 5)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENT, min_size=1, max_size=40))
def test_no_shard_ever_has_two_writers_and_the_spread_settles(
    events: list[tuple[str, int]],
) -> None:
    store = Store()
    replicas = {"r0": Replica("r0")}
    now = 0.0
    for kind, pick in events:
        names = sorted(replicas)
        target = replicas[names[pick % len(names)]]
        if kind == "join" and len(replicas) < 6:
            replicas[f"r{len(replicas)}"] = Replica(f"r{len(replicas)}")
        elif kind == "kill" and sum(r.alive for r in replicas.values()) > 1:
            target.alive = False
        elif kind == "cut":
            target.cut_off = True
        elif kind == "heal":
            target.cut_off = False
        step(replicas, store, now)
        now += TIMING.retry_period
        assert all(len(w) == 1 for w in writers(replicas, now).values())
    for rep in replicas.values():
        rep.cut_off = False
    for _ in range(int(4 * TIMING.lease_duration)):  # quiet: everything settles
        step(replicas, store, now)
        now += TIMING.retry_period
        assert all(len(w) == 1 for w in writers(replicas, now).values())
    live = [r for r in replicas.values() if r.alive]
    counts = [len(r.renewed) for r in live]
    assert sum(counts) == TIMING.shards, "every shard is held once things settle"
    assert max(counts) - min(counts) <= 1, f"spread within one: {counts}"


def step(replicas: dict[str, Replica], store: Store, now: float) -> None:
    members = {r.name for r in replicas.values() if r.alive and not r.cut_off}
    for rep in replicas.values():
        tick(rep, store, members, now)


def test_a_newcomer_gets_its_share_only_from_shards_released_to_it() -> None:
    store, now = Store(), 0.0
    replicas = {"a": Replica("a"), "b": Replica("b")}
    for _ in range(3):
        step(replicas, store, now)
        now += 1
    assert sorted(len(r.renewed) for r in replicas.values()) == [6, 6]
    replicas["c"] = Replica("c")
    for _ in range(5):
        members = set(replicas)
        for rep in replicas.values():
            before = dict(store.leases)  # just before this replica's pass
            taken = tick(rep, store, members, now)
            for shard in taken if rep.name == "c" else ():
                holder = before.get(shard, (None, 0))[0]
                assert holder is None, f"shard {shard} was taken from {holder}, not released"
        now += 1
        assert all(len(w) == 1 for w in writers(replicas, now).values())
    assert sorted(len(r.renewed) for r in replicas.values()) == [4, 4, 4]


def test_a_cut_off_holder_stops_writing_before_anyone_else_may_take_its_shards() -> None:
    store, now = Store(), 0.0
    replicas = {"a": Replica("a"), "b": Replica("b")}
    for _ in range(3):
        step(replicas, store, now)
        now += 1
    replicas["a"].cut_off = True
    a_stopped = b_took = None
    for _ in range(20):
        step(replicas, store, now)
        now += 1
        if a_stopped is None and not any(
            may_write(t, now, TIMING) for t in replicas["a"].renewed.values()
        ):
            a_stopped = now
        if b_took is None and len(replicas["b"].renewed) == TIMING.shards:
            b_took = now
    assert a_stopped is not None
    assert b_took is not None
    assert a_stopped < b_took


def test_shard_of_is_stable_and_spreads_uids() -> None:
    assert shard_of("4b7c1f3e-0000-4000-8000-000000000001", 32) == shard_of(
        "4b7c1f3e-0000-4000-8000-000000000001", 32
    )
    counts = [0] * 32
    for i in range(3200):
        counts[shard_of(f"uid-{i}", 32)] += 1
    assert min(counts) > 50
    assert max(counts) < 150


def test_quotas_are_even_and_agree_across_replicas() -> None:
    assert quotas(["c", "a", "b"], 32) == {"a": 11, "b": 11, "c": 10}
    assert quotas([], 32) == {}


@pytest.mark.parametrize(
    ("lease", "renew", "retry"), [(10.0, 10.0, 1.0), (10.0, 12.0, 1.0), (10.0, 5.0, 5.0)]
)
def test_timings_that_would_allow_two_writers_are_refused(
    lease: float, renew: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        ShardTiming(lease_duration=lease, renew_deadline=renew, retry_period=retry)
