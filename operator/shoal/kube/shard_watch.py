"""A sharded replica's pod watches: only the pods of the shards it holds (docs/scaling.md).

Every Job a sharded operator creates, and its pod, carries `shoal.dev/shard`
(`kube/naming.shard_labels`), so the API server filters the pod watch: a replica
watches `<base>,shoal.dev/shard in (<held shards>)` (one watch per namespace, as
unsharded) and receives its share of the pod events, not the whole cluster's. A second
watch, `<base>,!shoal.dev/shard`, follows pods of Jobs created before sharding was
turned on (normally none), so an upgrade in the middle of a run loses nothing.

The held set changes when shards are acquired, released or lost; `ShardLeases`
publishes it once per pass and `ShardPodWatch` restarts the shard watch then, make
before break: the new watch lists (every matching pod delivered as ADDED) and watches
from the list's version, and only once every namespace has listed is the old watch
cancelled. A shard kept across the switch is covered throughout (events seen twice at
most, which receivers take); a shard dropped is followed a moment longer.

Why a newly acquired shard's Workflows miss nothing: their work starts only through
`ShardLeases.run_while_owned`, which first awaits `covering(shard)`, i.e. until a watch
that selects the shard has listed. Only then does the runner register itself for pod
events (`kube/controller._run_once`) and, after that, read the Jobs and pods it adopts
from the API (`kube/adoption`). So every change after the adoption's read arrives as an
event, and every change before it is in what the adoption read; had the runner adopted
first, a pod deleted between its read and the new watch's list would never be seen.
`covering` is bounded (`COVER_SECONDS`): an API server that cannot list leaves the
runner to proceed, as unsharded, rather than hold the shard's work forever.

kopf's Workflow and CronWorkflow watches are not filtered: kopf applies label filters
on the client, after the event has been sent and decoded, so only this pod watch, which
Shoal runs itself, gains from the label.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter

from shoal.kube.api import KubeApi
from shoal.kube.naming import LABEL_SHARD
from shoal.kube.pod_watch import PodHandler, pods_paths, watch_pods_in
from shoal.kube.shard_leases import ShardLeases

__all__ = [
    "COVER_SECONDS",
    "HeldShards",
    "ShardPodWatch",
    "counted",
    "held_selector",
    "pod_watch",
    "shard_of_pod",
    "unsharded_selector",
]

log = logging.getLogger("shoal.shards")
COVER_SECONDS = 30.0
"""How long a newly held shard's work waits for the pod watch to cover it."""


def held_selector(base: str, held: Iterable[int]) -> str | None:
    """The pods of the held shards (server-side, set-based); None when none is held."""
    shards = sorted(set(held))
    if not shards:
        return None
    return f"{base},{LABEL_SHARD} in ({','.join(str(s) for s in shards)})"


def unsharded_selector(base: str) -> str:
    """The pods without a shard label: Jobs created before sharding was turned on."""
    return f"{base},!{LABEL_SHARD}"


def shard_of_pod(pod: dict[str, Any], shards: int) -> str:
    """The pod's shard as a metric label: its number, "none" unlabelled, "other" when the
    label is not a shard of this operator (bounded: `shards` + 2 values at most)."""
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_SHARD)
    if value is None:
        return "none"
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) < shards:
        return str(int(value))
    return "other"


def counted(counter: Counter, shards: int, on_event: PodHandler) -> PodHandler:
    """`on_event`, counting each event by the pod's shard (`shoal_pod_events_total`)."""

    def handle(kind: str, pod: dict[str, Any]) -> None:
        counter.labels(shard_of_pod(pod, shards)).inc()
        on_event(kind, pod)

    return handle


class HeldShards(Protocol):
    """What the watch needs of `ShardLeases`: the held set and its change signal."""

    async def held_changed(self, seen: frozenset[int]) -> frozenset[int]: ...


