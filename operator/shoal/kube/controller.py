"""The kopf wiring: which resources are watched, and where their events go.

kopf owns the watches, reconnects, finalizers and event posting. Shoal registers:
- a daemon per Workflow, which is that workflow's runner for as long as it runs (and
  then waits out its TTL);
- an event handler on Workflows, forwarding spec changes (`spec.stop`) to the runner;
- an event handler on pods labelled as Shoal's, handing each to the runner of the
  workflow its workflow-uid label names: no listing per event, no polling, no requeue
  delay. The label is only a claim: the runner accepts a pod only from its namespace and
  controlled by the Job it created (ownership.py), and reports any other as an impostor.

The registry is built explicitly (not with module-level decorators) so tests and the CLI
can create an operator with the settings they need.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from shoal.archive.service import Archive, ArchiveSettings
from shoal.artifact_steps import run_prefix
from shoal.core.sandbox import SANDBOX, EvaluationFailed
from shoal.cron import controller as cron_controller
from shoal.kube import safejson
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.artifact_store import ArtifactDefaults, WorkflowStore
from shoal.kube.impostors import ImpostorReport
from shoal.kube.metrics import Metrics
from shoal.kube.naming import LABEL_MANAGED_BY, LABEL_WORKFLOW_UID, MANAGED_BY
from shoal.kube.runner import RunnerConfig, WorkflowRunner, wait_ttl
from shoal.kube.workflow_body import WorkflowControls, deletion_due

log = logging.getLogger("shoal.operator")
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workflows"


@dataclass
class OperatorConfig:
    """Everything `shoal operator` is configured with (flags and environment)."""

    namespaces: list[str] = field(default_factory=list)
    """Namespaces to watch; empty means all (cluster-wide)."""
    kubeconfig: str | None = None
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    max_concurrent_requests: int = 32
    metrics_port: int | None = 9090
    metrics_host: str = "0.0.0.0"
    """Port for /metrics, /healthz and /readyz; None to serve nothing."""
    database_url: str | None = None
    """PostgreSQL for run history and logs (docs/archive.md); None runs status-only."""
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    artifacts: ArtifactDefaults = field(default_factory=ArtifactDefaults)
    """The default artifact store (docs/artifacts.md); none keeps outputs inline."""


@dataclass
class OperatorMemo:
    """What the handlers share: the API adapter and the live runners by workflow uid."""

    config: OperatorConfig
    metrics: Metrics
    api: KubeApi | None = None
    runners: dict[str, WorkflowRunner] = field(default_factory=dict)
    dispatch_limit: asyncio.Semaphore | None = None
    archive: Archive | None = None
    impostors: ImpostorReport | None = None


def post_event(body: dict[str, Any], type: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event about a workflow through kopf's poster (never blocks)."""
    try:
        kopf.event(kopf.Body(cast(kopf.RawBody, body)), type=type, reason=reason, message=message)
    except LookupError:  # outside the operator's context (unit tests): nothing to post to
        log.info("%s %s: %s", type, reason, message)


