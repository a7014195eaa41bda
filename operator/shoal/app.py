"""The operator, assembled: which resources are watched, and which controller gets what.

kopf owns the Workflow and CronWorkflow watches, reconnects, finalizers and event
posting; the pods Shoal creates are watched without kopf (`kube/pod_watch.py`: no deep
copy per event), their events routed to the Workflow controller. Everything the
controllers share lives in one `OperatorMemo` (`operator_context.py`), built here.

The registry is built explicitly (not with module-level decorators) so tests and the CLI
can create an operator with the settings they need: each handler is a module-level
function of its controller, bound here to the shared state it needs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf
from prometheus_client import Gauge

from shoal.archive.service import Archive
from shoal.core.sandbox import SANDBOX, EvaluationFailed
from shoal.cron import controller as cron
from shoal.cron.runs import LABEL_CRON
from shoal.cron.runs import PLURAL as CRON_PLURAL
from shoal.cron.runtime import Clock, CronRuntime
from shoal.kube import controller as workflows
from shoal.kube import safejson
from shoal.kube.api import KubeApi
from shoal.kube.impostors import ImpostorReport
from shoal.kube.kopf_essence import LeanDiffBaseStorage, LeanProgressStorage
from shoal.kube.metrics import Metrics
from shoal.kube.naming import LABEL_MANAGED_BY, MANAGED_BY
from shoal.kube.runner import LAST_WRITE_SECONDS
from shoal.kube.shard_leases import ShardLeases
from shoal.kube.shard_watch import counted, pod_watch
from shoal.kube.watch_gauges import past_deadline, pods_pending
from shoal.operator_context import OperatorConfig, OperatorMemo
from shoal.sharding.policy import ShardTiming

__all__ = ["build_registry", "quiet_handled_events", "run_operator", "uses_namespace_globs"]

log = logging.getLogger("shoal.operator")
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workflows"
GLOB_CHARS = "*?![],"
POD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
RUNNER_STOP_SECONDS = LAST_WRITE_SECONDS + 2.0
"""How long cleanup waits for cancelled runners, each writing its status at most that long."""


def bind(fn: Callable[..., Any], shared: object) -> Callable[..., Any]:
    """`fn` with `shared` as its first argument, keeping its name (kopf's handler id)."""
    return functools.update_wrapper(functools.partial(fn, shared), fn)


def uses_namespace_globs(namespaces: list[str]) -> bool:
    """Whether a namespace is a pattern (`team-*`), which needs kopf's namespace scanning."""
    return any(ch in ns for ns in namespaces for ch in GLOB_CHARS)


def build_registry(shared: OperatorMemo, clock: Clock | None = None) -> kopf.OperatorRegistry:
    """Every handler of the operator, in the order their cleanup must run."""
    registry = kopf.OperatorRegistry()
    runtime = CronRuntime(shared, clock) if clock is not None else CronRuntime(shared)
    # First: cleanup handlers run in order, and cron writes its pending fires to the
    # archive before the operator's cleanup closes it.
    kopf.on.cleanup(registry=registry)(bind(cron.cron_cleanup, runtime))
    kopf.daemon(GROUP, VERSION, CRON_PLURAL, registry=registry, cancellation_timeout=5.0)(
        bind(cron.cron_daemon, runtime)
    )
    kopf.on.event(GROUP, VERSION, CRON_PLURAL, registry=registry)(bind(cron.cron_event, runtime))
    kopf.on.event(GROUP, VERSION, PLURAL, labels={LABEL_CRON: kopf.PRESENT}, registry=registry)(
        bind(cron.run_event, runtime)
    )
    kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)(bind(cron.upstream_event, runtime))

    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(bind(startup, shared))
    kopf.on.cleanup(registry=registry)(bind(cleanup, shared))

    daemon = bind(workflows.workflow_daemon, shared)
    kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)(daemon)
    kopf.on.delete(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        when=bind(workflows.collects_on_deletion, shared),
    )(bind(workflows.workflow_deleted, shared))
    kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)(bind(workflows.workflow_event, shared))
    if uses_namespace_globs(shared.config.namespaces):
        # Patterns need kopf's namespace scanning, so their pods come through kopf too.
        kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)(
            bind(pod_event, shared)
        )
    return workflows.without_daemon_finalizer(registry, daemon)


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere the kubeconfig (KUBECONFIG), through the
    kubernetes package, so every auth form kubectl supports works here too."""
    return kopf.login_via_client(**kwargs)


async def startup(shared: OperatorMemo, settings: kopf.OperatorSettings, **_: Any) -> None:
    """Configure kopf, connect the API, open the archive, start the pod watch."""
    config = shared.config
    settings.posting.level = logging.WARNING  # our own Events only, not kopf's chatter
    settings.peering.standalone = True
    # Watching named namespaces needs no cluster-wide discovery; with scanning on,
    # kopf retries listing namespaces and CRDs (forbidden to a namespaced Role) for a
    # minute before it serves anything. Globs (`team-*`) do need it.
    globs = uses_namespace_globs(config.namespaces)
    settings.scanning.disabled = bool(config.namespaces) and not globs
    settings.persistence.finalizer = "shoal.dev/finalizer"
    settings.persistence.progress_storage = LeanProgressStorage(prefix=GROUP)  # no deep copies
    settings.persistence.diffbase_storage = LeanDiffBaseStorage(prefix=GROUP)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    shared.api = KubeApi.connect(config.kubeconfig)
    shared.dispatch_limit = asyncio.Semaphore(config.max_concurrent_requests)
    shared.metrics.bind_api(shared.api)
    if config.sharding is not None:
        start_shards(shared, config.sharding)
    if config.database_url:
        await open_archive(shared, config.database_url)
    if not globs:
        shards = config.sharding.shards if config.sharding is not None else 0
        route = functools.partial(workflows.route_pod_event, shared)
        on_pod = counted(shared.metrics.pod_events, shards, route)
        # Sharded: only the held shards' pods (kube/shard_watch.py).
        watch = pod_watch(shared.api, config.namespaces, POD_SELECTOR, on_pod, shared.shards)
        shared.background.add(asyncio.create_task(watch, name="shoal-pod-watch"))


def start_shards(shared: OperatorMemo, timing: ShardTiming) -> None:
    """Join the replicas sharing the work: the lease loop, its metrics (docs/scaling.md)."""
    api, config = shared.connected_api(), shared.config
    shards = ShardLeases(api, config.lease_namespace, config.identity, timing)
    shared.shards = shards
    registry = shared.metrics.registry
    gauges = {
        "shoal_shards_held": ("Shards this replica holds", lambda: len(shards.renewed)),
        "shoal_shard_writes_refused": (
            "Writes refused because their shard was not held (a lost or drained shard)",
            lambda: shards.refused,
        ),
        "shoal_api_already_exists": (
            "Creations answered AlreadyExists (none in a healthy shard hand-off)",
            lambda: api.already_exists,
        ),
    }
    for name, (doc, read) in gauges.items():
        Gauge(name, doc, registry=registry).set_function(read)
    shared.background.add(asyncio.create_task(shards.run(), name="shoal-shard-leases"))
    log.info("sharded: %s holds up to %d shards' share", config.identity, timing.shards)


async def open_archive(shared: OperatorMemo, database_url: str) -> None:
    """Connect the run history and logs, and expose its health as metrics."""
    metrics = shared.metrics
    archive = await Archive.open(
        database_url,
        metrics.archive_lines_dropped.inc,
        shared.config.archive,
        on_attempts_dropped=metrics.archive_attempts_dropped.inc,
    )
    shared.archive = archive
    shards = shared.shards
    if shards is not None:  # cluster-wide duties: the holder of shard 0
        archive.cluster_duty = lambda: shards.may_write(0)
    metrics.archive_connected.set_function(lambda: archive.problem is None)
    metrics.degraded_source = lambda: (
        [f"archive: {archive.problem} (writes buffered)"] if archive.problem else []
    )


async def cleanup(shared: OperatorMemo, **_: Any) -> None:
    """Stop the pod watch and the runners (each records its status), then close the
    archive (its writers drain) and the API."""
    for task in shared.background:
        task.cancel()
    await asyncio.gather(*shared.background, return_exceptions=True)
    shared.background.clear()
    await shared.stop_runners(RUNNER_STOP_SECONDS)
    if shared.shards is not None:  # hand the shards over now, not after they expire
        await shared.shards.close()
    if shared.archive is not None:
        await shared.archive.close()
    if shared.api is not None:
        await shared.api.close()


async def pod_event(shared: OperatorMemo, event: kopf.RawEvent, **_: Any) -> None:
    """A labelled pod's event through kopf (namespace patterns only), to its runner."""
    obj = event.get("object") or {}
    workflows.route_pod_event(shared, str(event.get("type") or "ADDED"), dict(obj))


