"""The pure rules of sharding: object → shard, lease timing, and who takes which shard.

Why a fixed number of virtual shards (not one lease per object or per replica): the
number of leases, and so the lease traffic, stays constant as Workflows come and go;
moving a shard moves every object in it at once; and an object's shard never changes
(it is a hash of its uid), so no object is ever re-assigned by a change in the data.

Safety rests on two timings (`ShardTiming`): a holder stops writing `renew_deadline`
after its last successful renewal began, and any other replica takes a lease only after
it has seen it unchanged for `lease_duration`, which is longer. So two replicas never act
on one shard at once, as long as clocks run at about the same rate (no synchronised
wall clocks are needed: each side measures on its own monotonic clock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SHARDS",
    "LABEL_SHARD",
    "MAX_SHARDS",
    "LeaseRecord",
    "ShardPlan",
    "ShardTiming",
    "live_holders",
    "may_write",
    "plan_shards",
    "quotas",
    "shard_of",
]

DEFAULT_SHARDS = 32
MAX_SHARDS = 1024
"""More shards than this only adds lease traffic (one renewal per shard per period)."""
LABEL_SHARD = "shoal.dev/shard"


def shard_of(uid: str, shards: int) -> int:
    """The shard of an object: a stable hash of its uid (the same in every process and
    Python version, unlike `hash()`), modulo the number of shards."""
    digest = hashlib.sha256(uid.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % shards


@dataclass(frozen=True, slots=True)
class ShardTiming:
    """How long a lease lasts and how soon its holder must stop acting without renewal."""

    shards: int = DEFAULT_SHARDS
    lease_duration: float = 15.0
    """A lease seen unchanged this long is free for others to take."""
    renew_deadline: float = 10.0
    """A holder acts on a shard only this long after its last renewal began."""
    retry_period: float = 2.0
    """How often the leases are listed, renewed and re-planned."""

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"--shards must be between 1 and {MAX_SHARDS}, not {self.shards}")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "the shard timings must satisfy 0 < retry period < renew deadline < lease "
                f"duration; got {self.retry_period:g}s, {self.renew_deadline:g}s, "
                f"{self.lease_duration:g}s"
            )


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """One shard lease as a replica last saw it."""

    holder: str | None
    """None or empty when released."""
    seen_changed_at: float
    """The observer's monotonic time when it first saw this version of the lease."""


def may_write(renewed_at: float | None, now: float, timing: ShardTiming) -> bool:
    """Whether a holder may still act: its last renewal (the monotonic time the renewing
    request was sent, None if it holds nothing) began less than the renew deadline ago."""
    return renewed_at is not None and now < renewed_at + timing.renew_deadline


def live_holders(
    leases: Mapping[int, LeaseRecord], now: float, timing: ShardTiming
) -> dict[int, str]:
    """Shard → holder, for the leases that are held and not yet expired to an observer."""
    return {
        shard: rec.holder
        for shard, rec in leases.items()
        if rec.holder and now < rec.seen_changed_at + timing.lease_duration
    }


def quotas(replicas: Iterable[str], shards: int) -> dict[str, int]:
    """Each live replica's fair share: `shards // n`, the first `shards % n` (by name)
    one more, so every replica computes the same split from the same membership."""
    names = sorted(set(replicas))
    if not names:
        return {}
    base, extra = divmod(shards, len(names))
    return {name: base + (1 if i < extra else 0) for i, name in enumerate(names)}


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """What one replica should do now: take these free shards, drain and give up these."""

    acquire: tuple[int, ...]
    release: tuple[int, ...]


def _preference(me: str, shard: int) -> bytes:
    """Rendezvous order: replicas prefer different free shards, so they rarely race."""
    return hashlib.sha256(f"{me}/{shard}".encode()).digest()


def plan_shards(
    me: str, replicas: Iterable[str], holders: Mapping[int, str], shards: int
) -> ShardPlan:
    """Which shards `me` should acquire (free ones, up to its quota) and release.

    `holders` are the live holders (`live_holders`), `me`'s own included. A replica over
    its quota releases its surplus only while another live replica is under its own: the
    newcomer then acquires what was released, after the old holder has drained it, so a
    shard is never taken from a holder (drain-then-release, never two writers).
    """
    live = set(replicas) | {me}
    quota = quotas(live, shards)
    counts = {name: 0 for name in live}
    for holder in holders.values():
        if holder in counts:
            counts[holder] += 1
    mine = sorted(s for s, h in holders.items() if h == me)
    room = quota[me] - len(mine)
    if room > 0:
        free = sorted(
            (s for s in range(shards) if s not in holders), key=lambda s: _preference(me, s)
        )
        return ShardPlan(tuple(sorted(free[:room])), ())
    wanting = any(counts[name] < quota[name] for name in live if name != me)
    if room < 0 and wanting:
        surplus = sorted(mine, key=lambda s: _preference(me, s))[:-room]
        return ShardPlan((), tuple(sorted(surplus)))
    return ShardPlan((), ())
