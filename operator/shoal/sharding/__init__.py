"""Operator sharding: which replica acts on which Workflow (docs/scaling.md).

`policy` is pure (no I/O, no clock of its own): the shard of an object, the timing rules
of the shard leases, and which shards a replica should take or give up. The Kubernetes
side (Lease objects, the write guard) is `kube/shard_leases.py` and `kube/write_guard.py`.
"""

__all__ = ["policy"]
