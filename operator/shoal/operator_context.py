"""What the operator's controllers share: its configuration and the operator-wide stores.

The Workflow controller (`kube/controller.py`) and the CronWorkflow controller
(`cron/controller.py`) both read this and neither imports the other; `app.py` creates
one `OperatorMemo` per operator and hands it to both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shoal.archive.service import Archive, ArchiveSettings
from shoal.kube.api import KubeApi
from shoal.kube.artifact_store import ArtifactDefaults
from shoal.kube.impostors import ImpostorReport
from shoal.kube.metrics import Metrics
from shoal.kube.runner import RunnerConfig, WorkflowRunner
from shoal.kube.shard_leases import ShardLeases
from shoal.sharding.policy import ShardTiming

__all__ = ["OperatorConfig", "OperatorMemo"]


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
    sharding: ShardTiming | None = None
    """Share the work with other replicas through shard leases (docs/scaling.md); None:
    this operator acts on every object it watches."""
    identity: str = ""
    """This replica's name in the leases (the pod name in the chart)."""
    lease_namespace: str = "default"
    """Where the shard leases live (the operator's own namespace in the chart)."""


@dataclass
class OperatorMemo:
    """What the handlers share: the API adapter and the live runners by workflow uid.

    `api`, `dispatch_limit` and `archive` are set by the operator's startup handler
    (they need its event loop); until then they are None.
    """

    config: OperatorConfig
    metrics: Metrics
    api: KubeApi | None = None
    runners: dict[str, WorkflowRunner] = field(default_factory=dict)
    dispatch_limit: asyncio.Semaphore | None = None
    archive: Archive | None = None
    impostors: ImpostorReport | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    """Operator-wide tasks outside kopf (the pod watch), cancelled at cleanup."""
    shards: ShardLeases | None = None
    """The shard leases when sharded (set at startup); None acts on everything."""
    running: set[asyncio.Task[object]] = field(default_factory=set)
    """The tasks running a WorkflowRunner: kopf runs its cleanup handlers before its
    daemons have stopped, so cleanup stops these itself before it closes the API."""

    def owns(self, uid: str) -> bool:
        """Whether this replica acts on the object with this uid (always, unsharded)."""
        return self.shards is None or self.shards.owns(uid)

    async def stop_runners(self, seconds: float) -> None:
        """Cancel every runner and wait (bounded) while each writes its last status."""
        tasks = set(self.running)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=seconds)

    def connected_api(self) -> KubeApi:
        """The API adapter; the startup handler connects it before any other handler runs."""
        assert self.api is not None, "the operator's startup connects the API first"
        return self.api
