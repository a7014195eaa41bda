"""Prometheus metrics and the operator's health endpoints (one small aiohttp server).

Served on one port: `/metrics`, `/healthz` (the event loop answers) and `/readyz` (the
operator has connected and its watches started). aiohttp comes with kopf, so serving
these costs no thread and no extra dependency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shoal.core.state import RunState

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DURATION_BUCKETS = (0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    """Every metric the operator exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.workflows_running = Gauge(
            "shoal_workflows_running", "Workflows with a live runner", registry=r
        )
        self.workflows_finished = Counter(
            "shoal_workflows_finished_total", "Workflows finished, by phase", ["phase"], registry=r
        )
        self.nodes_finished = Counter(
            "shoal_nodes_finished_total", "Nodes finished, by phase", ["phase"], registry=r
        )
        self.node_duration = Histogram(
            "shoal_node_duration_seconds",
            "Wall time of finished nodes",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.dispatch_latency = Histogram(
            "shoal_dispatch_latency_seconds",
            "From the planner's decision to start an attempt to its Job existing",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.pods_running = Gauge("shoal_pods_running", "Attempts running", registry=r)
        self.pods_pending = Gauge(
            "shoal_pods_pending", "Attempts whose pod has not started yet", registry=r
        )
        self.workflows_past_deadline = Gauge(
            "shoal_workflows_past_deadline",
            "Unfinished workflows over a minute past their activeDeadlineSeconds (stuck)",
            registry=r,
        )
        self.reconcile_errors = Counter(
            "shoal_reconcile_errors_total", "Errors while running workflows", registry=r
        )
        self.archive_lines_dropped = Counter(
            "shoal_archive_log_lines_dropped_total",
            "Job log lines never archived: the database was too slow or unreachable",
            registry=r,
        )
        self.archive_attempts_dropped = Counter(
            "shoal_archive_attempts_dropped_total",
            "Finished attempts never archived: the database was too slow or unreachable",
            registry=r,
        )
        self.impostors = Counter(
            "shoal_impostors_ignored_total",
            "Pods and Jobs that claimed a Workflow's attempt without being its own "
            "(wrong namespace or owner), ignored",
            ["kind"],
            registry=r,
        )
        self.api_requests = Gauge(
            "shoal_api_requests", "Kubernetes API requests sent", ["kind"], registry=r
        )
        self.api_routes = _route_gauge(r)
        self.archive_connected = Gauge(
            "shoal_archive_connected",
            "1 when the archive database is reached and migrated; 0 while writes are buffered",
            registry=r,
        )
        self.memo_lookups = Counter(
            "shoal_memo_lookups_total",
            "Lookups of memoized nodes in the memo cache, by result (hit, miss)",
            ["result"],
            registry=r,
        )
        self.pod_events = Counter(
            "shoal_pod_events",
            "Pod watch events this replica received, by the pod's shard label (none: "
            "unlabelled; a sharded replica receives only its shards' and unlabelled pods)",
            ["shard"],
            registry=r,
        )
        self._api: KubeApi | None = None
        self.ready = asyncio.Event()
        self.pods_source: Callable[[], int] | None = None
        self.degraded_source: Callable[[], list[str]] | None = None
        """What works only in part (the archive unreachable, say), for /readyz."""

    def bind_api(self, api: KubeApi) -> None:
        self._api = api
        self.ready.set()

    def workflow_finished(self, state: RunState) -> None:
        self.workflows_finished.labels(state.phase.value).inc()
        for node in state.nodes.values():
            self.nodes_finished.labels(node.phase.value).inc()
            if node.started_at is not None and node.finished_at is not None:
                self.node_duration.observe(node.finished_at - node.started_at)
        for lookup in state.memo.values():
            if lookup.done:
                self.memo_lookups.labels("hit" if lookup.hit else "miss").inc()

    def render(self) -> bytes:
        if self.pods_source is not None:
            self.pods_running.set(self.pods_source())
        if self._api is not None:
            self.api_requests.labels("all").set(self._api.requests)
            self.api_requests.labels("write").set(self._api.writes)
            self._api.routes.publish(self.api_routes)
        return generate_latest(self.registry)

    def app(self) -> web.Application:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def readyz(_: web.Request) -> web.Response:
            # Degraded is still ready: Workflows run; what is missing is said, not hidden.
            if not self.ready.is_set():
                return web.Response(status=503, text="starting")
            degraded = self.degraded_source() if self.degraded_source is not None else []
            if degraded:
                return web.Response(text="ready, degraded: " + "; ".join(degraded))
            return web.Response(text="ready")

        app = web.Application()
        app.add_routes(
            [web.get("/metrics", metrics), web.get("/healthz", healthz), web.get("/readyz", readyz)]
        )
        return app

    async def serve(self, port: int, host: str = "0.0.0.0") -> web.AppRunner:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner


def _route_gauge(registry: CollectorRegistry) -> Gauge:
    """`shoal_api_requests_by_route{route}`: kube/api_routes.py counts, render sets."""
    return Gauge(
        "shoal_api_requests_by_route",
        "Kubernetes API requests sent, by route: verb and resource/{name}/subresource",
        ["route"],
        registry=registry,
    )
