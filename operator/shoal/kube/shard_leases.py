"""The operator's shard leases: one `coordination.k8s.io` Lease per shard, and the work
that runs only while its shard is held (docs/scaling.md).

A background loop (`ShardLeases.run`) lists the leases every retry period, renews the
ones this replica holds (a PUT carrying the resourceVersion it read: a lease someone else
changed meanwhile is lost at once, never overwritten), and carries out the pure plan of
`sharding.policy`: free shards are taken up to this replica's quota, a surplus is first
drained (its work cancelled and awaited) and only then released to the newcomer.

Each Workflow's and CronWorkflow's daemon runs its work through `run_while_owned`: the
work starts once the object's shard is held, under a write guard (`kube/write_guard`)
that refuses any write once the shard is not held or its renewal is older than the
renew deadline, and is cancelled when the shard is drained or lost. Replicas also keep
a membership lease each (`shoal-replica-<identity>`), from which the quotas are split.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from shoal.kube import write_guard
from shoal.kube.api import ApiError, KubeApi
from shoal.sharding.policy import (
    LeaseRecord,
    ShardTiming,
    live_holders,
    may_write,
    plan_shards,
    shard_of,
)

__all__ = ["LABEL_LEASE", "ShardLeases", "ShardNotHeld", "leases_path", "shard_lease_name"]

log = logging.getLogger("shoal.shards")
LABEL_LEASE = "shoal.dev/lease"
DRAIN_SECONDS = 5.0
"""How long a drained shard's work may take to stop before the lease is released."""


