"""Operator sharding: which replica acts on which Workflow (docs/scaling.md).

`policy` is pure (no I/O, no clock of its own): the shard of an object, the timing rules
of the shard leases, and which shards a replica should take or give up. The Kubernetes
side (Lease objects, the write guard) is `kube/shard_leases.py` and `kube/write_guard.py`.
"""

from shoal.sharding.policy import (
    DEFAULT_SHARDS,
    LABEL_SHARD,
    LeaseRecord,
    ShardPlan,
    ShardTiming,
    live_holders,
    may_write,
    plan_shards,
    quotas,
    shard_of,
)

__all__ = [
    "DEFAULT_SHARDS",
    "LABEL_SHARD",
    "LeaseRecord",
    "ShardPlan",
    "ShardTiming",
    "live_holders",
    "may_write",
    "plan_shards",
    "quotas",
    "shard_of",
]
