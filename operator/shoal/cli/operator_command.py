"""`shoal operator`: run the Kubernetes operator.

Every flag has an environment variable, which is how the Helm chart configures it.
kopf and the Kubernetes modules are imported only here, so `shoal run` and the worker
never need them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.cli.shard_flags import add_shard_flags, shard_settings

if TYPE_CHECKING:
    from shoal.kube import admission
    from shoal.operator_context import OperatorConfig


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal operator`'s arguments and handler."""
    env = os.environ.get
    p.description = (
        "Run the Shoal operator. Each flag can also be set by the environment variable shown."
    )
    p.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        default=[n for n in env("SHOAL_NAMESPACES", "").split(",") if n],
        help="namespace to watch, repeatable (SHOAL_NAMESPACES, comma-separated); "
        "none means all namespaces",
    )
    p.add_argument(
        "--worker-image",
        default=env("SHOAL_WORKER_IMAGE", "ghcr.io/shoal-dev/worker:0.1.0"),
        help="worker image for workflows that name none (SHOAL_WORKER_IMAGE)",
    )
    p.add_argument(
        "--artifacts",
        metavar="URL",
        default=env("SHOAL_ARTIFACTS"),
        help="default artifact store, s3://bucket/prefix (SHOAL_ARTIFACTS; S3 options from "
        "SHOAL_S3_ENDPOINT, SHOAL_S3_REGION, SHOAL_S3_PATH_STYLE, SHOAL_S3_VERIFY and "
        "credentials from AWS_* or the SDK's default chain); none: outputs stay inline",
    )
    p.add_argument(
        "--artifacts-credentials-secret",
        metavar="NAME",
        default=env("SHOAL_ARTIFACTS_CREDENTIALS_SECRET"),
        help="Secret (keys accessKeyId, secretAccessKey) that worker pods read in their own "
        "namespace for the default store (SHOAL_ARTIFACTS_CREDENTIALS_SECRET); none: pods "
        "use the SDK's default chain (IRSA, instance profile)",
    )
    p.add_argument(
        "--pending-timeout",
        type=float,
        default=float(env("SHOAL_PENDING_TIMEOUT", "300")),
        help="seconds a pod may stay unstarted before its attempt fails (SHOAL_PENDING_TIMEOUT)",
    )
    p.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=int(env("SHOAL_MAX_CONCURRENT_REQUESTS", "32")),
        help="Job creations in flight at once, all workflows (SHOAL_MAX_CONCURRENT_REQUESTS)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("SHOAL_METRICS_PORT", "9090")),
        help="port for /metrics, /healthz, /readyz; 0 disables (SHOAL_METRICS_PORT)",
    )
    p.add_argument(
        "--metrics-host",
        default=env("SHOAL_METRICS_HOST", "0.0.0.0"),
        help="address the metrics and health endpoints listen on (SHOAL_METRICS_HOST); "
        "the default serves Prometheus and the kubelet's probes in a pod",
    )
    p.add_argument(
        "--keep-succeeded-jobs",
        action="store_true",
        default=env("SHOAL_KEEP_SUCCEEDED_JOBS", "") == "true",
        help="never delete a Job before its Workflow, whatever spec.podGC says "
        "(SHOAL_KEEP_SUCCEEDED_JOBS=true)",
    )
    p.add_argument(
        "--no-restricted",
        action="store_true",
        default=env("SHOAL_RESTRICTED", "true") == "false",
        help="do not apply the restricted pod security context (SHOAL_RESTRICTED=false)",
    )
    p.add_argument(
        "--allowed-service-accounts",
        metavar="NAMES",
        action="append",
        default=[n for n in env("SHOAL_ALLOWED_SERVICE_ACCOUNTS", "").split(",") if n],
        help="ServiceAccounts a node may run as besides its namespace's `default`, "
        "comma-separated, repeatable (SHOAL_ALLOWED_SERVICE_ACCOUNTS); the operator's own "
        "is never allowed",
    )
    p.add_argument(
        "--service-account-selector",
        metavar="SELECTOR",
        default=env("SHOAL_SERVICE_ACCOUNT_SELECTOR", ""),
        help="also allow ServiceAccounts whose labels match this equality-based selector, "
        "e.g. shoal.dev/workflow-runner=true (SHOAL_SERVICE_ACCOUNT_SELECTOR)",
    )
    p.add_argument(
        "--database-url",
        help="PostgreSQL DSN for run history and logs (SHOAL_DATABASE_URL); without one the "
        "operator runs status-only",
    )
    p.add_argument(
        "--database-url-file",
        default=env("SHOAL_DATABASE_URL_FILE"),
        help="file holding the DSN, e.g. a mounted Secret (SHOAL_DATABASE_URL_FILE)",
    )
    p.add_argument(
        "--archive-ttl-days",
        type=float,
        default=float(env("SHOAL_ARCHIVE_TTL_DAYS", "0")) or None,
        help="delete archived runs finished more than this many days ago; 0 keeps them "
        "(SHOAL_ARCHIVE_TTL_DAYS)",
    )
    p.add_argument(
        "--archive-max-run-log-chars",
        type=int,
        default=int(env("SHOAL_ARCHIVE_MAX_RUN_LOG_CHARS", "0")) or None,
        help="archive at most this many characters of log per run; 0: no cap "
        "(SHOAL_ARCHIVE_MAX_RUN_LOG_CHARS)",
    )
    _add_webhook_flags(p, env)
    add_shard_flags(p, env)
    p.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig (KUBECONFIG)")
    p.add_argument(
        "--log-level", default=env("SHOAL_LOG_LEVEL", "INFO"), help="log level (SHOAL_LOG_LEVEL)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # kopf's login reads it from there, through the kubernetes package, which reads it
        # once at import: so it is set before anything imports kopf.
        os.environ["KUBECONFIG"] = args.kubeconfig
    from shoal.app import run_operator

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = _operator_config(args)
        webhook = _webhook_config(args)
        _check_credentials(args.kubeconfig)
    except ValueError as err:
        print(f"shoal operator: error: {err}", file=sys.stderr)
        return 2
    _log_configuration(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with _serve_webhook(webhook):
            await run_operator(config, stop_flag=stop)

    from shoal.event_loop import loop_factory

    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # uvloop when installed
        runner.run(main())
    return 0


def _check_credentials(kubeconfig: str | None) -> None:
    """Fail at start, in one line, when there are no credentials at all (kopf would retry
    its login with a traceback every minute)."""
    from kubernetes.config.config_exception import ConfigException

    from shoal.kube.api import load_credentials

    try:
        load_credentials(kubeconfig)
    except (ConfigException, OSError) as err:
        raise ValueError(
            f"no Kubernetes credentials ({err}); run it in a pod, or give --kubeconfig or "
            "KUBECONFIG"
        ) from None


def _operator_config(args: argparse.Namespace) -> OperatorConfig:
    """The operator's configuration from its flags; ValueError names a bad one."""
    from shoal.archive.db import resolve_dsn
    from shoal.archive.service import ArchiveSettings
    from shoal.kube.api import IN_CLUSTER_TOKEN
    from shoal.kube.artifact_store import ArtifactDefaults
    from shoal.kube.jobs import JobDefaults
    from shoal.kube.runner import RunnerConfig
    from shoal.kube.service_accounts import Selector, ServiceAccountPolicy, operator_identity
    from shoal.operator_context import OperatorConfig
    from shoal_worker.store_settings import ENV_URL, StoreSettings

    settings = StoreSettings.from_env(
        {**os.environ, ENV_URL: args.artifacts} if args.artifacts else os.environ
    )
    raw_selector = args.service_account_selector.strip()
    service_accounts = ServiceAccountPolicy(
        allowed=frozenset(
            name.strip()
            for entry in args.allowed_service_accounts
            for name in entry.split(",")
            if name.strip()
        ),
        selector=Selector.parse(raw_selector) if raw_selector else None,
        operator=operator_identity(os.environ, IN_CLUSTER_TOKEN),
    )
    return OperatorConfig(
        sharding=shard_settings(args),
        identity=args.identity,
        lease_namespace=args.lease_namespace,
        artifacts=ArtifactDefaults(settings, args.artifacts_credentials_secret or None),
        namespaces=args.namespaces,
        kubeconfig=args.kubeconfig,
        max_concurrent_requests=args.max_concurrent_requests,
        metrics_port=args.metrics_port or None,
        metrics_host=args.metrics_host,
        database_url=resolve_dsn(args.database_url, args.database_url_file),
        archive=ArchiveSettings(
            ttl_days=args.archive_ttl_days or None,
            max_run_log_chars=args.archive_max_run_log_chars or None,
        ),
        runner=RunnerConfig(
            jobs=JobDefaults(
                image=args.worker_image, restricted=not args.no_restricted, shards=args.shards
            ),
            pending_timeout_seconds=args.pending_timeout,
            delete_succeeded_jobs=not args.keep_succeeded_jobs,
            service_accounts=service_accounts,
        ),
    )


def _log_configuration(config: OperatorConfig) -> None:
    """What the operator will do, once at start (never a secret: the DSN is described)."""
    from shoal.archive.service import describe

    log = logging.getLogger("shoal.operator")
    log.info("watching %s", ", ".join(config.namespaces) or "all namespaces")
    log.info("service accounts: %s", config.runner.service_accounts.describe())
    if config.database_url:
        log.info("archive: %s", describe(config.database_url))
    else:
        log.warning(
            "no database (--database-url, SHOAL_DATABASE_URL): status only; run history and "
            "logs are not archived"
        )
    settings = config.artifacts.settings
    if settings is not None:
        log.info("artifact store: %s (endpoint %s)", settings.url, settings.endpoint or "AWS")
    else:
        log.warning(
            "no artifact store (--artifacts, SHOAL_ARTIFACTS): outputs stay in the status, "
            "and large ones cannot be passed on"
        )


def _webhook_config(args: argparse.Namespace) -> admission.WebhookConfig | None:
    """The webhook's settings, its certificate checked now: a bad one is a startup error."""
    from shoal.kube import admission

    if not args.webhook_cert_dir:
        return None
    config = admission.WebhookConfig(
        Path(args.webhook_cert_dir), port=args.webhook_port, host=args.webhook_host
    )
    try:
        admission.load_tls(config.cert_dir)
    except (OSError, ssl.SSLError) as err:
        raise ValueError(f"--webhook-cert-dir {config.cert_dir}: {err}") from None
    return config


def _add_webhook_flags(p: argparse.ArgumentParser, env: Callable[[str], str | None]) -> None:
    """The admission webhook's flags (docs/admission.md)."""
    p.add_argument(
        "--webhook-cert-dir",
        metavar="DIR",
        default=env("SHOAL_WEBHOOK_CERT_DIR"),
        help="serve the validating admission webhook with DIR/tls.crt and DIR/tls.key "
        "(SHOAL_WEBHOOK_CERT_DIR); none: no webhook (docs/admission.md)",
    )
    p.add_argument(
        "--webhook-port",
        type=int,
        default=int(env("SHOAL_WEBHOOK_PORT") or "9443"),
        help="HTTPS port of the admission webhook (SHOAL_WEBHOOK_PORT)",
    )
    p.add_argument(
        "--webhook-host",
        default=env("SHOAL_WEBHOOK_HOST") or "0.0.0.0",
        help="address the admission webhook listens on (SHOAL_WEBHOOK_HOST)",
    )


def _serve_webhook(config: admission.WebhookConfig | None) -> AbstractAsyncContextManager[None]:
    """The webhook served around the operator; nothing without a certificate directory."""
    from shoal.kube import admission

    return admission.serve(config)