class HandledEventsAtDebug(logging.Filter):
    """Per-event lines demoted from INFO to DEBUG: kopf's "Handler '…' succeeded." for
    every event it handles, and httpx's "HTTP Request: …" for every API request (a Job
    create, a log stream, a status patch): at a fan-out's rate they were a line per
    item and per request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and _per_event(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _per_event(record: logging.LogRecord) -> bool:
    if record.name.startswith("httpx"):
        return str(record.msg).startswith("HTTP Request:")
    return record.getMessage().endswith(" succeeded.")


def quiet_handled_events() -> None:
    """Install `HandledEventsAtDebug` on kopf's per-object logger and httpx's (idempotent)."""
    for name in ("kopf.objects", "httpx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HandledEventsAtDebug) for f in logger.filters):
            logger.addFilter(HandledEventsAtDebug())


async def run_operator(config: OperatorConfig, stop_flag: asyncio.Event | None = None) -> None:
    """Run until stopped: the kopf operator plus the metrics and health endpoints."""
    metrics = Metrics()
    shared = OperatorMemo(config=config, metrics=metrics)
    shared.impostors = ImpostorReport(lambda kind: metrics.impostors.labels(kind).inc())
    metrics.pods_source = lambda: sum(
        r.state.running for r in shared.runners.values() if r.state is not None
    )
    metrics.pods_pending.set_function(lambda: pods_pending(shared.runners.values()))
    metrics.workflows_past_deadline.set_function(
        lambda: past_deadline(shared.runners.values(), time.time())
    )
    server = (
        await metrics.serve(config.metrics_port, config.metrics_host)
        if config.metrics_port is not None
        else None
    )
    safejson.install()  # before the first watch: a deep object must not end it
    quiet_handled_events()
    try:  # the CEL evaluator, before any Workflow needs it (else on first use)
        await asyncio.to_thread(SANDBOX.start)
    except EvaluationFailed as err:
        log.warning("expression evaluator: %s; it is started again on first use", err)
    try:
        await kopf.operator(
            registry=build_registry(shared),
            clusterwide=not config.namespaces,
            namespaces=config.namespaces,
            standalone=True,
            stop_flag=stop_flag,
        )
    finally:
        if server is not None:
            await server.cleanup()