class Stopped(Protocol):
    """What a kopf daemon's `stopped` flag offers (and an asyncio.Event does too)."""

    def is_set(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


class ShardNotHeld(ApiError):
    """A write refused because this replica may not act on the object's shard now."""

    def __init__(self, shard: int, method: str, path: str) -> None:
        super().__init__(0, "ShardNotHeld", f"shard {shard} is not held: {method} {path}")


def leases_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


def shard_lease_name(shard: int) -> str:
    return f"shoal-shard-{shard:02d}"


def _micro_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class ShardLeases:
    """This replica's view of the shard leases, and the gate its per-object work runs behind."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        identity: str,
        timing: ShardTiming,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.namespace, self.identity, self.timing = api, namespace, identity, timing
        self.clock = clock
        self.renewed: dict[int, float] = {}
        """Held shard → monotonic time its last successful renewal (or acquisition) began."""
        self.seen: dict[int, tuple[str, float]] = {}
        """Shard → (resourceVersion, when first seen) for expiry as an observer judges it."""
        self.refused = 0
        """Writes the guard refused (a metric: non-zero only around a lost shard)."""
        self._held = {s: asyncio.Event() for s in range(timing.shards)}
        self._work: dict[int, set[asyncio.Task[Any]]] = {s: set() for s in range(timing.shards)}
        self._draining: set[asyncio.Task[Any]] = set()
        self._published: frozenset[int] = frozenset()
        self._change = asyncio.Event()
        self.work_gate: Callable[[int], Awaitable[None]] | None = None
        """Awaited before a shard's work starts: the pod watch covering the shard
        (kube/shard_watch.py), so a runner's adoption never precedes the watch's list."""

    # -- what other modules ask -----------------------------------------------------

    def shard(self, uid: str) -> int:
        return shard_of(uid, self.timing.shards)

    def may_write(self, shard: int) -> bool:
        return may_write(self.renewed.get(shard), self.clock(), self.timing)

    def owns(self, uid: str) -> bool:
        """Whether this replica acts on the object with this uid now."""
        return self.may_write(self.shard(uid))

    async def held_changed(self, seen: frozenset[int]) -> frozenset[int]:
        """The held shards, once they differ from `seen` (at once if they already do):
        the change signal of `kube/shard_watch`, set once per pass, never polled."""
        while self._published == seen:
            await self._change.wait()
        return self._published

    def _publish(self) -> None:
        held = frozenset(self.renewed)
        if held != self._published:
            self._published = held
            self._change.set()  # wakes every waiter; later ones wait on a fresh event
            self._change = asyncio.Event()

    def guard(self, shard: int) -> write_guard.Guard:
        """The write guard of one shard's work; stamps created objects with the creator."""

        def check(method: str, path: str, body: Any) -> Any:
            if not self.may_write(shard):
                self.refused += 1
                raise ShardNotHeld(shard, method, path)
            if (
                method == "POST"
                and isinstance(body, dict)
                and isinstance(body.get("metadata"), dict)
            ):
                meta = body["metadata"]
                notes = {**(meta.get("annotations") or {}), write_guard.CREATED_BY: self.identity}
                body = {**body, "metadata": {**meta, "annotations": notes}}
            return body

        return check

    async def run_while_owned(
        self, uid: str, stopped: Stopped, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `work` while the object's shard is held; again whenever it is held again.

        Returns when `work` ends by itself or `stopped` is set. Work cancelled because its
        shard was drained or lost waits for the shard, and then starts over (from the
        stored status, as after an operator restart).
        """
        shard = self.shard(uid)
        while not stopped.is_set():
            if not await _first(self._held[shard].wait(), stopped.wait()):
                return
            if self.work_gate is not None:
                await self.work_gate(shard)  # bounded by the gate itself
                if stopped.is_set() or not self._held[shard].is_set():
                    continue  # stopped, or lost while waiting (then wait for it again)
            token = write_guard.GUARD.set(self.guard(shard))
            try:
                task = asyncio.ensure_future(work())  # copies the context: the guard
            finally:
                write_guard.GUARD.reset(token)
            self._work[shard].add(task)
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise
            finally:
                self._work[shard].discard(task)
            if not task.cancelled():
                task.result()  # its exception, if any
                return
            log.info("shard %d left this replica: work on %s paused", shard, uid)

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Renew, plan, drain, release and acquire every retry period, until cancelled."""
        while True:
            started = self.clock()
            try:
                async with asyncio.timeout(self.timing.renew_deadline):
                    await self.tick()
            except Exception as err:  # the API refused or is unreachable: renew next time
                log.warning("shard leases: %s", str(err) or f"{type(err).__name__}, retrying")
            self._drop_expired()
            await asyncio.sleep(max(0.0, self.timing.retry_period - (self.clock() - started)))

    async def tick(self) -> None:
        """One pass over the leases; its changes to the held set are published at its end
        (one pod watch restart per pass, not one per shard acquired)."""
        try:
            await self._pass()
        finally:
            self._publish()

    async def _pass(self) -> None:
        listing = await self.api.get(leases_path(self.namespace), labelSelector=LABEL_LEASE)
        shard_leases, members = self._read(listing.get("items") or [])
        await self._renew(shard_leases)
        await self._renew_membership()
        now = self.clock()
        records = {}
        for shard, lease in shard_leases.items():
            spec, version = lease.get("spec") or {}, lease["metadata"]["resourceVersion"]
            if self.seen.get(shard, ("", 0.0))[0] != version:
                self.seen[shard] = (version, now)
            holder = spec.get("holderIdentity") or None
            if holder == self.identity and shard not in self.renewed:
                holder = f"{holder} (an earlier process)"  # not ours to trust: wait it out
            records[shard] = LeaseRecord(holder, self.seen[shard][1])
        holders = live_holders(records, now, self.timing)
        holders.update({s: self.identity for s in self.renewed})
        plan = plan_shards(self.identity, members, holders, self.timing.shards)
        for shard in plan.release:
            await self._release(shard, shard_leases.get(shard))
        for shard in plan.acquire:
            await self._acquire(shard, shard_leases.get(shard))

    def _read(self, items: list[Any]) -> tuple[dict[int, dict[str, Any]], set[str]]:
        """Shard leases by shard, and the live members (by their leases' renewTime)."""
        leases: dict[int, dict[str, Any]] = {}
        members = {self.identity}
        names = {shard_lease_name(s): s for s in range(self.timing.shards)}
        wall = time.time()
        for item in items:
            meta = item.get("metadata") if isinstance(item, dict) else None
            if not isinstance(meta, dict):
                continue
            spec = item.get("spec") or {}
            if (meta.get("labels") or {}).get(LABEL_LEASE) == "replica":
                renewed = _parse_micro_time(spec.get("renewTime"))
                holder = spec.get("holderIdentity")
                fresh = renewed is not None and wall - renewed < self.timing.lease_duration
                if fresh and isinstance(holder, str) and holder:
                    members.add(holder)
            elif meta.get("name") in names:
                leases[names[meta["name"]]] = item
        return leases, members

    def _lease(self, name: str, kind: str, holder: str | None, at: float) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "labels": {LABEL_LEASE: kind}},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
                "renewTime": _micro_time(at),
            },
        }

    async def _renew_membership(self) -> None:
        name = f"shoal-replica-{self.identity}"[:253]
        body = self._lease(name, "replica", self.identity, time.time())
        try:
            await self.api.merge_patch(leases_path(self.namespace, name), {"spec": body["spec"]})
        except ApiError as err:
            if err.status != 404:
                raise
            await self._create(body)

    async def _create(self, body: dict[str, Any]) -> bool:
        """Create a lease; False when another replica created it first."""
        path = leases_path(self.namespace)
        return await self.api.create(path, body, contended=True) is not None

    async def _renew(self, leases: dict[int, dict[str, Any]]) -> None:
        for shard in list(self.renewed):
            lease = leases.get(shard)
            holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
            if lease is None or holder != self.identity:
                self._lost(shard, f"now held by {holder or 'nobody'}")
                continue
            began = self.clock()
            if began - self.renewed[shard] < self.timing.renew_deadline / 3:
                continue  # renewed recently enough: at most every third of the deadline
            if await self._put(lease, self.identity):
                self.renewed[shard] = began

    async def _put(self, lease: dict[str, Any], holder: str | None) -> bool:
        """Write the lease's holder against the version read; False if it changed meanwhile."""
        meta = lease["metadata"]
        body = {
            **lease,
            "spec": {**(lease.get("spec") or {}), "holderIdentity": holder},
        }
        body["spec"]["renewTime"] = _micro_time(time.time())
        body["spec"]["leaseDurationSeconds"] = max(1, round(self.timing.lease_duration))
        try:
            updated = await self.api.request(
                "PUT", leases_path(self.namespace, meta["name"]), body=body
            )
        except ApiError as err:
            if err.status == 409:  # changed since read: not ours to write
                shard = int(str(meta["name"]).rsplit("-", 1)[-1])
                if shard in self.renewed:
                    self._lost(shard, "changed by another replica")
                return False
            raise
        lease.update(updated)
        return True

    async def _acquire(self, shard: int, lease: dict[str, Any] | None) -> None:
        began = self.clock()
        if lease is None:
            body = self._lease(shard_lease_name(shard), "shard", self.identity, time.time())
            got = await self._create(body)
        else:
            got = await self._put(lease, self.identity)
        if got:
            self.renewed[shard] = began
            self._held[shard].set()
            log.info("shard %d acquired", shard)

    async def _release(self, shard: int, lease: dict[str, Any] | None) -> None:
        """Drain, then release: the shard's work has stopped before anyone may take it."""
        self._held[shard].clear()
        await self._drain(shard)
        self.renewed.pop(shard, None)
        if lease is not None:
            await self._put(lease, None)
        log.info("shard %d released", shard)

    async def _drain(self, shard: int) -> None:
        tasks = set(self._work[shard])
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=DRAIN_SECONDS)

    def _lost(self, shard: int, why: str) -> None:
        """Stop acting on a shard at once (its guard already refuses writes)."""
        log.warning("shard %d lost: %s", shard, why)
        self.renewed.pop(shard, None)
        self._held[shard].clear()
        for task in self._work[shard]:
            task.cancel()

    def _drop_expired(self) -> None:
        """Shards whose renewal is past the deadline (the API unreachable) are let go."""
        for shard in [s for s in self.renewed if not self.may_write(s)]:
            self._lost(shard, "not renewed within the renew deadline")
        self._publish()

    async def close(self) -> None:
        """Drain and release every shard and leave the membership (a graceful exit);
        bounded: an unreachable API leaves the leases to expire instead."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timing.renew_deadline):
                await self._leave()

    async def _leave(self) -> None:
        for shard in list(self.renewed):
            with contextlib.suppress(Exception):
                lease = await self.api.get(leases_path(self.namespace, shard_lease_name(shard)))
                if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    await self._release(shard, lease)
        self._publish()
        with contextlib.suppress(Exception):
            name = f"shoal-replica-{self.identity}"[:253]
            await self.api.delete(leases_path(self.namespace, name))


async def _first(held: Awaitable[Any], stopped: Awaitable[Any]) -> bool:
    """True when `held` completes before `stopped`."""
    a, b = asyncio.ensure_future(held), asyncio.ensure_future(stopped)
    try:
        done, _ = await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        a.cancel()
        b.cancel()
    return a in done and b not in done