def build_registry(memo: OperatorMemo) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    # First: cleanup handlers run in order, and cron writes its pending fires to the
    # archive before the cleanup below closes it.
    cron_controller.register(registry, memo)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a pod: the service account; elsewhere the kubeconfig (KUBECONFIG), through the
        # kubernetes package, so every auth form kubectl supports works here too.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = logging.WARNING  # our own Events only, not kopf's chatter
        settings.peering.standalone = True
        # Watching named namespaces needs no cluster-wide discovery; with scanning on,
        # kopf retries listing namespaces and CRDs (forbidden to a namespaced Role) for a
        # minute before it serves anything. Globs (`team-*`) do need it.
        settings.scanning.disabled = bool(memo.config.namespaces) and not any(
            ch in ns for ns in memo.config.namespaces for ch in "*?![],"
        )
        settings.persistence.finalizer = "shoal.dev/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        memo.api = KubeApi.connect(memo.config.kubeconfig)
        memo.dispatch_limit = asyncio.Semaphore(memo.config.max_concurrent_requests)
        memo.metrics.bind_api(memo.api)
        if memo.config.database_url:
            memo.archive = await Archive.open(
                memo.config.database_url,
                memo.metrics.archive_lines_dropped.inc,
                memo.config.archive,
                on_attempts_dropped=memo.metrics.archive_attempts_dropped.inc,
            )
            archive = memo.archive
            memo.metrics.archive_connected.set_function(lambda: archive.problem is None)
            memo.metrics.degraded_source = lambda: (
                [f"archive: {archive.problem} (writes buffered)"] if archive.problem else []
            )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if memo.archive is not None:
            await memo.archive.close()
        if memo.api is not None:
            await memo.api.close()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)
    async def workflow_daemon(body: kopf.Body, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
        # Runs the workflow, then waits out its TTL (and deletes it) unless it is reopened
        # first: `shoal retry` sets a finished workflow's status back to Running, and a
        # fresh runner carries on from the status (finished nodes keep their outputs,
        # Pending ones run again). The signal comes from workflow_event, through kopf's
        # per-object memo.
        assert memo.api is not None
        reopened: asyncio.Event = kwargs["memo"].setdefault("shoal_reopened", asyncio.Event())
        gone: asyncio.Event = kwargs["memo"].setdefault("shoal_gone", asyncio.Event())

        async def reopened_or_stopped(seconds: float | None) -> bool:
            async def until_stopped() -> None:
                await stopped.wait()

            waiters = [
                asyncio.ensure_future(reopened.wait()),
                asyncio.ensure_future(until_stopped()),
            ]
            try:
                await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            return reopened.is_set() or stopped.is_set()

        raw: dict[str, Any] = copy.deepcopy(dict(body))
        meta = raw["metadata"]
        path = workflows_path(meta["namespace"], meta["name"])
        while True:
            reopened.clear()
            runner = WorkflowRunner(
                memo.api,
                raw,
                memo.config.runner,
                post_event,
                log_sink=memo.archive.sink if memo.archive is not None else None,
                attempt_sink=memo.archive.attempts if memo.archive is not None else None,
                dispatch_limit=memo.dispatch_limit,
                on_dispatch=memo.metrics.dispatch_latency.observe,
                on_error=memo.metrics.reconcile_errors.inc,
                artifacts=memo.config.artifacts,
                on_impostor=memo.impostors,
            )
            uid = raw["metadata"]["uid"]
            memo.runners[uid] = runner
            memo.metrics.workflows_running.inc()
            try:
                if not await run_unless_gone(runner.run(stopped.is_set), gone):
                    return  # deleted: its Jobs and pods go with it (owner references)
            except ApiError as err:
                # kopf retries the daemon; its own line does not name the object.
                log.error("workflow %s/%s: %s", meta["namespace"], meta["name"], err)
                raise
            finally:
                memo.runners.pop(uid, None)
                memo.metrics.workflows_running.dec()
                if memo.archive is not None:
                    memo.archive.sink.forget(uid)  # its log size count
            if runner.state is not None:
                memo.metrics.workflow_finished(runner.state)
            while not stopped.is_set():
                reopened.clear()  # before reading, so a later reopening is never missed
                try:
                    raw = await memo.api.get(path)
                except Exception:  # deleted meanwhile: nothing to wait for
                    return
                status = raw.get("status") or {}
                if status.get("phase") not in {"Succeeded", "Failed", "Error", "Stopped"}:
                    break  # reopened: run it again
                due = deletion_due(raw)
                if not await reopened_or_stopped(
                    None if due is None else max(0.0, due - time.time())
                ):
                    await wait_ttl(raw, memo.api, reopened_or_stopped)
                    return
            if stopped.is_set():
                return  # the operator is exiting (or the object is gone): never delete early

    def collects_on_deletion(spec: kopf.Spec, **_: Any) -> bool:
        controls = WorkflowControls.of({"spec": spec})
        return memo.config.artifacts.settings is not None and controls.collects_on_deletion

    # A finalizer only on Workflows whose artifacts go with them (kopf adds it to the
    # objects this filter matches), so deleting any other Workflow never waits on S3.
    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, when=collects_on_deletion)
    async def workflow_deleted(body: kopf.Body, spec: kopf.Spec, **_: Any) -> None:
        assert memo.api is not None
        meta = body["metadata"]
        artifacts = WorkflowControls.of({"spec": spec}).artifacts
        if artifacts is None:
            return  # an invalid spec never ran, so it has nothing stored
        store = WorkflowStore(memo.api, memo.config.artifacts, artifacts, meta["namespace"])
        problem = await store.collect(run_prefix(meta["namespace"], meta["name"], meta["uid"]))
        if problem is not None:  # bounded retries are over: never block the deletion forever
            post_event(dict(body), "Warning", "ArtifactGCFailed", problem[:1024])

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def workflow_event(event: kopf.RawEvent, **kwargs: Any) -> None:
        obj = event.get("object") or {}
        runner = memo.runners.get((obj.get("metadata") or {}).get("uid", ""))
        if memo.archive is not None and event.get("type") != "DELETED":
            memo.archive.runs.offer(dict(obj))  # each status patch comes back here
        if event.get("type") == "DELETED":
            # No finalizer holds a Workflow for its daemon (see without_daemon_finalizer):
            # the deletion is the signal to stop running it.
            kwargs["memo"].setdefault("shoal_gone", asyncio.Event()).set()
        if runner is not None:
            if event.get("type") == "MODIFIED":
                runner.spec_changed(dict(obj))
        elif event.get("type") != "DELETED" and (obj.get("status") or {}).get("phase") in {
            "Pending",
            "Running",
        }:
            # Not finished, yet no runner: reopened (`shoal retry`). Wake its daemon.
            kwargs["memo"].setdefault("shoal_reopened", asyncio.Event()).set()

    @kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)
    async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        obj = event.get("object") or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        runner = memo.runners.get(labels.get(LABEL_WORKFLOW_UID, ""))
        if runner is not None:
            runner.pod_event(str(event.get("type") or "ADDED"), dict(obj))

    return without_daemon_finalizer(registry, workflow_daemon)