@dataclass(eq=False)
class _Watch:
    shards: frozenset[int]
    listed: set[str] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class ShardPodWatch:
    """The pod watches of one sharded replica, restarted as its held shards change."""

    def __init__(
        self,
        api: KubeApi,
        namespaces: Iterable[str],
        base: str,
        on_event: PodHandler,
        leases: HeldShards,
    ) -> None:
        self.api, self.base, self.on_event, self.leases = api, base, on_event, leases
        self.namespaces = sorted(set(namespaces))
        self.covered: frozenset[int] = frozenset()
        """Shards a watch that has listed in every namespace selects now."""
        self.restarts = 0
        """Shard watches started (one per change of the held set)."""
        self._current: _Watch | None = None
        self._pending: _Watch | None = None
        self._covered_change = asyncio.Event()
        self._retiring: set[asyncio.Task[None]] = set()
        """Cancelled watches until they have ended (a task needs a reference till then)."""

    async def run(self) -> None:
        """Watch the unlabelled pods and the held shards' pods, until cancelled."""
        selector = unsharded_selector(self.base)
        legacy = asyncio.create_task(
            watch_pods_in(self.api, self.namespaces, selector, self.on_event),
            name="shoal-pod-watch-unsharded",
        )
        held: frozenset[int] = frozenset()
        try:
            while True:
                held = await self.leases.held_changed(held)
                self._switch(held)
        finally:
            tasks = [w.task for w in (self._current, self._pending) if w and w.task]
            tasks += self._retiring
            for task in [legacy, *tasks]:
                task.cancel()
            await asyncio.gather(legacy, *tasks, return_exceptions=True)

    async def covering(self, shard: int) -> None:
        """Return once a listed watch selects `shard` (at most `COVER_SECONDS`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(COVER_SECONDS):
                while shard not in self.covered:
                    await self._covered_change.wait()
                return
        log.warning("pod watch: shard %d unlisted after %.0fs; work starts", shard, COVER_SECONDS)

    def _switch(self, held: frozenset[int]) -> None:
        """Start the watch of `held`; the current one stays until it has listed."""
        self._retire(self._pending)  # superseded before it listed
        self._pending = None
        selector = held_selector(self.base, held)
        if selector is None:  # nothing held: no shard watch at all
            self._retire(self._current)
            self._current = None
            self._cover(frozenset())
            return
        watch = _Watch(held)
        self._pending = watch
        self.restarts += 1

        def listed(path: str) -> None:
            watch.listed.add(path)
            if watch is self._pending and len(watch.listed) == len(pods_paths(self.namespaces)):
                self._promote(watch)

        watch.task = asyncio.create_task(
            watch_pods_in(self.api, self.namespaces, selector, self.on_event, listed),
            name="shoal-pod-watch-shards",
        )
        log.info("pod watch: shards %s", ",".join(str(s) for s in sorted(held)))

    def _promote(self, watch: _Watch) -> None:
        """The pending watch has listed everywhere: it replaces the current one."""
        old, self._current, self._pending = self._current, watch, None
        self._cover(watch.shards)
        self._retire(old)

    def _retire(self, watch: _Watch | None) -> None:
        if watch is not None and watch.task is not None and not watch.task.done():
            watch.task.cancel()
            self._retiring.add(watch.task)
            watch.task.add_done_callback(self._retiring.discard)

    def _cover(self, shards: frozenset[int]) -> None:
        self.covered = shards
        self._covered_change.set()
        self._covered_change = asyncio.Event()


def pod_watch(
    api: KubeApi,
    namespaces: Iterable[str],
    base: str,
    on_event: PodHandler,
    leases: ShardLeases | None,
) -> Coroutine[Any, Any, None]:
    """The operator's pod watch: one of every Shoal pod unsharded (`leases` None), else
    the shard-filtered watches, with `leases.work_gate` set to wait for their coverage."""
    if leases is None:
        return watch_pods_in(api, namespaces, base, on_event)
    watch = ShardPodWatch(api, namespaces, base, on_event, leases)
    leases.work_gate = watch.covering
    return watch.run()
