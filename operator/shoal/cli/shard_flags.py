"""`shoal operator`'s sharding flags (docs/scaling.md): how many shards, the lease timing,
and this replica's identity. Kept apart from `operator_command` so the table of the
operator's other flags stays as it was."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shoal.sharding.policy import ShardTiming

__all__ = ["add_shard_flags", "shard_settings"]


def add_shard_flags(p: argparse.ArgumentParser, env: Callable[[str], str | None]) -> None:
    p.add_argument(
        "--shards",
        type=int,
        default=int(env("SHOAL_SHARDS") or "0"),
        help="share the work with other replicas over this many shard leases (32 is a "
        "good default); 0 acts on everything alone (SHOAL_SHARDS)",
    )
    p.add_argument(
        "--lease-duration",
        type=float,
        default=float(env("SHOAL_LEASE_DURATION") or "15"),
        help="seconds a shard lease lasts without renewal (SHOAL_LEASE_DURATION)",
    )
    p.add_argument(
        "--renew-deadline",
        type=float,
        default=float(env("SHOAL_RENEW_DEADLINE") or "10"),
        help="seconds after its last renewal a replica stops acting on a shard; less than "
        "the lease duration (SHOAL_RENEW_DEADLINE)",
    )
    p.add_argument(
        "--lease-retry",
        type=float,
        default=float(env("SHOAL_LEASE_RETRY") or "2"),
        help="seconds between passes over the leases (SHOAL_LEASE_RETRY)",
    )
    p.add_argument(
        "--identity",
        default=env("SHOAL_IDENTITY") or env("POD_NAME") or socket.gethostname(),
        help="this replica's name in the leases (SHOAL_IDENTITY, else POD_NAME)",
    )
    p.add_argument(
        "--lease-namespace",
        default=env("SHOAL_LEASE_NAMESPACE") or env("POD_NAMESPACE") or "default",
        help="namespace of the shard leases (SHOAL_LEASE_NAMESPACE, else POD_NAMESPACE)",
    )


def shard_settings(args: argparse.Namespace) -> ShardTiming | None:
    """The shard timing from the flags (None when unsharded); ValueError names a bad one."""
    from shoal.sharding.policy import ShardTiming

    if args.shards == 0:
        return None
    if not args.identity or len(args.identity) > 200:
        raise ValueError("--identity must be a non-empty name of at most 200 characters")
    return ShardTiming(
        shards=args.shards,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.lease_retry,
    )