def without_daemon_finalizer(
    registry: kopf.OperatorRegistry, daemon: Callable[..., Any]
) -> kopf.OperatorRegistry:
    """Drop the finalizer kopf puts on every object that has a daemon.

    kopf blocks deletion until it has stopped an object's daemons, so a Workflow deleted
    while the operator is down (or gone for good) would hang in Terminating. Shoal's
    daemon needs no such guarantee: the Workflow's Jobs and pods carry owner references
    and go with it, and the DELETED event stops the runner (`shoal_gone`). Only Workflows
    whose artifacts are collected on deletion keep a finalizer (the on.delete handler).
    kopf offers no option for this, so the registered handlers are replaced by copies
    that say so.
    """
    spawning = registry._spawning
    spawning._handlers = [
        dataclasses.replace(handler, requires_finalizer=False) if handler.fn is daemon else handler
        for handler in spawning._handlers
    ]
    return registry


async def run_unless_gone(run: Coroutine[Any, Any, None], gone: asyncio.Event) -> bool:
    """Await `run` unless `gone` is set first (then cancel it). True if it ran to its end."""
    task = asyncio.ensure_future(run)
    waiter = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()  # its exception, if any
    return True


async def run_operator(config: OperatorConfig, stop_flag: asyncio.Event | None = None) -> None:
    """Run until stopped: the kopf operator plus the metrics and health endpoints."""
    metrics = Metrics()
    memo = OperatorMemo(config=config, metrics=metrics)
    memo.impostors = ImpostorReport(lambda kind: metrics.impostors.labels(kind).inc())
    metrics.pods_source = lambda: sum(
        r.state.running for r in memo.runners.values() if r.state is not None
    )
    server = (
        await metrics.serve(config.metrics_port, config.metrics_host)
        if config.metrics_port is not None
        else None
    )
    safejson.install()  # before the first watch: a deep object must not end it
    try:  # the CEL evaluator, before any Workflow needs it (else on first use)
        await asyncio.to_thread(SANDBOX.start)
    except EvaluationFailed as err:
        log.warning("expression evaluator: %s; it is started again on first use", err)
    try:
        await kopf.operator(
            registry=build_registry(memo),
            clusterwide=not config.namespaces,
            namespaces=config.namespaces,
            standalone=True,
            stop_flag=stop_flag,
        )
    finally:
        if server is not None:
            await server.cleanup()
